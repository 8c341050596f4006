/**
 * The 401 matrix of SPEC §3 through the whole app: every failure class answers the
 * same bytes and the same header names, never reaches the engine, and a bad checksum
 * costs no KV read (SPEC §2). Keys live in the real local KV; the clock is injected.
 */
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { generateKeyId, generateSecret } from "../../src/keys/format.ts";
import {
  adminStore,
  countingKv,
  createKey,
  gateway,
  expectStandard401,
  headerNames,
  uniqueAddress,
  type Sent,
} from "./harness.ts";

/** A clock both the gateway and the admin store read, so tests can move time. */
function testClock() {
  const clock = { ms: Date.now(), now: () => clock.ms };
  return clock;
}

type Clock = ReturnType<typeof testClock>;

/** Replaces the character at `at` with a different base62 one. */
function flip(text: string, at: number): string {
  return text.slice(0, at) + (text[at] === "a" ? "b" : "a") + text.slice(at + 1);
}

/** Each failure class of SPEC §3: prepares state and returns the Authorization to send (or none). */
const FAILURES: Array<[name: string, prepare: (clock: Clock) => Promise<string | undefined>]> = [
  ["no Authorization header", async () => undefined],
  [
    "the wrong scheme (Basic)",
    async () => {
      const key = await createKey();
      return `Basic ${btoa(`${key.keyId}:${key.secret}`)}`;
    },
  ],
  [
    "a space instead of the colon",
    async () => {
      const key = await createKey();
      return `Bearer ${key.keyId} ${key.secret}`;
    },
  ],
  [
    "a malformed pair (truncated secret)",
    async () => {
      const key = await createKey();
      return `Bearer ${key.keyId}:${key.secret.slice(0, 40)}`;
    },
  ],
  [
    "a bad checksum (one character of a real secret changed)",
    async () => {
      const key = await createKey();
      return `Bearer ${key.keyId}:${flip(key.secret, 30)}`;
    },
  ],
  ["an unknown key_id", async () => `Bearer ${generateKeyId()}:${generateSecret()}`],
  [
    "the wrong secret for a real key_id",
    async () => {
      const key = await createKey();
      return `Bearer ${key.keyId}:${generateSecret()}`;
    },
  ],
  [
    "a revoked key",
    async (clock) => {
      const store = adminStore({ now: clock.now });
      const key = await createKey({ store });
      await store.revoke(key.accountId, key.keyId);
      return key.authorization;
    },
  ],
  [
    "an expired key",
    async (clock) => {
      const key = await createKey({
        store: adminStore({ now: clock.now }),
        expiresAt: new Date(clock.ms + 60_000).toISOString(),
      });
      clock.ms += 60_001;
      return key.authorization;
    },
  ],
  [
    "the previous secret after the roll grace period ended",
    async (clock) => {
      const store = adminStore({ now: clock.now });
      const key = await createKey({ store });
      await store.roll(key.accountId, key.keyId, 30);
      clock.ms += 30_001;
      return key.authorization;
    },
  ],
];

async function sendFailure(
  prepare: (clock: Clock) => Promise<string | undefined>,
): Promise<Sent & { engineCalls: number }> {
  const clock = testClock();
  const authorization = await prepare(clock);
  const h = gateway({ now: clock.now });
  const sent = await h.send(h.request("/v1/agents", { authorization }));
  return { ...sent, engineCalls: h.engine.calls.length };
}

describe("401 matrix (SPEC §3)", () => {
  it.each(FAILURES)("answers the standard 401 to %s without calling the engine", async (_name, prepare) => {
    const sent = await sendFailure(prepare);
    expectStandard401(sent.res, sent.body);
    expect(sent.engineCalls).toBe(0);
  });

  it("sends exactly the same header names for every failure class", async () => {
    const names = new Map<string, string[]>();
    for (const [name, prepare] of FAILURES) names.set(name, headerNames((await sendFailure(prepare)).res));
    const first = [...names.values()][0]!;
    expect(first).toEqual(["cache-control", "content-type", "www-authenticate", "x-request-id"]);
    for (const [, list] of names) expect(list).toEqual(first);
  });

  it("gives every 401 a fresh request id that appears nowhere in the body", async () => {
    const h = gateway();
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const { res, body } = await h.send(h.request("/v1/agents"));
      const id = res.headers.get("x-request-id")!;
      expect(body).not.toContain(id);
      ids.add(id);
    }
    expect(ids.size).toBe(5);
  });

  it.each([
    ["GET", "/"],
    ["GET", "/v1/agents?limit=10"],
    ["POST", "/v1/calls"],
    ["PUT", "/v1/agents/agt_1"],
    ["PATCH", "/v1/agents/agt_1"],
    ["DELETE", "/v1/agents/agt_1"],
    ["OPTIONS", "/v1/agents"],
    ["GET", "/v1/keys"],
    ["POST", "/v1/keys"],
    ["GET", "/healthz/extra"],
    ["GET", "/.well-known/other.json"],
  ])("answers the standard 401 to %s %s without a key", async (method, path) => {
    const h = gateway();
    const body = method === "GET" || method === "OPTIONS" ? undefined : "{}";
    const sent = await h.send(h.request(path, { method, body }));
    expectStandard401(sent.res, sent.body);
    expect(h.engine.calls).toHaveLength(0);
  });

  it("is what the Worker's own entry point (src/index.ts) answers without a key", async () => {
    const res = await exports.default.fetch("https://api.nixflex.com/v1/agents", {
      headers: { "cf-connecting-ip": uniqueAddress() },
    });
    expectStandard401(res, await res.text());
  });

  it("rejects a bad checksum without reading KV", async () => {
    const key = await createKey();
    const counting = countingKv();
    const h = gateway({ env: { ...env, API_KEYS: counting.kv } });
    const sent = await h.send(
      h.request("/v1/agents", { authorization: `Bearer ${key.keyId}:${flip(key.secret, 66)}` }),
    );
    expectStandard401(sent.res, sent.body);
    expect(counting.reads()).toBe(0);
    expect(counting.writes()).toBe(0);
  });

  it("reads KV once for a well-formed pair (the counter sees the store)", async () => {
    const key = await createKey();
    const counting = countingKv();
    const h = gateway({ env: { ...env, API_KEYS: counting.kv } });
    const sent = await h.send(h.request("/v1/agents", { authorization: `Bearer ${key.keyId}:${generateSecret()}` }));
    expectStandard401(sent.res, sent.body);
    expect(counting.reads()).toBe(1);
  });
});

describe("the same keys succeed when they should (controls for the matrix)", () => {
  it("forwards a valid key", async () => {
    const key = await createKey();
    const h = gateway();
    const { res, body } = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expect(res.status).toBe(200);
    expect(body).toBe("engine ok");
    expect(h.engine.calls).toHaveLength(1);
  });

  it("forwards the previous secret while the roll grace period lasts", async () => {
    const clock = testClock();
    const store = adminStore({ now: clock.now });
    const key = await createKey({ store });
    const rolled = await store.roll(key.accountId, key.keyId, 30);
    clock.ms += 29_000;
    const h = gateway({ now: clock.now });
    expect((await h.send(h.request("/v1/agents", { authorization: key.authorization }))).res.status).toBe(200);
    expect(rolled.ok && rolled.secret).toBeTruthy();
    const current = `Bearer ${key.keyId}:${rolled.ok ? rolled.secret : ""}`;
    expect((await h.send(h.request("/v1/agents", { authorization: current }))).res.status).toBe(200);
  });

  it("forwards a key with an expiry until that moment, then answers 401", async () => {
    const clock = testClock();
    const key = await createKey({
      store: adminStore({ now: clock.now }),
      expiresAt: new Date(clock.ms + 60_000).toISOString(),
    });
    const h = gateway({ now: clock.now });
    clock.ms += 59_999;
    expect((await h.send(h.request("/v1/agents", { authorization: key.authorization }))).res.status).toBe(200);
    clock.ms += 1;
    const expired = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expectStandard401(expired.res, expired.body);
    expect(h.engine.calls).toHaveLength(1);
  });
});
