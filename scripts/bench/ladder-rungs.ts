/** The cost ladder's rungs and probes, shared by the runner (ladder.ts) and the Worker (workers/ladder.ts). */

/** The cumulative rungs, in order; each includes every one before it. */
export const RUNGS = [
  "passthrough",
  "request-headers",
  "deadline",
  "response-headers",
  "key-check",
  "signature",
  "access-log",
] as const;

/** Probes: the passthrough plus one piece alone. */
export const PROBES = ["signature-alone-webcrypto", "access-log-alone"] as const;
