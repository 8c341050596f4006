/**
 * The key change log Durable Object (src/keys/change-log-object.ts) in workerd: what it
 * keeps, in which order, for how long, and that it stores hashes only.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CHANGE_RETENTION_MS, type ChangeEntry, keptEntries, MAX_CHANGE_ENTRIES } from "../../src/keys/change-log.ts";
import type { KeyChangeLog } from "../../src/keys/change-log-object.ts";
import type { KeyRecord } from "../../src/keys/record.ts";

const log = () => env.KEY_CHANGES.get(env.KEY_CHANGES.idFromName(crypto.randomUUID()));

function record(keyId: string, change: Partial<KeyRecord> = {}): KeyRecord {
  return {
    v: 1,
    key_id: keyId,
    account_id: "acct_log",
    name: "log",
    secret_hash: `sha256:${"a".repeat(64)}`,
    previous_secret_hash: null,
    previous_secret_expires_at: null,
    created_at: "2026-06-01T00:00:00.000Z",
    expires_at: null,
    revoked_at: null,
    ...change,
  };
}

describe("KeyChangeLog", () => {
  it("numbers changes in order and keeps only each key's latest", async () => {
    const stub = log();
    const first = await stub.append(record("nxf_a"));
    const second = await stub.append(record("nxf_b"));
    const third = await stub.append(record("nxf_a", { revoked_at: "2026-06-01T00:01:00.000Z" }));
    expect(second.seq).toBeGreaterThan(first.seq!);
    expect(third.seq).toBeGreaterThan(second.seq!);

    const recent = await stub.recent();
    expect(recent.seq).toBe(third.seq);
    expect(recent.entries.map((e) => [e.key_id, e.seq])).toEqual([
      ["nxf_b", second.seq],
      ["nxf_a", third.seq],
    ]);
    expect((await stub.latest("nxf_a"))?.record.revoked_at).toBe("2026-06-01T00:01:00.000Z");
    expect(await stub.latest("nxf_unknown")).toBeNull();

    // One row per key in SQLite too: the table is what a restarted object reloads.
    await runInDurableObject(stub, (_instance: KeyChangeLog, state) => {
      const rows = state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM changes").one();
      expect(rows.n).toBe(2);
    });
  });

  it("refuses anything that is not a key record", async () => {
    const stub = log();
    expect(await stub.append({ key_id: "nxf_x" } as unknown as KeyRecord)).toEqual({ seq: null });
    expect((await stub.recent()).entries).toEqual([]);
  });

  it("stores what the gateway needs to judge a key, and no secret", async () => {
    const stub = log();
    await stub.append(record("nxf_c"));
    const [entry] = (await stub.recent()).entries;
    expect(Object.keys(entry!.record).sort()).toEqual(Object.keys(record("nxf_c")).sort());
    expect(JSON.stringify(entry)).not.toMatch(/nxfs_/);
  });
});

describe("keptEntries", () => {
  const entry = (seq: number, changedAt: number): ChangeEntry => ({
    seq,
    key_id: `nxf_${seq}`,
    record: record(`nxf_${seq}`),
    changed_at: changedAt,
  });

  it("drops entries older than the retention window", () => {
    const now = 1_000_000_000;
    const entries = [entry(1, now - CHANGE_RETENTION_MS), entry(2, now - CHANGE_RETENTION_MS + 1), entry(3, now)];
    expect(keptEntries(entries, now).map((e) => e.seq)).toEqual([2, 3]);
  });

  it("keeps at most the newest MAX_CHANGE_ENTRIES", () => {
    const now = 1_000_000_000;
    const entries = Array.from({ length: MAX_CHANGE_ENTRIES + 5 }, (_, i) => entry(i + 1, now));
    const kept = keptEntries(entries, now);
    expect(kept.length).toBe(MAX_CHANGE_ENTRIES);
    expect(kept[0]!.seq).toBe(6);
    expect(kept.at(-1)!.seq).toBe(MAX_CHANGE_ENTRIES + 5);
  });
});
