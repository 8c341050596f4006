/**
 * The Durable Object behind `KEY_CHANGES` (docs/kv-schema.md): the key change log of
 * src/keys/change-log.ts, stored in SQLite, one row per key changed in the window, with a
 * copy in memory so reads cost no rows.
 */
import { DurableObject } from "cloudflare:workers";
import { CHANGE_LOG_NAME, type ChangeEntry, type ChangeLogApi, keptEntries, type RecentChanges } from "./change-log.ts";
import { isKeyRecord, type KeyRecord } from "./record.ts";

/** The Durable Object class behind `KEY_CHANGES`; one instance, `idFromName(CHANGE_LOG_NAME)`. */
export class KeyChangeLog extends DurableObject<object> implements ChangeLogApi {
  readonly #sql: SqlStorage;
  #entries: ChangeEntry[];
  #seq: number;

  constructor(ctx: DurableObjectState, env: object) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(
      "CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, key_id TEXT NOT NULL UNIQUE, record TEXT NOT NULL, changed_at INTEGER NOT NULL)",
    );
    this.#entries = this.#sql
      .exec<{ seq: number; key_id: string; record: string; changed_at: number }>(
        "SELECT seq, key_id, record, changed_at FROM changes ORDER BY seq",
      )
      .toArray()
      .map((row) => ({ ...row, record: JSON.parse(row.record) as KeyRecord }));
    const last = this.#sql.exec<{ seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").toArray()[0];
    this.#seq = last?.seq ?? 0;
  }

  /**
   * Stores the record as its key's latest change and drops what the window no longer keeps.
   * Anything else is refused as a value: an exception thrown across RPC would reject twice.
   */
  async append(record: KeyRecord): Promise<{ seq: number | null }> {
    if (!isKeyRecord(record)) return { seq: null };
    const now = Date.now();
    const text = JSON.stringify(record);
    // REPLACE deletes the key's older row, so the table holds one row per key.
    const row = this.#sql
      .exec<{ seq: number }>(
        "INSERT OR REPLACE INTO changes (key_id, record, changed_at) VALUES (?, ?, ?) RETURNING seq",
        record.key_id,
        text,
        now,
      )
      .one();
    this.#seq = row.seq;
    const entry: ChangeEntry = { seq: row.seq, key_id: record.key_id, record, changed_at: now };
    this.#entries = keptEntries([...this.#entries.filter((e) => e.key_id !== record.key_id), entry], now);
    const oldest = this.#entries[0]?.seq ?? row.seq;
    this.#sql.exec("DELETE FROM changes WHERE seq < ?", oldest);
    return { seq: row.seq };
  }

  /** Every change still in the window, oldest first. */
  async recent(): Promise<RecentChanges> {
    return { seq: this.#seq, entries: keptEntries(this.#entries, Date.now()) };
  }

  /** The key's latest change still in the window, or null. */
  async latest(keyId: string): Promise<ChangeEntry | null> {
    return keptEntries(this.#entries, Date.now()).find((entry) => entry.key_id === keyId) ?? null;
  }
}

/** The log behind a `KEY_CHANGES` binding. A stub per call: it is never shared between requests. */
export function changeLogFrom(binding: { idFromName(name: string): unknown }): ChangeLogApi {
  const namespace = binding as DurableObjectNamespace<KeyChangeLog>;
  const id = namespace.idFromName(CHANGE_LOG_NAME);
  return {
    append: (record) => namespace.get(id).append(record),
    recent: () => namespace.get(id).recent() as Promise<RecentChanges>,
    latest: (keyId) => namespace.get(id).latest(keyId) as Promise<ChangeEntry | null>,
  };
}
