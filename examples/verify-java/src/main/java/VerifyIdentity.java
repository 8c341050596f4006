import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

import org.jose4j.json.JsonUtil;
import org.jose4j.jwa.AlgorithmConstraints.ConstraintType;
import org.jose4j.jwk.JsonWebKeySet;
import org.jose4j.jws.AlgorithmIdentifiers;
import org.jose4j.jwt.JwtClaims;
import org.jose4j.jwt.MalformedClaimException;
import org.jose4j.jwt.consumer.ErrorCodeValidator;
import org.jose4j.jwt.consumer.InvalidJwtException;
import org.jose4j.jwt.consumer.JwtConsumer;
import org.jose4j.jwt.consumer.JwtConsumerBuilder;
import org.jose4j.keys.resolvers.JwksVerificationKeyResolver;
import org.jose4j.lang.JoseException;

/**
 * Verifies a Nixflex gateway identity header (X-Nixflex-Identity) with jose4j (0.9.6+,
 * Java 17+ for Ed25519):
 *
 * <pre>
 *   java -cp jose4j.jar:slf4j-api.jar VerifyIdentity.java --jwks jwks.json --method POST --path /v1/agents &lt; token
 * </pre>
 *
 * Prints {"account_id":…,"key_id":…,"request_id":…} and exits 0 when the token is valid for
 * that request; prints the reason on stderr and exits 1 otherwise. In an engine, build one
 * {@link VerifyIdentity} at start-up and call {@link #verify} from a servlet filter with
 * request.getMethod() and request.getRequestURI(); answer 401 on {@link IdentityException}.
 * docs/engine-integration.md explains each check.
 */
public final class VerifyIdentity {
  static final String IDENTITY_TYP = "nixflex-identity+jwt";
  static final long MAX_LIFETIME_S = 60;
  static final int LEEWAY_S = 5;

  /** The header is missing or does not prove the request came through the gateway. */
  public static final class IdentityException extends Exception {
    IdentityException(String message) {
      super(message);
    }
  }

  private final JwtConsumer consumer;

  /**
   * @param jwksJson the gateway's JWKS. In production use
   *     {@code new HttpsJwksVerificationKeyResolver(new HttpsJwks("https://api.nixflex.com/.well-known/jwks.json"))}:
   *     it caches the set and refetches on an unknown kid, which is how key rotation reaches you.
   */
  public VerifyIdentity(String jwksJson, String issuer, String audience) throws JoseException {
    JsonWebKeySet keys = new JsonWebKeySet(jwksJson);
    this.consumer = new JwtConsumerBuilder()
        .setJwsAlgorithmConstraints(
            ConstraintType.PERMIT, AlgorithmIdentifiers.EDDSA, AlgorithmIdentifiers.ECDSA_USING_P256_CURVE_AND_SHA256)
        .setVerificationKeyResolver(new JwksVerificationKeyResolver(keys.getJsonWebKeys()))
        .setExpectedType(true, IDENTITY_TYP)
        .setExpectedIssuer(issuer)
        .setExpectedAudience(audience)
        .setRequireExpirationTime()
        .setRequireIssuedAt()
        .setRequireSubject()
        .setRequireJwtId()
        .setAllowedClockSkewInSeconds(LEEWAY_S)
        .build();
  }

  /** Returns account_id, key_id and request_id, or throws. {@code path} excludes the query. */
  public Map<String, String> verify(String token, String method, String path) throws IdentityException {
    if (token == null || token.isEmpty() || token.contains(",")) {
      throw new IdentityException("no single identity header");
    }
    JwtClaims claims;
    try {
      claims = consumer.processToClaims(token);
    } catch (InvalidJwtException e) {
      // jose4j's message quotes the token and its claims; keep it out of logs, report the codes.
      if (e.hasExpired()) {
        throw new IdentityException("token expired");
      }
      StringBuilder codes = new StringBuilder();
      for (ErrorCodeValidator.Error detail : e.getErrorDetails()) {
        codes.append(codes.length() == 0 ? "" : ",").append(detail.getErrorCode());
      }
      throw new IdentityException("invalid token (jose4j error codes " + codes + ", see org.jose4j.jwt.consumer.ErrorCodes)");
    }
    try {
      long iat = claims.getIssuedAt().getValue();
      long exp = claims.getExpirationTime().getValue();
      if (exp - iat > MAX_LIFETIME_S) {
        throw new IdentityException("token lives longer than 60 s");
      }
      String keyId = claims.getStringClaimValue("key_id");
      String htm = claims.getStringClaimValue("htm");
      String htu = claims.getStringClaimValue("htu");
      if (keyId == null || htm == null || htu == null) {
        throw new IdentityException("key_id, htm and htu are required");
      }
      if (!htm.equals(method.toUpperCase(Locale.ROOT)) || !htu.equals(path)) {
        throw new IdentityException("token was issued for another method or path");
      }
      Map<String, String> identity = new LinkedHashMap<>();
      identity.put("account_id", claims.getSubject());
      identity.put("key_id", keyId);
      identity.put("request_id", claims.getJwtId());
      return identity;
    } catch (MalformedClaimException e) {
      throw new IdentityException("malformed claim: " + e.getMessage());
    }
  }

  public static void main(String[] argv) throws IOException, JoseException {
    Map<String, String> args = new HashMap<>(Map.of(
        "--issuer", "https://api.nixflex.com", "--audience", "nixflex-engine"));
    for (int i = 0; i + 1 < argv.length; i += 2) {
      args.put(argv[i], argv[i + 1]);
    }
    if (!args.containsKey("--jwks") || !args.containsKey("--method") || !args.containsKey("--path")) {
      System.err.println("usage: VerifyIdentity --jwks FILE --method M --path P [--issuer I] [--audience A] [--token T]");
      System.exit(2);
    }
    String token = args.containsKey("--token")
        ? args.get("--token")
        : new String(System.in.readAllBytes(), StandardCharsets.US_ASCII).strip();
    VerifyIdentity verifier = new VerifyIdentity(
        Files.readString(Path.of(args.get("--jwks"))), args.get("--issuer"), args.get("--audience"));
    try {
      Map<String, String> identity = verifier.verify(token, args.get("--method"), args.get("--path"));
      System.out.println(JsonUtil.toJson(identity));
    } catch (IdentityException e) {
      System.err.println("rejected: " + e.getMessage());
      System.exit(1);
    }
  }
}
