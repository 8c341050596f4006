/**
 * Structured log lines: one JSON object per line, as Workers Logs indexes them.
 * Callers pass only identifiers (request id, account, key_id). As a second line of
 * defence every string is scrubbed of anything shaped like a key secret, a Bearer
 * credential or a JWT before it is written; tests scan every line the suite produces.
 */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

// A JWT is matched only where a base64url run starts: restarting at every "eyJ" inside a
// long run made redaction quadratic in the line's length (docs/BENCHMARKS.md, "Linear-time
// text handling").
const SECRET_SHAPES = /nxfs_[0-9A-Za-z]{10,}|bearer\s+\S+|(?<![\w-])eyJ[\w-]*\.[\w-]*\.[\w-]*/gi;

/** Replaces secret-shaped substrings with `[redacted]`. */
export function redact(text: string): string {
  return text.replace(SECRET_SHAPES, "[redacted]");
}

/** Writes one structured line. `warn` and `error` go to stderr. */
export function log(level: "info" | "warn" | "error", event: string, fields: LogFields = {}): void {
  const line = redact(JSON.stringify({ level, event, ...fields }));
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

/** What the access log says about one request. */
export interface RequestRecord {
  requestId: string;
  method: string;
  url: string;
  status: number;
  /** Why authentication failed, `authenticated`, or `public` when no key was asked for. */
  outcome: string;
  accountId?: string;
  keyId?: string;
  /** `Date.now()` when the request arrived. */
  started: number;
}

/** The access log line, one per request on either path (src/app.ts). */
export function logRequest(record: RequestRecord): void {
  log("info", "request", {
    request_id: record.requestId,
    method: record.method,
    path: new URL(record.url).pathname,
    status: record.status,
    outcome: record.outcome,
    account_id: record.accountId,
    key_id: record.keyId,
    duration_ms: Date.now() - record.started,
  });
}
