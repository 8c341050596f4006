/**
 * The constant-time compare of secret digests (SPEC §3): `timingSafeEqual` in
 * src/keys/hash.ts hands both byte strings whole to the platform's
 * `crypto.subtle.timingSafeEqual`, whatever differs and wherever, and the key check
 * compares full 32-byte digests for every outcome. The platform call is watched with a
 * spy, so an early-exit or partial compare fails here even though it answers correctly.
 */
import { env } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateKeyId, generateSecret } from "../../src/keys/format.ts";
import { digestSecret, timingSafeEqual } from "../../src/keys/hash.ts";
import { adminStore, createKey, gateway, hex } from "./harness.ts";

/** Watches the platform compare; returns the byte lengths of every call's two arguments. */
function watchPlatformCompare() {
  const spy = vi.spyOn(crypto.subtle, "timingSafeEqual");
  return {
    spy,
    lengths: () =>
      spy.mock.calls.map(([a, b]) => [(a as ArrayBufferView).byteLength, (b as ArrayBufferView).byteLength]),
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

const bytes = (length: number, fill = 7) => new Uint8Array(length).fill(fill);
const flipped = (source: Uint8Array, at: number) => {
  const copy = source.slice();
  copy[at] = copy[at]! ^ 0xff;
  return copy;
};
const DIGEST = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);

describe("timingSafeEqual", () => {
  it.each([
    ["two equal digests", DIGEST, DIGEST.slice(), true],
    ["a difference at the first byte", DIGEST, flipped(DIGEST, 0), false],
    ["a difference at the last byte", DIGEST, flipped(DIGEST, 31), false],
    ["a difference in the middle", DIGEST, flipped(DIGEST, 16), false],
    ["every byte different", DIGEST, DIGEST.map((b) => b ^ 0xff), false],
    ["one byte shorter", DIGEST, DIGEST.slice(0, 31), false],
    ["one byte longer", DIGEST, new Uint8Array([...DIGEST, 0]), false],
    ["an empty second argument", DIGEST, new Uint8Array(0), false],
    ["a longer all-zero second argument", bytes(32, 0), bytes(33, 0), false],
    ["two empty strings", new Uint8Array(0), new Uint8Array(0), true],
  ])("answers %s correctly, after one platform compare of two full-length buffers", (_name, a, b, same) => {
    const watch = watchPlatformCompare();
    expect(timingSafeEqual(a, b)).toBe(same);
    expect(watch.lengths()).toEqual([[a.length, a.length]]);
  });

  it("is true exactly when both byte strings are equal, and always reads the whole of the first", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (a, b) => {
        const watch = watchPlatformCompare();
        const same = a.length === b.length && a.every((byte, i) => byte === b[i]);
        expect(timingSafeEqual(a, b)).toBe(same);
        expect(timingSafeEqual(b, a)).toBe(same);
        expect(watch.lengths()).toEqual([
          [a.length, a.length],
          [b.length, b.length],
        ]);
        vi.restoreAllMocks();
      }),
      { numRuns: 1000 },
    );
  });

  it("is true for a copy and false after any one-byte change", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (a, at, delta) => {
          const b = a.slice();
          expect(timingSafeEqual(a, b)).toBe(true);
          const i = at % b.length;
          b[i] = (b[i]! + delta) % 256;
          expect(timingSafeEqual(a, b)).toBe(false);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("is false when one is a prefix of the other, in both orders", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 8 }), (a, tail) => {
        const longer = new Uint8Array([...a, ...tail]);
        expect(timingSafeEqual(a, longer)).toBe(false);
        expect(timingSafeEqual(longer, a)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});

describe("the key check's comparisons", () => {
  /** Stores, as the key's hash, the hash of its secret with the byte at `at` changed. */
  async function keyWithStoredHashDifferingAt(at: number) {
    const key = await createKey();
    const digest = flipped(await digestSecret(key.secret), at);
    const name = `key:${key.keyId}`;
    const record = (await env.API_KEYS.get(name, "json")) as Record<string, unknown>;
    await env.API_KEYS.put(name, JSON.stringify({ ...record, secret_hash: `sha256:${hex(digest)}` }));
    return key;
  }

  it.each([0, 1, 15, 30, 31])(
    "compare two whole 32-byte digests when the stored hash differs at byte %i",
    async (at) => {
      const key = await keyWithStoredHashDifferingAt(at);
      const h = gateway();
      const watch = watchPlatformCompare();
      const { res } = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
      expect(res.status).toBe(401);
      expect(watch.lengths()).toEqual([
        [32, 32],
        [32, 32],
      ]);
      // The first compare is the presented secret's digest against the stored one.
      const [presented, stored] = watch.spy.mock.calls[0] as [Uint8Array, Uint8Array];
      const differing = [...presented].flatMap((byte, i) => (byte === stored[i] ? [] : [i]));
      expect(differing).toEqual([at]);
    },
  );

  it.each([
    ["a valid key", async () => (await createKey()).authorization, 200],
    ["an unknown key_id", async () => `Bearer ${generateKeyId()}:${generateSecret()}`, 401],
    [
      "a revoked key",
      async () => {
        const store = adminStore();
        const key = await createKey({ store });
        await store.revoke(key.accountId, key.keyId);
        return key.authorization;
      },
      401,
    ],
  ])("compare two whole 32-byte digests for %s", async (_name, authorization, status) => {
    const value = await authorization();
    const h = gateway();
    const watch = watchPlatformCompare();
    const { res } = await h.send(h.request("/v1/agents", { authorization: value }));
    expect(res.status).toBe(status);
    expect(watch.lengths()).toEqual([
      [32, 32],
      [32, 32],
    ]);
  });
});
