/**
 * KV reads on the authentication path, counted against the real local KV (wrapped, not
 * replaced) with a controlled clock. These pin the read budget the benchmark measures
 * (docs/BENCHMARKS.md): none for a hot key between refreshes (one read shortly before its
 * TTL ends, by one request), none for a malformed key or a bad checksum, at most one per
 * distinct key_id per cache TTL (positive or negative), no pending read shared between
 * requests, and never a cached KV failure.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { LruCache } from "../../src/lib/lru-cache.ts";
import { generateKeyId, generateSecret } from "../../src/keys/format.ts";
import { kvKeys } from "../../src/keys/record.ts";
import {
  createStoreCaches,
  KV_CACHE_TTL_S,
  NEGATIVE_TTL_MS,
  RECORD_TTL_MS,
  REFRESH_AHEAD_MS,
} from "../../src/keys/store.ts";
import { createKey, gateway, PUBLIC_ORIGIN, recordingEngine, rememberSensitive, uniqueAddress } from "./harness.ts";

interface Read {
  key: string;
  options: unknown;
}

/** The local KV binding with every read recorded (and, when `failing`, every read refused). */
function recordingKv() {
  const reads: Read[] = [];
  const state = { failing: false, gate: null as Promise<void> | null };
  const inner = env.API_KEYS;
  const kv = new Proxy(inner, {
    get(target, prop) {
      if (prop === "get" || prop === "getWithMetadata") {
        return async (key: string, options?: unknown) => {
          reads.push({ key, options });
          if (state.gate !== null) await state.gate;
          if (state.failing) throw new Error("KV is down (test)");
          return (Reflect.get(target, prop) as (...a: unknown[]) => unknown).call(target, key, options);
        };
      }
      if (prop === "list") {
        return (options?: unknown) => {
          reads.push({ key: "(list)", options });
          return target.list(options as KVNamespaceListOptions);
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    kv,
    state,
    /** Reads of key records (`key:<id>`), the authentication path's only reads. */
    recordReads: (keyId?: string) =>
      reads.filter((r) => r.key === (keyId === undefined ? r.key : kvKeys.record(keyId)) && r.key.startsWith("key:")),
    allReads: () => reads.length,
    reads,
    /** Holds every read until the returned function is called. */
    hold(): () => void {
      let release: () => void = () => undefined;
      state.gate = new Promise((resolve) => {
        release = resolve;
      });
      return () => {
        state.gate = null;
        release();
      };
    },
  };
}

/** Lets the runtime start every request before a held read is released. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

function clock(start = Date.now()) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

/** A gateway whose KV is recorded and whose clock the test moves. */
function setup() {
  const kv = recordingKv();
  const time = clock();
  const g = gateway({ env: { ...env, API_KEYS: kv.kv }, now: time.now });
  const call = (authorization: string | null) =>
    g.send(g.request("/v1/agents/a1", authorization === null ? {} : { authorization }));
  return { kv, time, g, call };
}

describe("KV reads on the hot path", () => {
  it("reads a hot key's record once, then serves 200 requests from memory", async () => {
    const { kv, call } = setup();
    const key = await createKey();
    for (let i = 0; i < 200; i++) expect((await call(key.authorization)).res.status).toBe(200);
    expect(kv.recordReads(key.keyId)).toHaveLength(1);
    expect(kv.allReads()).toBe(1);
  });

  it("asks KV's edge cache to hold the record (cacheTtl) on the authentication read", async () => {
    const { kv, call } = setup();
    const key = await createKey();
    await call(key.authorization);
    expect(kv.recordReads(key.keyId)[0]!.options).toEqual({ type: "json", cacheTtl: KV_CACHE_TTL_S });
  });

  it("reads a key in use once more shortly before its TTL ends, and never lets it expire under traffic", async () => {
    const { kv, time, call } = setup();
    const key = await createKey();
    for (let i = 0; i < 20; i++) await call(key.authorization);
    time.advance(RECORD_TTL_MS - REFRESH_AHEAD_MS - 1);
    for (let i = 0; i < 20; i++) await call(key.authorization);
    expect(kv.recordReads(key.keyId)).toHaveLength(1);
    time.advance(1); // inside the refresh window: the next request reads, the ones after it do not
    for (let i = 0; i < 20; i++) expect((await call(key.authorization)).res.status).toBe(200);
    expect(kv.recordReads(key.keyId)).toHaveLength(2);
    time.advance(REFRESH_AHEAD_MS); // past the first read's TTL: the refreshed entry still holds
    for (let i = 0; i < 20; i++) expect((await call(key.authorization)).res.status).toBe(200);
    expect(kv.recordReads(key.keyId)).toHaveLength(2);
  });

  it("reads a key that was idle past its TTL once, on the next request", async () => {
    const { kv, time, call } = setup();
    const key = await createKey();
    await call(key.authorization);
    time.advance(RECORD_TTL_MS);
    for (let i = 0; i < 10; i++) expect((await call(key.authorization)).res.status).toBe(200);
    expect(kv.recordReads(key.keyId)).toHaveLength(2);
  });

  it("starts one refresh for concurrent requests in the refresh window; the others use the cached record", async () => {
    const { kv, time, call } = setup();
    const key = await createKey();
    await call(key.authorization);
    time.advance(RECORD_TTL_MS - REFRESH_AHEAD_MS);
    const release = kv.hold();
    const pending = Array.from({ length: 10 }, () => call(key.authorization));
    await settle();
    release();
    expect((await Promise.all(pending)).map((s) => s.res.status)).toEqual(Array(10).fill(200));
    expect(kv.recordReads(key.keyId)).toHaveLength(2);
  });

  it("keeps serving the still-valid record when the refresh read fails, and tries again on the next request", async () => {
    const { kv, time, call } = setup();
    const key = await createKey();
    await call(key.authorization);
    time.advance(RECORD_TTL_MS - REFRESH_AHEAD_MS);
    kv.state.failing = true;
    expect((await call(key.authorization)).res.status).toBe(200);
    kv.state.failing = false;
    expect((await call(key.authorization)).res.status).toBe(200);
    expect((await call(key.authorization)).res.status).toBe(200);
    expect(kv.recordReads(key.keyId)).toHaveLength(3);
  });

  it("reads a key missed by concurrent requests once: the others wait for it to land in the cache", async () => {
    // They wait in their own context, never on the reading request's promise: in workerd a
    // request continuing on another request's pending read runs in that request's I/O context,
    // where its own body stream is refused, and is cancelled when that request ends.
    const { kv, call } = setup();
    const key = await createKey();
    const release = kv.hold();
    const pending = Array.from({ length: 8 }, () => call(key.authorization));
    await settle();
    release();
    expect((await Promise.all(pending)).map((s) => s.res.status)).toEqual(Array(8).fill(200));
    expect(kv.recordReads(key.keyId)).toHaveLength(1);
  });

  it("does not pass a failed read on either: requests that waited for it read for themselves", async () => {
    const { kv, call } = setup();
    const key = await createKey();
    kv.state.failing = true;
    const release = kv.hold();
    const pending = Array.from({ length: 4 }, () => call(key.authorization));
    await settle();
    release();
    expect((await Promise.all(pending)).map((s) => s.res.status)).toEqual(Array(4).fill(503));
    expect(kv.recordReads(key.keyId)).toHaveLength(4);
  });
});

describe("KV reads for requests that cannot be valid", () => {
  const id = generateKeyId();
  const secret = generateSecret();
  rememberSensitive(secret);
  const badChecksum = secret.slice(0, -1) + (secret.endsWith("0") ? "1" : "0");
  const hostile: Array<[string, string | null]> = [
    ["no Authorization header", null],
    ["an empty header", ""],
    ["the Basic scheme", `Basic ${btoa(`${id}:${secret}`)}`],
    ["a space instead of the colon", `Bearer ${id} ${secret}`],
    ["a bad checksum", `Bearer ${id}:${badChecksum}`],
    ["a secret one character short", `Bearer ${id}:${secret.slice(0, -1)}`],
    ["an uppercase key_id", `Bearer ${id.toUpperCase()}:${secret}`],
    ["a key_id without its prefix", `Bearer ${id.slice(4)}:${secret}`],
    ["two pairs", `Bearer ${id}:${secret} ${id}:${secret}`],
    ["10 KB of junk", `Bearer ${"A".repeat(10_000)}`],
    ["a bare scheme", "Bearer"],
  ];

  it.each(hostile)("reads nothing for %s", async (_name, authorization) => {
    const { kv, call } = setup();
    const sent = await call(authorization);
    expect(sent.res.status).toBe(401);
    expect(kv.allReads()).toBe(0);
  });

  it("reads each unknown well-formed key_id once per negative-cache TTL, however often it is tried", async () => {
    const { kv, time, call } = setup();
    const unknown = Array.from({ length: 40 }, () => ({ id: generateKeyId(), secret: generateSecret() }));
    for (const u of unknown) rememberSensitive(u.secret);
    for (let round = 0; round < 5; round++) {
      for (const u of unknown) expect((await call(`Bearer ${u.id}:${u.secret}`)).res.status).toBe(401);
    }
    expect(kv.allReads()).toBe(unknown.length);
    expect(new Set(kv.reads.map((r) => r.key)).size).toBe(unknown.length);

    time.advance(NEGATIVE_TTL_MS);
    for (let round = 0; round < 3; round++) {
      for (const u of unknown) await call(`Bearer ${u.id}:${u.secret}`);
    }
    expect(kv.allReads()).toBe(2 * unknown.length);
  });

  it("does not read an unknown key_id again before its negative TTL ends (no refresh ahead for it)", async () => {
    const { kv, time, call } = setup();
    const unknown = `Bearer ${generateKeyId()}:${generateSecret()}`;
    await call(unknown);
    time.advance(NEGATIVE_TTL_MS - 1);
    for (let i = 0; i < 5; i++) expect((await call(unknown)).res.status).toBe(401);
    expect(kv.allReads()).toBe(1);
    time.advance(1);
    await call(unknown);
    expect(kv.allReads()).toBe(2);
  });

  it("a wrong secret for a known key costs the same single read as the right one", async () => {
    const { kv, call } = setup();
    const key = await createKey();
    const wrong = generateSecret();
    rememberSensitive(wrong);
    for (let i = 0; i < 10; i++) expect((await call(`Bearer ${key.keyId}:${wrong}`)).res.status).toBe(401);
    expect((await call(key.authorization)).res.status).toBe(200);
    expect(kv.recordReads(key.keyId)).toHaveLength(1);
  });
});

describe("the isolate cache's bounds and failures", () => {
  it("evicts the least recently used record past its size bound, and reads it again when it returns", async () => {
    const kv = recordingKv();
    const engine = recordingEngine();
    const app = createApp({
      engineFetch: engine.fetch,
      caches: createStoreCaches(2),
      blocked: new LruCache<number>(100),
    });
    const bindings = { ...env, API_KEYS: kv.kv };
    const send = async (authorization: string) => {
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`${PUBLIC_ORIGIN}/v1/agents`, { headers: { authorization, "cf-connecting-ip": uniqueAddress() } }),
        bindings,
        ctx,
      );
      await res.text();
      await waitOnExecutionContext(ctx);
      return res.status;
    };
    const [a, b, c] = [await createKey(), await createKey(), await createKey()];
    for (const key of [a, b, a, b, a]) expect(await send(key.authorization)).toBe(200);
    expect(kv.recordReads()).toHaveLength(2);
    expect(await send(c.authorization)).toBe(200); // evicts b, the least recently used
    expect(await send(a.authorization)).toBe(200);
    expect(kv.recordReads()).toHaveLength(3);
    expect(await send(b.authorization)).toBe(200);
    expect(kv.recordReads(b.keyId)).toHaveLength(2);
  });

  it("never caches a KV failure: every request while KV is down tries again, and the first one after it recovers succeeds", async () => {
    const { kv, call } = setup();
    const key = await createKey();
    kv.state.failing = true;
    for (let i = 0; i < 3; i++) expect((await call(key.authorization)).res.status).toBe(503);
    expect(kv.recordReads(key.keyId)).toHaveLength(3);
    kv.state.failing = false;
    expect((await call(key.authorization)).res.status).toBe(200);
    expect((await call(key.authorization)).res.status).toBe(200);
    expect(kv.recordReads(key.keyId)).toHaveLength(4);
  });

  it("never caches a KV failure as an unknown key either", async () => {
    const { kv, call } = setup();
    const unknown = `Bearer ${generateKeyId()}:${generateSecret()}`;
    kv.state.failing = true;
    expect((await call(unknown)).res.status).toBe(503);
    kv.state.failing = false;
    expect((await call(unknown)).res.status).toBe(401);
    expect((await call(unknown)).res.status).toBe(401);
    expect(kv.allReads()).toBe(2);
  });
});
