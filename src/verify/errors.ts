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
  /** The gateway's JWKS could not be fetched. */
  | "ERR_IDENTITY_KEYS_UNAVAILABLE";

export class IdentityError extends Error {
  readonly code: IdentityErrorCode;

  constructor(code: IdentityErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "IdentityError";
    this.code = code;
  }
}
