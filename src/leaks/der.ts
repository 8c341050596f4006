/**
 * ECDSA signatures arrive DER-encoded (`SEQUENCE { INTEGER r, INTEGER s }`, RFC 3279 §2.2.3),
 * as GitHub signs its secret-scanning reports; WebCrypto verifies only the raw `r || s` form
 * (IEEE P1363). This converts one to the other and refuses anything that is not exactly one
 * canonical DER signature: BER length forms, non-minimal or negative integers, integers wider
 * than the curve, zero, and trailing bytes all fail, so one signature has one encoding.
 */

const SEQUENCE = 0x30;
const INTEGER = 0x02;

/** Reads one INTEGER at `at` as an unsigned big-endian value of at most `size` bytes. */
function readInteger(der: Uint8Array, at: number, size: number): { value: Uint8Array; next: number } | null {
  if (der[at] !== INTEGER) return null;
  const length = der[at + 1];
  // Short-form lengths only: a valid integer here is at most size + 1 bytes (< 128).
  if (length === undefined || length === 0 || length >= 0x80) return null;
  const start = at + 2;
  const end = start + length;
  if (end > der.length) return null;
  let first = start;
  if (der[start]! & 0x80) return null; // negative
  if (der[start] === 0x00) {
    // A leading zero is allowed only to keep a high bit from reading as a sign (X.690 §8.3.2).
    if (length === 1 || (der[start + 1]! & 0x80) === 0) return null;
    first = start + 1;
  }
  if (end - first > size) return null;
  const value = new Uint8Array(size);
  value.set(der.subarray(first, end), size - (end - first));
  if (value.every((b) => b === 0)) return null;
  return { value, next: end };
}

/**
 * The raw `r || s` (2 × `size` bytes; 32 for P-256) of a DER ECDSA signature, or null when
 * `der` is not one canonical DER signature for that size.
 */
export function derToRawSignature(der: Uint8Array, size = 32): Uint8Array | null {
  if (der.length < 2 || der[0] !== SEQUENCE) return null;
  const length = der[1]!;
  if (length >= 0x80 || length !== der.length - 2) return null;
  const r = readInteger(der, 2, size);
  if (r === null) return null;
  const s = readInteger(der, r.next, size);
  if (s === null || s.next !== der.length) return null;
  const raw = new Uint8Array(size * 2);
  raw.set(r.value, 0);
  raw.set(s.value, size);
  return raw;
}
