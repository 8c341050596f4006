/** The soak's accounts and keys, seeded through the gateway's own KeyStore before workerd starts. */
import { KeyStore } from "../../src/keys/store.ts";
import { type BenchKey, kvAdapter, type KvNamespaceStore, seedKeys } from "../bench/lib.ts";

export const ACCOUNT = "acct_soak";
const CYCLE_ACCOUNT = "acct_soak_cycle";
const OTHER_ACCOUNT = "acct_soak_other";
/** Keys the valid traffic rotates through (all cached in the isolate after warm-up). */
const VALID_KEYS = 64;

export const bearer = (k: BenchKey) => `Bearer ${k.keyId}:${k.secret}`;

export interface SoakKeys {
  valid: BenchKey[];
  revoked: BenchKey[];
  expired: BenchKey[];
  /** The key the lifecycles work with, in an account of its own. */
  admin: BenchKey;
  /** A key of another account, whose keys the lifecycles must not see. */
  foreign: BenchKey;
}

export async function seedSoakKeys(store: KvNamespaceStore): Promise<SoakKeys> {
  const valid = await seedKeys(store, VALID_KEYS, ACCOUNT);
  const [admin] = await seedKeys(store, 1, CYCLE_ACCOUNT);
  const [foreign] = await seedKeys(store, 1, OTHER_ACCOUNT);
  const keyStore = new KeyStore(kvAdapter(store));
  const revoked = await seedKeys(store, 8, ACCOUNT);
  for (const k of revoked) {
    const change = await keyStore.revoke(ACCOUNT, k.keyId);
    if (!change.ok) throw new Error(`seeding: could not revoke ${k.keyId}`);
  }
  const expired: BenchKey[] = [];
  for (let i = 0; i < 8; i++) {
    const made = await keyStore.create(ACCOUNT, {
      name: `soak expired ${i}`,
      expiresAt: new Date(Date.now() - 3_600_000).toISOString(),
    });
    expired.push({ keyId: made.key.key_id, secret: made.secret });
  }
  return { valid, revoked, expired, admin: admin!, foreign: foreign! };
}
