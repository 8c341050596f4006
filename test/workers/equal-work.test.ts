/**
 * Equal work (issue 5, item 3; SPEC §3): unknown key_id, wrong secret, revoked and
 * expired keys do the same verification work before the same 401 — one KV read, one
 * digest, two constant-time comparisons of 32-byte values, in the same order — so
 * timing does not tell them apart. Work is counted through the injected primitives
 * and a counting KV binding.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { defaultPrimitives, type VerifyPrimitives } from "../../src/auth/verify-key.ts";
import { generateKeyId, generateSecret } from "../../src/keys/format.ts";
import { adminStore, createKey, expectStandard401, gateway, type TestEnv } from "./harness.ts";

/** Records every unit of verification work, in order. */
function workLog() {
  const ops: string[] = [];
  const primitives: VerifyPrimitives = {
    async digest(secret) {
      ops.push("digest");
      return defaultPrimitives.digest(secret);
    },
    equal(a, b) {
      ops.push(`equal(${a.byteLength},${b.byteLength})`);
      return defaultPrimitives.equal(a, b);
    },
  };
  const inner = env.API_KEYS;
  const kv = {
    get: (...args: unknown[]) => {
      ops.push("kv.get");
      return (inner.get as (...a: unknown[]) => unknown)(...args);
    },
    put: (...args: unknown[]) => {
      ops.push("kv.put");
      return (inner.put as (...a: unknown[]) => unknown)(...args);
    },
    list: (...args: unknown[]) => {
      ops.push("kv.list");
      return (inner.list as (...a: unknown[]) => unknown)(...args);
    },
  } as unknown as KVNamespace;
  return { ops, primitives, env: { ...env, API_KEYS: kv } as TestEnv };
}

type Case = [name: string, prepare: (clock: { ms: number }) => Promise<string>];

const CASES: Case[] = [
  ["an unknown key_id", async () => `Bearer ${generateKeyId()}:${generateSecret()}`],
  [
    "the wrong secret",
    async () => {
      const key = await createKey();
      return `Bearer ${key.keyId}:${generateSecret()}`;
    },
  ],
  [
    "a revoked key",
    async (clock) => {
      const store = adminStore({ now: () => clock.ms });
      const key = await createKey({ store });
      await store.revoke(key.accountId, key.keyId);
      return key.authorization;
    },
  ],
  [
    "an expired key",
    async (clock) => {
      const key = await createKey({
        store: adminStore({ now: () => clock.ms }),
        expiresAt: new Date(clock.ms + 1000).toISOString(),
      });
      clock.ms += 1000;
      return key.authorization;
    },
  ],
  [
    "a rolled-away secret after its grace period",
    async (clock) => {
      const store = adminStore({ now: () => clock.ms });
      const key = await createKey({ store });
      await store.roll(key.accountId, key.keyId, 10);
      clock.ms += 10_000;
      return key.authorization;
    },
  ],
];

async function measure(prepare: Case[1]) {
  const clock = { ms: Date.now() };
  const authorization = await prepare(clock);
  const work = workLog();
  const h = gateway({ env: work.env, primitives: work.primitives, now: () => clock.ms });
  const { res, body } = await h.send(h.request("/v1/agents", { authorization }));
  return { res, status: res.status, body, ops: work.ops, engineCalls: h.engine.calls.length };
}

describe("verification work per failure class", () => {
  it.each(CASES)(
    "%s costs one KV read, one digest and two 32-byte comparisons before the 401",
    async (_name, prepare) => {
      const { res, body, ops, engineCalls } = await measure(prepare);
      expectStandard401(res, body);
      expect(engineCalls).toBe(0);
      expect(ops).toEqual(["kv.get", "digest", "equal(32,32)", "equal(32,32)"]);
    },
  );

  it("is the same sequence of operations for every class", async () => {
    const sequences = new Map<string, string>();
    for (const [name, prepare] of CASES) sequences.set(name, (await measure(prepare)).ops.join(" "));
    expect(new Set(sequences.values()).size).toBe(1);
  });

  it("is the same work a valid key does before it is accepted (plus its last_used write)", async () => {
    const key = await createKey();
    const work = workLog();
    const h = gateway({ env: work.env, primitives: work.primitives });
    const { res } = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expect(res.status).toBe(200);
    expect(work.ops).toEqual(["kv.get", "digest", "equal(32,32)", "equal(32,32)", "kv.put"]);
  });

  it("compares against a stand-in hash when the stored hash uses an unknown scheme", async () => {
    // A record whose hash this code cannot read must cost the same as any other miss.
    const key = await createKey();
    const record = (await env.API_KEYS.get(`key:${key.keyId}`, "json")) as Record<string, unknown>;
    await env.API_KEYS.put(`key:${key.keyId}`, JSON.stringify({ ...record, secret_hash: "argon2id:abc" }));
    const { status, ops } = await measure(async () => key.authorization);
    expect(status).toBe(401);
    expect(ops).toEqual(["kv.get", "digest", "equal(32,32)", "equal(32,32)"]);
  });

  it.each([
    [
      "a bad checksum",
      async () => {
        const secret = generateSecret();
        return `Bearer ${generateKeyId()}:${secret.slice(0, -1)}${secret.endsWith("0") ? "1" : "0"}`;
      },
    ],
    ["a malformed header", async () => "Bearer nxf_nothex:nxfs_short"],
    ["no header", async () => ""],
  ] as Case[])("rejects %s offline: no KV read, no digest, no comparison", async (_name, prepare) => {
    const { status, ops } = await measure(prepare);
    expect(status).toBe(401);
    expect(ops).toEqual([]);
  });
});
