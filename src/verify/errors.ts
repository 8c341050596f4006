/**
 * Typed errors of the engine-side verifier; switch on `code`, never on the message.
 */
export type IdentityErrorCode =
  /** No X-Nixflex-Identity header, or more than one value. */
  | "ERR_IDENTITY_MISSING"
  /** Not a JWT, bad signature, unknown kid or a disallowed alg. */
  | "ERR_IDENTITY_INVALID"
  /** `exp` is past, or `iat` older than the allowed age. */
  | "ERR_IDENTITY_EXPIRED"
  /** `typ`, `iss`, `aud` or a required claim is wrong or missing. */
  | "ERR_IDENTITY_CLAIM"
  /** `htm`/`htu` do not match this request: a captured header replayed elsewhere. */
  | "ERR_IDENTITY_MISMATCH"
  /** The token's `jti` was already used: a captured header replayed on the same method and path. */
  | "ERR_IDENTITY_REPLAYED"
  /** The gateway's JWKS could not be fetched. */
  | "ERR_IDENTITY_KEYS_UNAVAILABLE"
  /** The shared replay store (e.g. Redis) failed, so a first use cannot be told from a replay. */
  | "ERR_IDENTITY_REPLAY_STORE_UNAVAILABLE";

/** The codes that mean "cannot decide right now" (503), not "this caller is not who it says" (401). */
const UNAVAILABLE: ReadonlySet<IdentityErrorCode> = new Set([
  "ERR_IDENTITY_KEYS_UNAVAILABLE",
  "ERR_IDENTITY_REPLAY_STORE_UNAVAILABLE",
]);

export class IdentityError extends Error {
  readonly code: IdentityErrorCode;

  constructor(code: IdentityErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "IdentityError";
    this.code = code;
  }

  /** The HTTP status an engine answers with: 503 when the verifier could not decide, 401 otherwise. */
  get status(): 401 | 503 {
    return UNAVAILABLE.has(this.code) ? 503 : 401;
  }
}
