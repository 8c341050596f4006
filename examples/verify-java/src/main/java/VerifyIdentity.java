import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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
 * A minimal engine that trusts the Nixflex gateway's identity header (X-Nixflex-Identity), with
 * jose4j (0.9.6+, Java 17+ for Ed25519) and the JDK's HTTP server:
 *
 * <pre>
 *   java -cp jose4j.jar:slf4j-api.jar VerifyIdentity.java --jwks jwks.json [--port 0]
 * </pre>
 *
 * Serves every request: 200 {"account_id":…,"key_id":…,"request_id":…} when the header is valid
 * for this method and path and its jti is new, otherwise exactly the gateway's 401 (SPEC §3) with
 * the reason on stderr only ({@code rejected: …}). First stdout line: {@code listening http://127.0.0.1:PORT}.
 * In your engine, build one {@link VerifyIdentity} at start-up and call {@link #verify} from a
 * filter with the method and the raw request target's path ({@link #requestTargetPath}; servlets:
 * request.getRequestURI()); answer {@link #UNAUTHORIZED_BODY} on {@link IdentityException}.
 * docs/engine-integration.md explains each check.
 */
public final class VerifyIdentity {
  static final String IDENTITY_TYP = "nixflex-identity+jwt";
  static final long MAX_LIFETIME_S = 60;
  static final int LEEWAY_S = 5;

  /** The gateway's 401 body (SPEC §3), byte for byte: the client never learns which check failed. */
  public static final String UNAUTHORIZED_BODY =
      "{\"error\":{\"type\":\"authentication_error\",\"code\":\"invalid_api_key\","
          + "\"message\":\"Invalid or missing API key\"}}";
  public static final String AUTH_CHALLENGE = "Bearer realm=\"api.nixflex.com\"";

  /** Absolute-form request target (RFC 9112 §3.2.2): scheme "://" authority, then the path. */
  private static final Pattern ABSOLUTE_FORM = Pattern.compile("^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*");

  /**
   * Remembers each used jti until its token expires (plus the skew), at most {@code maxEntries} at
   * once (the oldest is dropped first), so a captured header works for one request only. Several
   * engine instances need one shared store instead, e.g. Redis {@code SET nixflex:jti:<jti> 1 PXAT
   * <expiresMs> NX} (first use when it answers OK).
   */
  public static final class ReplayGuard {
    private final LinkedHashMap<String, Long> seen = new LinkedHashMap<>();
    private final int maxEntries;

    public ReplayGuard(int maxEntries) {
      this.maxEntries = maxEntries;
    }

    /** True on the first use of {@code jti}; false while an earlier use is remembered. */
    public synchronized boolean claim(String jti, long expiresAtMs) {
      long now = System.currentTimeMillis();
      Iterator<Long> expiries = seen.values().iterator();
      while (expiries.hasNext() && expiries.next() <= now) {
        expiries.remove();
      }
      Long known = seen.get(jti);
      if (known != null && known > now) {
        return false;
      }
      seen.remove(jti);
      while (seen.size() >= maxEntries) {
        seen.remove(seen.keySet().iterator().next());
      }
      seen.put(jti, expiresAtMs);
      return true;
    }
  }

  /**
   * The path of a raw request target without the query, as the gateway signed it:
   * {@code //v1/reports?x} → {@code //v1/reports}; {@code http://host/v1/reports} → {@code /v1/reports}.
   * Not {@code URI.getPath()}: it reads {@code //v1/reports} as host {@code v1} and decodes.
   */
  public static String requestTargetPath(String target) {
    String path = target;
    if (!path.startsWith("/")) {
      Matcher origin = ABSOLUTE_FORM.matcher(path);
      if (origin.find()) {
        path = path.substring(origin.end());
        if (path.isEmpty() || path.startsWith("?")) {
          path = "/" + path;
        }
      }
    }
    int query = path.indexOf('?');
    return query < 0 ? path : path.substring(0, query);
  }

  /** The header is missing or does not prove the request came through the gateway. */
  public static final class IdentityException extends Exception {
    IdentityException(String message) {
      super(message);
    }
  }

  private final JwtConsumer consumer;
  private final ReplayGuard replay;

  /**
   * @param jwksJson the gateway's JWKS. In production use
   *     {@code new HttpsJwksVerificationKeyResolver(new HttpsJwks("https://api.nixflex.com/.well-known/jwks.json"))}:
   *     it caches the set and refetches on an unknown kid, which is how key rotation reaches you.
   */
  public VerifyIdentity(String jwksJson, String issuer, String audience, ReplayGuard replay) throws JoseException {
    this.replay = replay;
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

  /**
   * Returns account_id, key_id and request_id, or throws. {@code path} excludes the query. The jti
   * is claimed last, so only a token valid for this very request uses it up.
   */
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
      if (!replay.claim(claims.getJwtId(), (exp + LEEWAY_S) * 1000)) {
        throw new IdentityException("jti already used: a replayed header");
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

  /** Verifies every request before anything else runs; the reason goes to stderr only. */
  private void handle(HttpExchange exchange) throws IOException {
    List<String> values = exchange.getRequestHeaders().get("X-Nixflex-Identity");
    String token = values != null && values.size() == 1 ? values.get(0) : null; // none, or two
    // The target as it arrived: URI.toString() gives back the original string, undecoded.
    String path = requestTargetPath(exchange.getRequestURI().toString());
    int status;
    String body;
    try {
      body = JsonUtil.toJson(verify(token, exchange.getRequestMethod(), path));
      status = 200;
    } catch (IdentityException e) {
      System.err.println("rejected: " + e.getMessage());
      exchange.getResponseHeaders().set("WWW-Authenticate", AUTH_CHALLENGE);
      body = UNAUTHORIZED_BODY;
      status = 401;
    }
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    exchange.getResponseHeaders().set("Cache-Control", "no-store");
    exchange.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }

  public static void main(String[] argv) throws IOException, JoseException {
    Map<String, String> args = new HashMap<>(Map.of(
        "--issuer", "https://api.nixflex.com", "--audience", "nixflex-engine", "--port", "0"));
    for (int i = 0; i + 1 < argv.length; i += 2) {
      args.put(argv[i], argv[i + 1]);
    }
    if (!args.containsKey("--jwks")) {
      System.err.println("usage: VerifyIdentity --jwks FILE [--port N] [--issuer I] [--audience A]");
      System.exit(2);
    }
    VerifyIdentity verifier = new VerifyIdentity(
        Files.readString(Path.of(args.get("--jwks"))), args.get("--issuer"), args.get("--audience"),
        new ReplayGuard(100_000));
    HttpServer server = HttpServer.create(
        new InetSocketAddress("127.0.0.1", Integer.parseInt(args.get("--port"))), 0);
    server.createContext("/", verifier::handle);
    server.setExecutor(Executors.newFixedThreadPool(4));
    server.start();
    System.out.println("listening http://127.0.0.1:" + server.getAddress().getPort());
    System.out.flush();
  }
}
