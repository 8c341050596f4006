/**
 * Expiry and revocation over time (SPEC §3, §5), with a controlled clock: an expired key
 * gets the standard 401 from its expiry instant on; a revoked key fails on the very next
 * request in the instance that revoked it, even against a stale KV read that was already
 * in flight; other instances converge within the stated bound.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { kvKeys } from "../../src/keys/record.ts";
import { KV_CACHE_TTL_S, PIN_MS, RECORD_TTL_MS } from "../../src/keys/store.ts";
import { expectStandard401, gateway, uniqueAccount } from "./keys-support.ts";

/**
 * KV whose authentication reads (`cacheTtl` set) of one key can be held back and answered
 * with the value KV had when the read started — a read that was in flight, or an edge
 * cache still holding the old record.
 */
function staleEnv(keyId: string) {
  let hold = false;
  let release: () => void = () => undefined;
  let gate = Promise.resolve();
  let stale: string | null | undefined;
  const kv = new Proxy(env.API_KEYS, {
    get(target, prop) {
      if (prop === "get") {
        return async (key: string, options?: { type?: string; cacheTtl?: number }) => {
          const lookup = key === kvKeys.record(keyId) && typeof options === "object" && options.cacheTtl !== undefined;
          if (!lookup) return (target.get as (...args: unknown[]) => unknown).call(target, key, options);
          const seen = stale !== undefined ? stale : await target.get(key, "text");
          if (hold) await gate;
          return seen === null ? null : JSON.parse(seen);
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    kvEnv: { ...env, API_KEYS: kv } as typeof env,
    holdReads() {
      hold = true;
      gate = new Promise((resolve) => {
        release = resolve;
      });
    },
    releaseReads() {
      hold = false;
      release();
    },
    /** From now on every authentication read answers what KV holds right now. */
    async freeze() {
      stale = await env.API_KEYS.get(kvKeys.record(keyId), "text");
    },
  };
}

describe("expiry", () => {
  it("a key created through the API works until expires_at and gets the standard 401 from that instant", async () => {
    const g = gateway();
    const account = uniqueAccount();
    const caller = await g.createKey(account);
    const created = await g.call("POST", "/v1/keys", {
      auth: caller,
      body: { name: "short-lived", expires_at: new Date(g.now() + 60_000).toISOString() },
    });
    expect(created.status).toBe(201);
    const auth = `Bearer ${created.json.key_id}:${created.json.key_secret}`;
    expect((await g.call("GET", "/v1/keys", { auth })).status).toBe(200);
    g.advance(59_999);
    expect((await g.call("GET", "/v1/keys", { auth })).status).toBe(200);
    g.advance(1);
    const expired = await g.call("GET", "/v1/keys", { auth });
    expectStandard401(expired, expired.text);
    // Expired, not deleted: it is still listed with its expiry.
    const listed = await g.call("GET", `/v1/keys/${created.json.key_id}`, { auth: caller });
    expect(listed.json.expires_at).toBe(new Date(g.now()).toISOString());
  });

  it("expiry holds even while the record is cached in memory", async () => {
    const g = gateway();
    const account = uniqueAccount();
    const key = await g.createKey(account, { expiresAt: new Date(g.now() + 5_000).toISOString() });
    g.advance(4_000);
    expect((await g.call("GET", "/v1/keys", { auth: key })).status).toBe(200);
    g.advance(1_000);
    expect((await g.call("GET", "/v1/keys", { auth: key })).status).toBe(401);
  });
});

describe("revocation", () => {
  it("a read in flight before the revoke cannot re-cache the old record", async () => {
    const account = uniqueAccount();
    const setupGateway = gateway();
    const target = await setupGateway.createKey(account, { name: "target" });
    const caller = await setupGateway.createKey(account, { name: "caller" });
    const kv = staleEnv(target.id);
    const g = gateway({ kvEnv: kv.kvEnv, start: setupGateway.now() });

    kv.holdReads();
    const inFlight = g.call("GET", "/v1/keys", { auth: target });
    // Let the held read start before the revoke.
    await new Promise((resolve) => setTimeout(resolve, 10));
    const revoke = await g.call("DELETE", `/v1/keys/${target.id}`, { auth: caller });
    expect(revoke.status).toBe(200);
    kv.releaseReads();
    // The held read saw the old record, but the revoke made here wins.
    expect((await inFlight).status).toBe(401);
    const next = await g.call("GET", "/v1/keys", { auth: target });
    expectStandard401(next, next.text);
    expect(g.caches.records.get(target.id, g.now())).toBeUndefined();
  });

  it("the revoking instance refuses the key even while KV still serves the old record", async () => {
    const account = uniqueAccount();
    const setupGateway = gateway();
    const target = await setupGateway.createKey(account, { name: "target" });
    const caller = await setupGateway.createKey(account, { name: "caller" });
    const kv = staleEnv(target.id);
    await kv.freeze();
    const g = gateway({ kvEnv: kv.kvEnv, start: setupGateway.now() });
    expect((await g.call("GET", "/v1/keys", { auth: target })).status).toBe(200);
    expect((await g.call("DELETE", `/v1/keys/${target.id}`, { auth: caller })).status).toBe(200);
    const start = g.now();
    // Well past the record cache TTL, and for as long as KV may be stale (edge cache TTL +
    // propagation), the stale KV answer is overridden here.
    expect(PIN_MS).toBeGreaterThanOrEqual((KV_CACHE_TTL_S + 60) * 1000);
    for (const at of [0, RECORD_TTL_MS, KV_CACHE_TTL_S * 1000, PIN_MS - 1]) {
      g.setNow(start + at);
      expect((await g.call("GET", "/v1/keys", { auth: target })).status).toBe(401);
    }
  });

  it("another instance that cached the key refuses it once its record cache expires (part of the stated bound)", async () => {
    const account = uniqueAccount();
    const revoker = gateway();
    const target = await revoker.createKey(account, { name: "target" });
    const caller = await revoker.createKey(account, { name: "caller" });
    const elsewhere = gateway({ start: revoker.now() });
    expect((await elsewhere.call("GET", "/v1/keys", { auth: target })).status).toBe(200);
    expect((await revoker.call("DELETE", `/v1/keys/${target.id}`, { auth: caller })).status).toBe(200);
    expect((await revoker.call("GET", "/v1/keys", { auth: target })).status).toBe(401);
    elsewhere.advance(RECORD_TTL_MS - 1);
    expect((await elsewhere.call("GET", "/v1/keys", { auth: target })).status).toBe(200);
    elsewhere.advance(1);
    expect((await elsewhere.call("GET", "/v1/keys", { auth: target })).status).toBe(401);
  });
});

/** KV whose writes of key records fail (KV unavailable for writes). */
function failingRecordWrites() {
  const kv = new Proxy(env.API_KEYS, {
    get(target, prop) {
      if (prop === "put") {
        return async (key: string, ...rest: unknown[]) => {
          if (key.startsWith("key:")) throw new Error("KV write failed");
          return (target.put as (...args: unknown[]) => Promise<void>).call(target, key, ...rest);
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { ...env, API_KEYS: kv } as typeof env;
}

describe("when KV refuses the write", () => {
  it("a failed roll answers 503 and leaves the old secret working here (the roll did not happen)", async () => {
    const account = uniqueAccount();
    const setupGateway = gateway();
    const target = await setupGateway.createKey(account, { name: "target" });
    const caller = await setupGateway.createKey(account, { name: "caller" });
    const before = await env.API_KEYS.get(kvKeys.record(target.id), "text");
    const g = gateway({ kvEnv: failingRecordWrites(), start: setupGateway.now() });
    const roll = await g.call("POST", `/v1/keys/${target.id}/roll`, { auth: caller });
    expect(roll.status).toBe(503);
    expect(roll.json.error.code).toBe("service_unavailable");
    expect(roll.text).not.toContain("nxfs_");
    expect(await env.API_KEYS.get(kvKeys.record(target.id), "text")).toBe(before);
    expect((await g.call("GET", "/v1/keys", { auth: target })).status).toBe(200);
  });

  it("a failed revoke answers 503 but still refuses the key here (fail safe)", async () => {
    const account = uniqueAccount();
    const setupGateway = gateway();
    const target = await setupGateway.createKey(account, { name: "target" });
    const caller = await setupGateway.createKey(account, { name: "caller" });
    const g = gateway({ kvEnv: failingRecordWrites(), start: setupGateway.now() });
    const revoke = await g.call("DELETE", `/v1/keys/${target.id}`, { auth: caller });
    expect(revoke.status).toBe(503);
    expect((await g.call("GET", "/v1/keys", { auth: target })).status).toBe(401);
  });

  it("a failed create answers 503 without a secret and lists nothing", async () => {
    const account = uniqueAccount();
    const setupGateway = gateway();
    const caller = await setupGateway.createKey(account, { name: "caller" });
    const g = gateway({ kvEnv: failingRecordWrites(), start: setupGateway.now() });
    const create = await g.call("POST", "/v1/keys", { auth: caller, body: { name: "never" } });
    expect(create.status).toBe(503);
    expect(create.text).not.toContain("nxfs_");
    const list = await g.call("GET", "/v1/keys", { auth: caller });
    expect(list.json.data.map((key: { key_id: string }) => key.key_id)).toEqual([caller.id]);
  });
});
