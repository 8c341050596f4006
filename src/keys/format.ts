/**
 * API key format (SPEC §2): generation, parsing and the offline checksum.
 *
 * key_id     = "nxf_"  + 32 lowercase hex chars (16 random bytes)
 * key_secret = "nxfs_" + 58 random base62 chars + 6-char base62 CRC-32 of everything before it
 */
import { toHex } from "./hash.ts";

export const KEY_ID_PREFIX = "nxf_";
export const SECRET_PREFIX = "nxfs_";
export const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const SECRET_RANDOM_LENGTH = 58;
const CHECKSUM_LENGTH = 6;
export const SECRET_LENGTH = SECRET_PREFIX.length + SECRET_RANDOM_LENGTH + CHECKSUM_LENGTH;

/** The key_id grammar. Lowercase only: the id is an identifier, not case-folded. */
export const KEY_ID_PATTERN = /^nxf_[0-9a-f]{32}$/;
/** The key_secret grammar, for secret scanners (the checksum is checked separately). */
export const KEY_SECRET_PATTERN = /^nxfs_[0-9A-Za-z]{64}$/;
/** Account ids (SPEC §5). */
export const ACCOUNT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, as zlib computes it) of the low byte of each char code. */
export function crc32(ascii: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < ascii.length; i++) {
    crc = CRC_TABLE[(crc ^ ascii.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Writes `value` in base62 (`0-9A-Za-z`), left-padded with "0" to `width`. */
export function toBase62(value: number, width: number): string {
  let out = "";
  let v = value;
  do {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  } while (v > 0);
  return out.padStart(width, "0");
}

/** The 6-char checksum of a secret's first 63 characters (prefix + random part). */
export function secretChecksum(body: string): string {
  return toBase62(crc32(body), CHECKSUM_LENGTH);
}

/**
 * True when `secret` has the key_secret grammar and its checksum matches.
 * Pure and offline: this is what a secret scanner runs.
 */
export function isWellFormedSecret(secret: string): boolean {
  if (secret.length !== SECRET_LENGTH || !KEY_SECRET_PATTERN.test(secret)) return false;
  const body = secret.slice(0, SECRET_LENGTH - CHECKSUM_LENGTH);
  return secretChecksum(body) === secret.slice(SECRET_LENGTH - CHECKSUM_LENGTH);
}

/** True when `keyId` has the key_id grammar. */
export function isWellFormedKeyId(keyId: string): boolean {
  return KEY_ID_PATTERN.test(keyId);
}

/** A fresh key_id from 16 CSPRNG bytes. */
export function generateKeyId(): string {
  return KEY_ID_PREFIX + toHex(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * `count` uniformly random base62 characters. Bytes ≥ 248 (= 4 × 62) are rejected
 * so that `byte % 62` has no modulo bias.
 */
export function randomBase62(count: number): string {
  let out = "";
  while (out.length < count) {
    const bytes = crypto.getRandomValues(new Uint8Array(count * 2));
    for (const b of bytes) {
      if (b >= 248) continue;
      out += BASE62[b % 62];
      if (out.length === count) break;
    }
  }
  return out;
}

/** A fresh key_secret with its checksum. */
export function generateSecret(): string {
  const body = SECRET_PREFIX + randomBase62(SECRET_RANDOM_LENGTH);
  return body + secretChecksum(body);
}

/** The credential pair carried by a request. */
export interface Credentials {
  keyId: string;
  secret: string;
}

/** Why a header did not yield credentials; never sent to a client (SPEC §3). */
export type CredentialsProblem = "missing" | "wrong_scheme" | "malformed" | "bad_checksum";

export type ParsedAuthorization = { ok: true; credentials: Credentials } | { ok: false; problem: CredentialsProblem };

// `Bearer` + 1*SP + key_id ":" key_secret, after optional surrounding whitespace (RFC 9110 §11.6.2, §5.6.3).
const TOKEN_PATTERN = /^(nxf_[0-9a-f]{32}):(nxfs_[0-9A-Za-z]{64})$/;

/**
 * Strips surrounding spaces and tabs in linear time. A regex like `/[ \t]+$/` restarts
 * at every position of a long inner run of spaces, which is quadratic in the header's
 * length (docs/BENCHMARKS.md, "Linear-time text handling").
 */
function trimOws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === " " || text[start] === "\t")) start++;
  while (end > start && (text[end - 1] === " " || text[end - 1] === "\t")) end--;
  return text.slice(start, end);
}

/**
 * Parses an `Authorization` header value into a key pair. The scheme is matched
 * case-insensitively; anything but exactly one `KEY_ID:KEY_SECRET` token fails,
 * and so does a secret whose checksum does not match (no store is consulted).
 */
export function parseAuthorization(header: string | null | undefined): ParsedAuthorization {
  if (header == null || header === "") return { ok: false, problem: "missing" };
  const value = trimOws(header);
  if (value.length < 7 || value.slice(0, 6).toLowerCase() !== "bearer" || value[6] !== " ") {
    return { ok: false, problem: "wrong_scheme" };
  }
  let start = 7;
  while (value[start] === " ") start++;
  const match = TOKEN_PATTERN.exec(value.slice(start));
  if (match === null) return { ok: false, problem: "malformed" };
  const secret = match[2]!;
  if (!isWellFormedSecret(secret)) return { ok: false, problem: "bad_checksum" };
  return { ok: true, credentials: { keyId: match[1]!, secret } };
}
