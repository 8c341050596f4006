/** The cost ladder's rungs and probes, shared by the runner (ladder.ts) and the Worker (workers/ladder.ts). */

/**
 * The cumulative rungs, in order; each includes every one before it, and each is one of
 * the gateway's own functions: `forwardToEngine` (identity signature, header policy,
 * deadline, response headers), `authenticate` (limiter, parse, key check against the
 * KeyStore), `logRequest` (the access line).
 */
export const RUNGS = ["passthrough", "forward", "authenticate", "access-log"] as const;

/** Probes: the passthrough plus one piece alone. */
export const PROBES = [
  "signature-alone",
  "signature-alone-webcrypto",
  "request-headers-alone",
  "response-headers-alone",
  "access-log-alone",
] as const;
