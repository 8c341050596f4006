/**
 * Structured log lines: one JSON object per line, as Workers Logs indexes them.
 * Callers pass only identifiers (request id, account, key_id). As a second line of
 * defence every string is scrubbed of anything shaped like a key secret, a Bearer
 * credential or a JWT before it is written; tests scan every line the suite produces.
 */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

// A JWT is matched only where a base64url run starts: restarting at every "eyJ" inside a
// long run made redaction quadratic (128 KB of "eyJ" in a logged path took ~7 s of CPU).
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
