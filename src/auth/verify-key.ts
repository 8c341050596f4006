/**
 * Checks a key pair against the store. Every outcome is a value; only a store failure
 * throws. Unknown key_id, wrong secret, revoked and expired keys all do the same work —
 * one digest and two constant-time comparisons — before the answer is chosen, so
 * timing does not tell them apart (SPEC §3).
 */
import type { Credentials } from "../keys/format.ts";
import { digestSecret, timingSafeEqual } from "../keys/hash.ts";
import type { KeyStore } from "../keys/store.ts";

export type Verification =
  | { ok: true; accountId: string; keyId: string }
  | { ok: false; reason: "unknown_key" | "wrong_secret" | "revoked" | "expired" };

/** The hashing and comparison primitives, injectable so tests can count the work. */
export interface VerifyPrimitives {
  digest(secret: string): Promise<Uint8Array>;
  equal(a: Uint8Array, b: Uint8Array): boolean;
}

export const defaultPrimitives: VerifyPrimitives = { digest: digestSecret, equal: timingSafeEqual };

// Stands in for a missing hash; random per isolate, so no secret is known to match it.
// Drawn on first use: workerd forbids random values in global scope (`wrangler dev` would not start).
let noHash: Uint8Array | undefined;
const NO_HASH = () => (noHash ??= crypto.getRandomValues(new Uint8Array(32)));

/** Verifies `credentials`; throws only `service_unavailable` from the store. */
export async function verifyKey(
  store: KeyStore,
  credentials: Credentials,
  primitives: VerifyPrimitives = defaultPrimitives,
  waitUntil?: (promise: Promise<unknown>) => void,
): Promise<Verification> {
  const lookup = await store.lookup(credentials.keyId, waitUntil);
  const digest = await primitives.digest(credentials.secret);
  const now = store.now();
  const matchesCurrent = primitives.equal(digest, lookup?.current ?? NO_HASH());
  const matchesPrevious = primitives.equal(digest, lookup?.previous ?? NO_HASH());
  if (lookup === null) return { ok: false, reason: "unknown_key" };
  if (!(matchesCurrent || (matchesPrevious && now < lookup.previousUntilMs)))
    return { ok: false, reason: "wrong_secret" };
  if (now >= lookup.revokedAtMs) return { ok: false, reason: "revoked" };
  if (now >= lookup.expiresAtMs) return { ok: false, reason: "expired" };
  return { ok: true, accountId: lookup.record.account_id, keyId: lookup.record.key_id };
}
