/**
 * The verifier's jti replay guard (src/verify/replay.ts, SPEC §9): a token is good for one
 * request, the in-memory store stays bounded under any number of distinct tokens, and entries
 * leave when their token could no longer verify anyway.
 */
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createIdentityVerifier, createMemoryReplayStore, IdentityError } from "../../src/verify/index.ts";

describe("the in-memory replay store", () => {
  it("answers true for a first use and false for every later use while the entry lives", () => {
    const store = createMemoryReplayStore({ now: () => 1_000 });
    expect(store.claim("a", 66_000)).toBe(true);
    expect(store.claim("a", 66_000)).toBe(false);
    expect(store.claim("a", 99_000)).toBe(false);
    expect(store.claim("b", 66_000)).toBe(true);
    expect(store.size).toBe(2);
  });

  it("forgets a jti once its token has expired (plus skew), and sweeps such entries away", () => {
    let now = 0;
    const store = createMemoryReplayStore({ now: () => now });
    for (let i = 0; i < 1_000; i++) expect(store.claim(`old-${i}`, 65_000)).toBe(true);
    now = 64_999;
    expect(store.claim("old-0", 65_000)).toBe(false);
    now = 65_000;
    expect(store.claim("fresh", 130_000)).toBe(true);
    expect(store.size).toBe(1);
    expect(store.claim("old-0", 130_000)).toBe(true);
    expect(store.evicted).toBe(0);
  });

  it("stays within maxEntries under a flood of distinct live jtis, dropping the oldest first", () => {
    const store = createMemoryReplayStore({ maxEntries: 1_000, now: () => 0 });
    for (let i = 0; i < 100_000; i++) store.claim(`flood-${i}`, 65_000);
    expect(store.size).toBe(1_000);
    expect(store.evicted).toBe(99_000);
    // The newest are still remembered; the oldest were dropped (counted in `evicted`).
    expect(store.claim("flood-99999", 65_000)).toBe(false);
    expect(store.claim("flood-0", 65_000)).toBe(true);
  });

  it.each([0, -1, 1.5, Number.NaN])("refuses maxEntries %s", (maxEntries) => {
    expect(() => createMemoryReplayStore({ maxEntries })).toThrow(TypeError);
  });
});

describe("the verifier's default guard", () => {
  it("refuses the second use of each of many tokens, and its memory stays bounded under the flood", async () => {
    const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const jwk = { ...(await exportJWK(publicKey)), kid: "flood-1", alg: "EdDSA" };
    const store = createMemoryReplayStore({ maxEntries: 50 });
    const verify = createIdentityVerifier({ keys: createLocalJWKSet({ keys: [jwk] }), replay: store });
    const now = Math.floor(Date.now() / 1000);
    const tokens = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        new SignJWT({ sub: "acct_flood", key_id: "nxf_flood", jti: `jti-${i}`, htm: "GET", htu: "/v1/flood" })
          .setProtectedHeader({ alg: "EdDSA", kid: "flood-1", typ: "nixflex-identity+jwt" })
          .setIssuer("https://api.nixflex.com")
          .setAudience("nixflex-engine")
          .setIssuedAt(now)
          .setExpirationTime(now + 60)
          .sign(privateKey),
      ),
    );
    const facts = (token: string) => ({ method: "GET", path: "/v1/flood", token });
    for (const [i, token] of tokens.entries()) {
      await expect(verify.verifyFacts(facts(token))).resolves.toMatchObject({ requestId: `jti-${i}` });
      const replayed = await verify.verifyFacts(facts(token)).catch((e: unknown) => e);
      expect(replayed).toBeInstanceOf(IdentityError);
      expect((replayed as IdentityError).code).toBe("ERR_IDENTITY_REPLAYED");
      expect(store.size).toBeLessThanOrEqual(50);
    }
    expect(store.evicted).toBe(250);
  });
});
