/**
 * `last_used_at` (SPEC §5, docs/kv-schema.md): written after the response via waitUntil,
 * at most once per key per minute per instance, under its own KV key so it can never
 * overwrite the record (and with it a concurrent revoke).
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { kvKeys } from "../../src/keys/record.ts";
import { LAST_USED_PRECISION_MS } from "../../src/keys/store.ts";
import { authorization, gateway, keySnapshot, ORIGIN, uniqueAccount } from "./keys-support.ts";

/** KV whose `used:` writes are counted, and can be held back or made to fail. */
function usedWritesEnv() {
  const writes: { key: string; value: string }[] = [];
  let mode: "pass" | "hold" | "fail" = "pass";
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const kv = new Proxy(env.API_KEYS, {
    get(target, prop) {
      if (prop === "put") {
        return async (key: string, value: string, ...rest: unknown[]) => {
          if (key.startsWith("used:")) {
            writes.push({ key, value });
            if (mode === "fail") throw new Error("KV write failed");
            if (mode === "hold") await held;
          }
          return (target.put as (...args: unknown[]) => Promise<void>).call(target, key, value, ...rest);
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    kvEnv: { ...env, API_KEYS: kv } as typeof env,
    writes,
    setMode(next: "pass" | "hold" | "fail") {
      mode = next;
    },
    release,
  };
}

describe("last_used_at", () => {
  it("is written with the request's time and shown on the key", async () => {
    const g = gateway();
    const account = uniqueAccount();
    const key = await g.createKey(account);
    expect((await g.call("GET", "/v1/keys", { auth: key })).status).toBe(200);
    expect((await keySnapshot(key.id)).used).toBe(new Date(g.now()).toISOString());
    g.advance(5_000);
    const shown = await g.call("GET", `/v1/keys/${key.id}`, { auth: key });
    expect(shown.json.last_used_at).toBe(new Date(g.now() - 5_000).toISOString());
  });

  it("is written at most once per key per minute: 300 requests, one a second, make 5 writes", async () => {
    const spy = usedWritesEnv();
    const g = gateway({ kvEnv: spy.kvEnv });
    const account = uniqueAccount();
    const key = await g.createKey(account);
    const other = await g.createKey(account);
    for (let second = 0; second < 300; second++) {
      expect((await g.call("GET", "/v1/keys?limit=1", { auth: key })).status).toBe(200);
      g.advance(1_000);
    }
    const mine = spy.writes.filter((write) => write.key === kvKeys.lastUsed(key.id));
    expect(mine).toHaveLength(300_000 / LAST_USED_PRECISION_MS);
    // Consecutive writes are a full minute apart.
    const times = mine.map((write) => Date.parse(write.value));
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(LAST_USED_PRECISION_MS);
    // Keys are limited independently.
    expect((await g.call("GET", "/v1/keys?limit=1", { auth: other })).status).toBe(200);
    expect(spy.writes.filter((write) => write.key === kvKeys.lastUsed(other.id))).toHaveLength(1);
    // 300 simulated seconds include one key-change-log refresh per sync interval (a Cache API
    // read, a Durable Object call and a cache write each), which real time pays for here.
  }, 30_000);

  it("does not hold the response: it arrives while the write is still pending", async () => {
    const spy = usedWritesEnv();
    const g = gateway({ kvEnv: spy.kvEnv });
    const key = await g.createKey(uniqueAccount());
    spy.setMode("hold");
    const ctx = createExecutionContext();
    const response = await g.app.fetch(
      new Request(`${ORIGIN}/v1/keys`, {
        headers: { authorization: authorization(key), "cf-connecting-ip": "198.19.0.1" },
      }),
      spy.kvEnv,
      ctx,
    );
    expect(response.status).toBe(200);
    await response.text();
    expect(spy.writes).toHaveLength(1);
    expect((await keySnapshot(key.id)).used).toBeNull();
    spy.release();
    await waitOnExecutionContext(ctx);
    expect((await keySnapshot(key.id)).used).toBe(new Date(g.now()).toISOString());
  });

  it("a failed write does not fail the request", async () => {
    const spy = usedWritesEnv();
    const g = gateway({ kvEnv: spy.kvEnv });
    const key = await g.createKey(uniqueAccount());
    spy.setMode("fail");
    expect((await g.call("GET", "/v1/keys", { auth: key })).status).toBe(200);
    expect(spy.writes).toHaveLength(1);
  });

  it("never touches the key record, so it cannot undo a concurrent revoke", async () => {
    const g = gateway();
    const account = uniqueAccount();
    const key = await g.createKey(account);
    const before = (await keySnapshot(key.id)).record;
    for (let i = 0; i < 3; i++) {
      await g.call("GET", "/v1/keys", { auth: key });
      g.advance(LAST_USED_PRECISION_MS);
    }
    expect((await keySnapshot(key.id)).record).toBe(before);
  });
});
