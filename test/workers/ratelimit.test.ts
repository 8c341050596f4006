/**
 * Failed-authentication rate limiting (SPEC §3) through the real Workers Rate Limiting
 * binding that wrangler.toml configures (60 failures / 60 s per address).
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { LruCache } from "../../src/lib/lru-cache.ts";
import { createStoreCaches, KeyStore } from "../../src/keys/store.ts";
import { expectStandard401 } from "../support/standard-401.ts";

const LIMIT = 60;

function harness(bindings: typeof env = env) {
  let engineCalls = 0;
  let clock = Date.parse("2026-11-26T12:00:00Z");
  const caches = createStoreCaches();
  const app = createApp({
    caches,
    blocked: new LruCache<number>(100),
    now: () => clock,
    engineFetch: async () => {
      engineCalls++;
      return new Response("engine ok");
    },
  });
  const send = async (ip: string, authorization?: string) => {
    const headers = new Headers({ "cf-connecting-ip": ip });
    if (authorization !== undefined) headers.set("authorization", authorization);
    const ctx = createExecutionContext();
    const res = await app.fetch(new Request("https://api.nixflex.com/v1/agents", { headers }), bindings, ctx);
    const body = await res.text();
    await waitOnExecutionContext(ctx);
    return { res, body };
  };
  const store = new KeyStore(env.API_KEYS, { caches, now: () => clock });
  return { send, store, engineCalls: () => engineCalls, advance: (ms: number) => (clock += ms) };
}

/**
 * Sends failures from `ip` until the first 429 and returns how many came before it. The binding
 * counts in fixed windows, so a window boundary inside the loop can reset the count once: the
 * first 429 comes after at least LIMIT failures and at most 2 × LIMIT.
 */
async function exhaust(h: ReturnType<typeof harness>, ip: string): Promise<number> {
  for (let sent = 0; sent <= 2 * LIMIT; sent++) {
    const { res } = await h.send(ip, "Bearer wrong");
    if (res.status === 429) return sent;
    expect(res.status).toBe(401);
  }
  throw new Error(`no 429 after ${2 * LIMIT + 1} failures`);
}

// Each test uses its own addresses: the binding's counters live as long as the test worker.
const address = () => `198.51.100.${Math.floor(Math.random() * 250) + 1}-${crypto.randomUUID()}`;

describe("failed-authentication rate limit", () => {
  it("answers the plain 401 for the first 60 failures of an address", async () => {
    const h = harness();
    const ip = address();
    for (let i = 0; i < LIMIT; i++) {
      const { res, body } = await h.send(ip, "Bearer wrong");
      expectStandard401(res, body);
    }
  });

  it("answers 429 rate_limit_error with Retry-After past the limit", async () => {
    const h = harness();
    const ip = address();
    expect(await exhaust(h, ip)).toBeGreaterThanOrEqual(LIMIT);
    const { res, body } = await h.send(ip, "Bearer wrong");
    expect(res.status).toBe(429);
    expect(JSON.parse(body)).toEqual({
      error: { type: "rate_limit_error", code: "rate_limited", message: expect.any(String) },
    });
    const retryAfter = Number(res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("still serves a valid key from a blocked address (ratelimit-neighbours.test.ts has the rest)", async () => {
    const h = harness();
    const { key, secret } = await h.store.create("acct_rl", { name: "rl", expiresAt: null });
    const ip = address();
    await exhaust(h, ip);
    const { res } = await h.send(ip, `Bearer ${key.key_id}:${secret}`);
    expect(res.status).toBe(200);
    expect(h.engineCalls()).toBe(1);
  });

  it("leaves a valid key from another address unaffected", async () => {
    const h = harness();
    const { key, secret } = await h.store.create("acct_rl", { name: "rl", expiresAt: null });
    const attacker = address();
    await exhaust(h, attacker);
    const { res, body } = await h.send(address(), `Bearer ${key.key_id}:${secret}`);
    expect(res.status).toBe(200);
    expect(body).toBe("engine ok");
    expect(h.engineCalls()).toBe(1);
  });

  it("does not count successful requests towards the limit", async () => {
    const h = harness();
    const { key, secret } = await h.store.create("acct_rl", { name: "rl", expiresAt: null });
    const ip = address();
    for (let i = 0; i < LIMIT + 20; i++) {
      const { res } = await h.send(ip, `Bearer ${key.key_id}:${secret}`);
      expect(res.status).toBe(200);
    }
  });

  it("keeps an address blocked for the window, then lifts the block", async () => {
    let allow = false;
    const limiter = { limit: async () => ({ success: allow }) } as RateLimit;
    const h = harness({ ...env, AUTH_FAILURE_LIMITER: limiter });
    const ip = address();
    expect((await h.send(ip, "Bearer wrong")).res.status).toBe(429);
    allow = true;
    h.advance(59_000);
    const during = await h.send(ip, "Bearer wrong");
    expect(during.res.status).toBe(429);
    expect(during.res.headers.get("retry-after")).toBe("1");
    h.advance(1_000);
    const after = await h.send(ip, "Bearer wrong");
    expectStandard401(after.res, after.body);
  });

  it("answers the plain 401 when the limiter binding itself fails", async () => {
    const limiter = { limit: async () => Promise.reject(new Error("limiter down")) } as unknown as RateLimit;
    const h = harness({ ...env, AUTH_FAILURE_LIMITER: limiter });
    const { res, body } = await h.send(address(), "Bearer wrong");
    expectStandard401(res, body);
  });
});
