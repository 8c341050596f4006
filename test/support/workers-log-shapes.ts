/**
 * What must never appear in a log line (TEAM rules; SPEC §2 "never logged"), shared by
 * the log-capture setup file and the log-hygiene test. Pure: no runtime APIs.
 */

/** Forbidden by shape, whatever value the suite used. */
export const FORBIDDEN_SHAPES: Array<[what: string, pattern: RegExp]> = [
  // A key secret, or a run of one long enough to matter (nxfs_ + 64 base62).
  ["a key secret", /nxfs_[0-9A-Za-z]{16,}/],
  // An Authorization value: a Bearer or Basic credential, or a key pair.
  ["an Authorization value", /\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+[A-Za-z0-9._~+/=:-]{8,}|\bBasic\s+[A-Za-z0-9+/]{8,}/],
  ["a key pair", /nxf_[0-9a-f]{32}:/],
  // A JWT: base64url of '{"' opens both the header and the payload.
  ["a JWT", /eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/],
];

/**
 * Why `line` must not be logged, or null. `sensitive` holds exact values the suite
 * created (secrets); their random middle counts too. The reason never quotes the value.
 */
export function forbiddenIn(line: string, sensitive: Iterable<string> = []): string | null {
  for (const [what, pattern] of FORBIDDEN_SHAPES) if (pattern.test(line)) return what;
  for (const value of sensitive) {
    if (value.length >= 16 && (line.includes(value) || line.includes(value.slice(5, -6))))
      return "a secret created by the suite";
  }
  return null;
}
