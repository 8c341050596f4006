/**
 * The key change log: one global, SQLite-backed Durable Object (binding `KEY_CHANGES`,
 * docs/kv-schema.md) holding the latest record of every key changed in the last
 * `CHANGE_RETENTION_MS`. KV stays the store of record; the log is what makes a change
 * visible everywhere within seconds, because a Durable Object is strongly consistent
 * where KV's edge caches are not. Isolates read it through their location's cache
 * (src/keys/sync.ts); the write path appends to it after the KV write (src/keys/store.ts).
 *
 * Only the latest entry per key is kept (an isolate judges a key by its newest record)
 * and entries are kept in memory too, so a read costs no SQLite rows; SQLite makes them
 * survive an eviction or a deploy, which matters for a revoke. The class itself is in
 * src/keys/change-log-object.ts (it needs the Workers runtime; this file does not).
 */
import type { KeyRecord } from "./record.ts";

/**
 * How long an entry stays in the log. Longer than KV can be stale anywhere (its 60 s edge
 * cache plus an isolate's 30 s record cache), with room to spare for KV stragglers: once
 * an entry is dropped, every isolate's KV read already shows the change.
 */
export const CHANGE_RETENTION_MS = 300_000;
/**
 * At most this many keys in the log. It bounds what every location reads per sync
 * interval; past it the oldest entries go first and those changes fall back to KV's bound.
 */
export const MAX_CHANGE_ENTRIES = 2_000;

/** One change: the key's record after it (hashes only, never a secret). */
export interface ChangeEntry {
  seq: number;
  key_id: string;
  record: KeyRecord;
  /** When the log stored it, ms since the epoch (the log's clock). */
  changed_at: number;
}

/** The log's recent changes; `seq` is the last sequence number handed out. */
export interface RecentChanges {
  seq: number;
  entries: ChangeEntry[];
}

/** What the gateway calls on the log: the Durable Object's RPC methods, or a test double. */
export interface ChangeLogApi {
  /** The change's sequence number; `null` when the value is not a key record (nothing stored). */
  append(record: KeyRecord): Promise<{ seq: number | null }>;
  recent(): Promise<RecentChanges>;
  latest(keyId: string): Promise<ChangeEntry | null>;
}

/**
 * The entries still kept at `now`: inside the retention window, the newest
 * `MAX_CHANGE_ENTRIES`, in sequence order. One rule for the memory copy and the table.
 */
export function keptEntries(entries: readonly ChangeEntry[], now: number): ChangeEntry[] {
  const inWindow = entries.filter((entry) => now - entry.changed_at < CHANGE_RETENTION_MS);
  return inWindow.slice(Math.max(0, inWindow.length - MAX_CHANGE_ENTRIES));
}

/** The one instance's name: one log for the whole gateway, so every change has one order. */
export const CHANGE_LOG_NAME = "global";
