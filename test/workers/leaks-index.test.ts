/**
 * Finding a key from a leaked secret (SPEC §10): create and roll write the `secret:` index
 * (the secret's SHA-256 → its key_id) through the one write path; a roll's previous secret,
 * still in its grace period, dies alone when it leaks; keys created before the index existed
 * are found by the pair, not by the bare secret.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { ChangeLogApi } from "../../src/keys/change-log.ts";
import { type KeyRecord, kvKeys } from "../../src/keys/record.ts";
import { createStoreCaches, KeyStore, RECORD_TTL_MS } from "../../src/keys/store.ts";
import { createSyncView, KeySync } from "../../src/keys/sync.ts";
import { adminStore, gateway, rememberSensitive } from "./harness.ts";
import {
  leakEnv,
  newSigner,
  outbound,
  reportBody,
  type Signer,
  sendReport,
  tokenHash,
  watchLog,
} from "./leaks-support.ts";

let signer: Signer;
beforeAll(async () => {
  signer = await newSigner();
});

/** A gateway and a store on one clock that moves only when told. */
function setup() {
  let clock = Date.parse("2031-06-01T00:00:00.000Z");
  const now = () => clock;
  const g = gateway({ env: leakEnv, outboundFetch: outbound([signer]).fetch, now });
  const store = adminStore({ now });
  const account = `acct_${crypto.randomUUID().slice(0, 8)}`;
  async function create(expiresAt: string | null = null) {
    const { key, secret } = await store.create(account, { name: "leaky", expiresAt });
    rememberSensitive(secret);
    return { keyId: key.key_id, secret };
  }
  async function roll(keyId: string, graceSeconds: number) {
    const change = await store.roll(account, keyId, graceSeconds);
    if (!change.ok || change.secret === undefined) throw new Error("roll failed");
    rememberSensitive(change.secret);
    return change.secret;
  }
  const status = async (keyId: string, secret: string) =>
    (await g.send(g.request("/v1/agents", { authorization: `Bearer ${keyId}:${secret}` }))).res.status;
  const labels = async (tokens: string[]) =>
    JSON.parse((await sendReport(g, signer, reportBody(tokens))).body).map((f: { label: string }) => f.label);
  /** Asserts that a report of `tokens` is all false_positive and leaves the key's record as it was. */
  async function expectIgnored(keyId: string, tokens: string[]) {
    const before = await env.API_KEYS.get(kvKeys.record(keyId), "text");
    expect(await labels(tokens)).toEqual(tokens.map(() => "false_positive"));
    expect(await env.API_KEYS.get(kvKeys.record(keyId), "text")).toBe(before);
  }
  return { g, store, account, create, roll, status, labels, expectIgnored, advance: (ms: number) => (clock += ms) };
}

describe("the secret: index", () => {
  it("is written by create and roll: the secret's SHA-256 hex names the key_id, and no secret is stored", async () => {
    const { create, roll } = setup();
    const { keyId, secret } = await create();
    expect(await env.API_KEYS.get(kvKeys.secretIndex(await tokenHash(secret)), "text")).toBe(keyId);
    const rolled = await roll(keyId, 0);
    expect(await env.API_KEYS.get(kvKeys.secretIndex(await tokenHash(rolled)), "text")).toBe(keyId);
    const page = await env.API_KEYS.list({ prefix: "secret:" });
    for (const entry of page.keys) {
      expect(entry.name).toMatch(/^secret:[0-9a-f]{64}$/);
      expect(entry.name).not.toContain(secret);
      expect(entry.name).not.toContain(rolled);
    }
  });

  it("finds a key rolled a moment ago by its new secret; the replaced secret (no grace) is false_positive", async () => {
    const { create, roll, status, labels } = setup();
    const { keyId, secret } = await create();
    const rolled = await roll(keyId, 0);
    expect(await labels([secret])).toEqual(["false_positive"]);
    expect(await status(keyId, rolled)).toBe(200);
    expect(await labels([rolled])).toEqual(["true_positive"]);
    expect(await status(keyId, rolled)).toBe(401);
  });
});

describe("a roll's previous secret, leaked during its grace period", () => {
  it("ends the grace (the old secret dies) and keeps the key and its new secret working", async () => {
    const { create, roll, status, labels } = setup();
    const { keyId, secret } = await create();
    const rolled = await roll(keyId, 3600);
    expect(await status(keyId, secret)).toBe(200);
    const log = watchLog();
    expect(await labels([secret])).toEqual(["true_positive"]);
    expect(await status(keyId, secret)).toBe(401);
    expect(await status(keyId, rolled)).toBe(200);
    const record = await env.API_KEYS.get<Record<string, unknown>>(kvKeys.record(keyId), "json");
    expect(record).toMatchObject({ revoked_at: null, previous_secret_hash: null, previous_secret_expires_at: null });
    expect(log.audits(keyId)).toEqual([
      expect.objectContaining({ action: "end_grace", actor: "leak_report:github_secret_scanning:content" }),
    ]);
  });

  it("is false_positive once the grace period is over, and nothing changes", async () => {
    const { create, roll, expectIgnored, advance } = setup();
    const { keyId, secret } = await create();
    await roll(keyId, 60);
    advance(61_000);
    await expectIgnored(keyId, [secret]);
  });
});

describe("keys the index does not know", () => {
  it("a key created before the index existed: the bare secret is false_positive, the pair revokes it", async () => {
    const { create, status, labels, expectIgnored } = setup();
    const { keyId, secret } = await create();
    await env.API_KEYS.delete(kvKeys.secretIndex(await tokenHash(secret)));
    await expectIgnored(keyId, [secret]);
    expect(await status(keyId, secret)).toBe(200);
    expect(await labels([`${keyId}:${secret}`])).toEqual(["true_positive"]);
    expect(await status(keyId, secret)).toBe(401);
  });

  it("an expired key's secret is false_positive and its record is left alone", async () => {
    const { create, expectIgnored, advance } = setup();
    const { keyId, secret } = await create(new Date(Date.parse("2031-06-01T00:00:00.000Z") + 1000).toISOString());
    advance(2000);
    await expectIgnored(keyId, [secret, `${keyId}:${secret}`]);
  });
});

describe("every isolate", () => {
  it("a second isolate that cached the key refuses it once its cached record lapses (the KV write is there)", async () => {
    const { create } = setup();
    const { keyId, secret } = await create();
    let clock = Date.now();
    const other = gateway({ env: leakEnv, now: () => clock });
    const call = async () =>
      (await other.send(other.request("/v1/agents", { authorization: `Bearer ${keyId}:${secret}` }))).res.status;
    expect(await call()).toBe(200);
    const reporter = gateway({ env: leakEnv, outboundFetch: outbound([signer]).fetch });
    expect(JSON.parse((await sendReport(reporter, signer, reportBody([secret]))).body)[0].label).toBe("true_positive");
    clock += RECORD_TTL_MS + 1;
    expect(await call()).toBe(401);
  });
});

describe("a change logged elsewhere", () => {
  it("judges a reported secret by the key change log, not by this location's stale KV copy", async () => {
    const account = `acct_${crypto.randomUUID().slice(0, 8)}`;
    const { key, secret } = await adminStore().create(account, { name: "rolled elsewhere", expiresAt: null });
    rememberSensitive(secret);
    // Another location rolled the key without grace; here KV still holds the old record.
    const old = (await env.API_KEYS.get(kvKeys.record(key.key_id), "json")) as KeyRecord;
    const rolled: KeyRecord = { ...old, secret_hash: `sha256:${"0".repeat(64)}` };
    const log: ChangeLogApi = {
      append: async () => ({ seq: null }),
      recent: async () => ({ seq: 1, entries: [{ seq: 1, key_id: key.key_id, record: rolled, changed_at: 0 }] }),
      latest: async () => null,
    };
    const storeWith = (sync?: KeySync) => new KeyStore(env.API_KEYS, { caches: createStoreCaches(), sync });
    const sync = new KeySync({
      log,
      locationCache: () => Promise.reject(new Error("no location cache in this test")),
      trustMs: 90_000,
      view: createSyncView(),
    });

    const [judged] = await storeWith(sync).matchLeaked([{ secret, keyId: null }]);
    expect(judged!.state).toBe("not_live");
    // The control: KV alone would call the rolled-out secret live and revoke the key.
    const [stale] = await storeWith().matchLeaked([{ secret, keyId: null }]);
    expect(stale!.state).toBe("live");
  });
});
