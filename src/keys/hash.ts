/**
 * Secret hashing and constant-time comparison (SPEC §2). Only `sha256:<hex>` is stored;
 * the prefix versions the scheme so it can change without a flag day.
 */

export const HASH_SCHEME = "sha256";
const HASH_PREFIX = `${HASH_SCHEME}:`;
const HASH_PATTERN = /^sha256:[0-9a-f]{64}$/;
const encoder = new TextEncoder();

/** SHA-256 of the secret's UTF-8 bytes. */
export async function digestSecret(secret: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(secret)));
}

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** The stored form of a secret: `sha256:<64 hex>`. */
export async function hashSecret(secret: string): Promise<string> {
  return HASH_PREFIX + toHex(await digestSecret(secret));
}

/**
 * Decodes a stored hash into its 32 digest bytes, or null when it is not a hash
 * this code understands (an unknown scheme must never match anything).
 */
export function decodeStoredHash(stored: string): Uint8Array | null {
  if (!HASH_PATTERN.test(stored)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = parseInt(stored.slice(HASH_PREFIX.length + i * 2, HASH_PREFIX.length + i * 2 + 2), 16);
  }
  return out;
}

/**
 * Workers' constant-time compare, typed by @cloudflare/workers-types; spelled out here
 * because the Node scripts that import this module (scripts/dev.ts) see the DOM typing.
 */
type WorkersSubtleCrypto = SubtleCrypto & {
  timingSafeEqual(a: ArrayBufferView, b: ArrayBufferView): boolean;
};

/**
 * Compares two byte strings with the platform's constant-time compare
 * (`crypto.subtle.timingSafeEqual`, native in Workers), which reads every byte of both.
 * It throws on unequal lengths, so then `a` is compared with itself and the answer is
 * false: the time still depends only on `a.length`, never on the content.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const sameLength = a.byteLength === b.byteLength;
  const bytesEqual = (crypto.subtle as WorkersSubtleCrypto).timingSafeEqual(a, sameLength ? b : a);
  return sameLength && bytesEqual;
}
