/**
 * Test keys for the benchmark, created through the gateway's own KeyStore (so the
 * records have exactly the production shape) into the local KV host, and the hostile
 * Authorization values of the failure scenarios.
 */
import { generateKeyPairSync } from "node:crypto";
import { generateKeyId, generateSecret } from "../../src/keys/format.ts";
import { KeyStore } from "../../src/keys/store.ts";
import type { KvNamespaceStore } from "./kv-server.ts";

export interface BenchKey {
  keyId: string;
  secret: string;
}

/** A KVNamespace-shaped adapter over the local store, for code that runs in Node. */
export function kvAdapter(store: KvNamespaceStore): KVNamespace {
  const adapter = {
    async get(key: string, type?: unknown) {
      const value = store.peek(key);
      if (value === null) return null;
      const kind = typeof type === "object" && type !== null ? (type as { type?: string }).type : type;
      return kind === "json" ? JSON.parse(value.toString()) : value.toString();
    },
    async put(key: string, value: string) {
      store.put(key, value);
    },
    async delete(key: string) {
      store.delete(key);
    },
  };
  return adapter as unknown as KVNamespace;
}

/** Creates `count` keys in `accountId` (uncounted: seeding is not part of any measurement). */
export async function seedKeys(store: KvNamespaceStore, count: number, accountId = "acct_bench"): Promise<BenchKey[]> {
  const keys = new KeyStore(kvAdapter(store));
  const out: BenchKey[] = [];
  const batch = 256;
  for (let i = 0; i < count; i += batch) {
    const made = await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, (_, j) =>
        keys.create(accountId, { name: `bench ${i + j}`, expiresAt: null }),
      ),
    );
    for (const { key, secret } of made) out.push({ keyId: key.key_id, secret });
  }
  return out;
}

/** Well-formed key pairs (valid checksum) whose key_id is in no store. */
export function unknownKeys(count: number): BenchKey[] {
  return Array.from({ length: count }, () => ({ keyId: generateKeyId(), secret: generateSecret() }));
}

/** Malformed Authorization values of every kind SPEC §3 lists; none may cost a KV read. */
export function garbageAuthorizations(count: number): Array<string | null> {
  const id = generateKeyId();
  const secret = generateSecret();
  const badChecksum = secret.slice(0, -1) + (secret.endsWith("0") ? "1" : "0");
  const kinds: Array<(i: number) => string | null> = [
    () => null, // header missing
    () => `Basic ${btoa(`${id}:${secret}`)}`,
    () => `Bearer ${id} ${secret}`, // space instead of colon
    () => `Bearer ${id}:${badChecksum}`, // bad checksum
    (i) => `Bearer ${id}:nxfs_${"x".repeat(i % 80)}`, // bad format
    (i) => `Bearer ${"A".repeat(200 + (i % 300))}`,
    () => `Bearer ${id.toUpperCase()}:${secret}`,
    () => "Bearer",
    (i) => `Token ${i}`,
  ];
  return Array.from({ length: count }, (_, i) => kinds[i % kinds.length]!(i));
}

/** A fresh Ed25519 signing key set, as IDENTITY_SIGNING_KEYS holds it (never written to disk). */
export function benchSigningKeys(): string {
  const { privateKey } = generateKeyPairSync("ed25519");
  return JSON.stringify({
    keys: [{ ...(privateKey.export({ format: "jwk" }) as Record<string, string>), kid: "bench-ed-1" }],
  });
}
