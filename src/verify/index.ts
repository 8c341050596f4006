/**
 * What the engine imports to trust the gateway's identity header (SPEC §9):
 *
 * ```ts
 * import { createIdentityVerifier } from "nixflex-gateway/verify";
 * const verify = createIdentityVerifier({ jwksUrl: "https://api.nixflex.com/.well-known/jwks.json" });
 * const { accountId, keyId, requestId } = await verify(request);
 * ```
 *
 * It fetches and caches the JWKS (refetching on an unknown `kid`, so signing-key
 * rotation needs no engine change), checks the signature, `typ`, `iss`, `aud`, `exp`,
 * that `htm`/`htu` match the request the engine actually received and, by default, that
 * the token's `jti` was not used before. `identityFailure`/`identityFailureResponse` give
 * the standard answer to a failure; the Hono middleware is `nixflex-gateway/verify/hono`.
 */
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { IdentityError } from "./errors.ts";
import { createMemoryReplayStore, type ReplayStore } from "./replay.ts";

export { IdentityError, type IdentityErrorCode } from "./errors.ts";
export { nodeRequestFacts, requestTargetPath, type NodeRequestLike } from "./node.ts";
export {
  createMemoryReplayStore,
  type MemoryReplayStore,
  type MemoryReplayStoreOptions,
  type ReplayStore,
} from "./replay.ts";
export {
  AUTH_CHALLENGE,
  identityFailure,
  identityFailureResponse,
  type IdentityFailureAnswer,
  UNAUTHORIZED_BODY,
  UNAVAILABLE_BODY,
} from "./response.ts";

/** The header the gateway adds (SPEC §4). */
export const IDENTITY_HEADER = "x-nixflex-identity";
/** The token type every identity JWT carries. */
export const IDENTITY_TYP = "nixflex-identity+jwt";

/** Who the gateway says is calling. */
export interface Identity {
  accountId: string;
  keyId: string;
  requestId: string;
}

export interface VerifierOptions {
  /** The gateway's JWKS, e.g. `https://api.nixflex.com/.well-known/jwks.json`. */
  jwksUrl?: string | URL;
  /** Instead of `jwksUrl`: a key resolver, e.g. jose's `createLocalJWKSet`. */
  keys?: JWTVerifyGetKey;
  /** Expected `iss`. Default `https://api.nixflex.com`. */
  issuer?: string;
  /** Expected `aud`. Default `nixflex-engine`. */
  audience?: string;
  /** Allowed clock skew between gateway and engine, in seconds. Default 5. */
  clockToleranceS?: number;
  /** How long a fetched JWKS is trusted before a refresh, in ms. Default 10 minutes. */
  jwksCacheMaxAgeMs?: number;
  /** The fetch used for the JWKS (tests, custom transports). */
  fetch?: typeof fetch;
  /**
   * Where used `jti`s are remembered, so a token is good for one request. Default: a bounded
   * in-memory store per verifier (`createMemoryReplayStore()`); pass a shared store when the
   * engine runs several instances, or `false` to turn the check off.
   */
  replay?: ReplayStore | false;
}

/** The request facts the token is bound to. Derived from a `Request` by default. */
export interface RequestFacts {
  method: string;
  /** The path the engine received, without the query. */
  path: string;
  /** The X-Nixflex-Identity header value. */
  token: string | null;
}

const MAX_AGE_S = 60;

function mapJoseError(error: unknown): IdentityError {
  if (error instanceof IdentityError) return error;
  if (error instanceof joseErrors.JWTExpired)
    return new IdentityError("ERR_IDENTITY_EXPIRED", "identity token expired", { cause: error });
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === "iat" && error.reason === "check_failed") {
      return new IdentityError("ERR_IDENTITY_EXPIRED", "identity token too old", { cause: error });
    }
    return new IdentityError("ERR_IDENTITY_CLAIM", `identity claim ${error.claim} is invalid`, { cause: error });
  }
  if (
    error instanceof joseErrors.JWKSTimeout ||
    (error instanceof joseErrors.JOSEError && error.code === "ERR_JOSE_GENERIC")
  ) {
    return new IdentityError("ERR_IDENTITY_KEYS_UNAVAILABLE", "gateway JWKS unavailable", { cause: error });
  }
  if (error instanceof TypeError || error instanceof joseErrors.JWKSInvalid) {
    return new IdentityError("ERR_IDENTITY_KEYS_UNAVAILABLE", "gateway JWKS unavailable", { cause: error });
  }
  return new IdentityError("ERR_IDENTITY_INVALID", "identity token is not valid", { cause: error });
}

/** Builds a verifier with its own JWKS cache and replay guard. Build it once per process, not per request. */
export function createIdentityVerifier(options: VerifierOptions) {
  const issuer = options.issuer ?? "https://api.nixflex.com";
  const audience = options.audience ?? "nixflex-engine";
  const clockTolerance = options.clockToleranceS ?? 5;
  let keys = options.keys;
  if (keys === undefined) {
    if (options.jwksUrl === undefined) throw new TypeError("createIdentityVerifier needs jwksUrl or keys");
    const fetchImpl = options.fetch;
    keys = createRemoteJWKSet(new URL(options.jwksUrl), {
      cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
      // An unknown kid triggers a refetch at most this often (signing-key rotation).
      cooldownDuration: 30_000,
      ...(fetchImpl ? { [customFetch]: (url: string, init: RequestInit) => fetchImpl(url, init) } : {}),
    });
  }
  const resolver = keys;
  const replay = options.replay === undefined ? createMemoryReplayStore() : options.replay;

  /** Records the first use of `jti`; a second use of the same token is a replay. */
  async function claimOnce(jti: string, exp: number): Promise<void> {
    if (replay === false) return;
    let first: boolean;
    try {
      // Remembered for as long as the token could still verify: its expiry plus the skew allowed.
      first = await replay.claim(jti, (exp + clockTolerance) * 1000);
    } catch (error) {
      throw new IdentityError("ERR_IDENTITY_REPLAY_STORE_UNAVAILABLE", "replay store unavailable", { cause: error });
    }
    if (!first) throw new IdentityError("ERR_IDENTITY_REPLAYED", "identity token was already used");
  }

  /** Verifies explicit request facts. */
  async function verifyFacts(facts: RequestFacts): Promise<Identity> {
    if (facts.token === null || facts.token === "" || facts.token.includes(",")) {
      throw new IdentityError("ERR_IDENTITY_MISSING", "no identity header");
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(facts.token, resolver, {
        algorithms: ["EdDSA", "ES256"],
        typ: IDENTITY_TYP,
        issuer,
        audience,
        clockTolerance,
        maxTokenAge: MAX_AGE_S + clockTolerance,
        requiredClaims: ["iat", "exp", "sub", "jti", "key_id", "htm", "htu"],
      }));
    } catch (error) {
      throw mapJoseError(error);
    }
    const { sub, jti, key_id: keyId, htm, htu, iat, exp } = payload as Record<string, unknown>;
    if (typeof sub !== "string" || typeof jti !== "string" || typeof keyId !== "string") {
      throw new IdentityError("ERR_IDENTITY_CLAIM", "identity claims sub, jti and key_id must be strings");
    }
    if (typeof iat !== "number" || typeof exp !== "number" || exp - iat > MAX_AGE_S) {
      throw new IdentityError("ERR_IDENTITY_CLAIM", "identity token lives longer than 60 s");
    }
    if (htm !== facts.method.toUpperCase() || htu !== facts.path) {
      throw new IdentityError("ERR_IDENTITY_MISMATCH", "identity token was issued for another method or path");
    }
    // Last, so only a token that is valid for this very request uses up its jti.
    await claimOnce(jti, exp);
    return { accountId: sub, keyId, requestId: jti };
  }

  /** Verifies the identity header of a request the engine received. */
  async function verifyRequest(request: Request): Promise<Identity> {
    return verifyFacts({
      method: request.method,
      path: new URL(request.url).pathname,
      token: request.headers.get(IDENTITY_HEADER),
    });
  }

  return Object.assign(verifyRequest, { verifyFacts });
}

export type IdentityVerifier = ReturnType<typeof createIdentityVerifier>;

const verifiers = new Map<string, IdentityVerifier>();

/**
 * Verifies a request's identity header, with a verifier (and JWKS cache) kept per
 * `jwksUrl`/issuer/audience for the life of the process.
 */
export async function verifyIdentity(
  request: Request,
  options: VerifierOptions & { jwksUrl: string | URL },
): Promise<Identity> {
  const cacheKey = `${String(options.jwksUrl)} ${options.issuer ?? ""} ${options.audience ?? ""}`;
  let verifier = verifiers.get(cacheKey);
  if (verifier === undefined) {
    verifier = createIdentityVerifier(options);
    verifiers.set(cacheKey, verifier);
  }
  return verifier(request);
}
