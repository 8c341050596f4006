/**
 * The key record stored under `key:<key_id>` (docs/kv-schema.md) and the public key object
 * built from it (SPEC §5). A record never leaves the gateway; a key object never
 * carries a hash.
 */

export interface KeyRecord {
  /** Record format version. */
  v: 1;
  key_id: string;
  account_id: string;
  name: string;
  /** `sha256:<hex>` of the current secret. */
  secret_hash: string;
  /** Hash of the secret replaced by the last roll, valid until `previous_secret_expires_at`. */
  previous_secret_hash: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

/** The key object of SPEC §5. */
export interface KeyObject {
  object: "api_key";
  key_id: string;
  name: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** Builds the public key object: an explicit allow-list, so a new record field never leaks. */
export function toKeyObject(record: KeyRecord, lastUsedAt: string | null): KeyObject {
  return {
    object: "api_key",
    key_id: record.key_id,
    name: record.name,
    created_at: record.created_at,
    expires_at: record.expires_at,
    revoked_at: record.revoked_at,
    last_used_at: lastUsedAt,
  };
}

/**
 * Validates a value read from KV. Anything that is not a v1 record is treated as
 * absent by the caller's choice, never trusted half-way.
 */
export function isKeyRecord(value: unknown): value is KeyRecord {
  if (typeof value !== "object" || value === null) return false;
  const r = value as Record<string, unknown>;
  const optionalString = (x: unknown) => x === null || typeof x === "string";
  return (
    r.v === 1 &&
    typeof r.key_id === "string" &&
    typeof r.account_id === "string" &&
    typeof r.name === "string" &&
    typeof r.secret_hash === "string" &&
    optionalString(r.previous_secret_hash) &&
    optionalString(r.previous_secret_expires_at) &&
    typeof r.created_at === "string" &&
    optionalString(r.expires_at) &&
    optionalString(r.revoked_at)
  );
}

/** KV key names; the one place prefixes are spelled (docs/kv-schema.md). */
export const kvKeys = {
  record: (keyId: string) => `key:${keyId}`,
  lastUsed: (keyId: string) => `used:${keyId}`,
  accountPrefix: (accountId: string) => `acct:${accountId}:`,
  /** Newest first: KV lists in ascending order, so the creation time is inverted. */
  accountEntry: (accountId: string, createdAtMs: number, keyId: string) =>
    `acct:${accountId}:${String(MAX_TIME_MS - createdAtMs).padStart(14, "0")}:${keyId}`,
  /** Finds a key from a leaked secret alone: the hex SHA-256 of the secret → its key_id. */
  secretIndex: (secretSha256Hex: string) => `secret:${secretSha256Hex}`,
} as const;

/** Larger than any creation time in ms this code will see (year 5138). */
const MAX_TIME_MS = 99_999_999_999_999;
