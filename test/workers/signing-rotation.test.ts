/**
 * Zero-downtime signing-key rotation (docs/OPERATIONS.md): publish the next key, activate
 * it, retire the old one — with the waits the runbook prescribes between phases — while one
 * engine-side verifier, which fetched and cached the JWKS before the rotation began, checks
 * every forwarded request. It must never fail, and it must not need more than one refetch.
 */
import { env } from "cloudflare:test";
import type { JWK } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createIdentityVerifier } from "../../src/verify/index.ts";
import { createKey, gateway, JWKS_URL, type Gateway, type TestEnv } from "./harness.ts";

const [k1, k2] = (JSON.parse(env.IDENTITY_SIGNING_KEYS) as { keys: Array<JWK & { kid: string }> }).keys as [
  JWK & { kid: string },
  JWK & { kid: string },
];
const deployment = (keys: JWK[]): Gateway =>
  gateway({ env: { ...env, IDENTITY_SIGNING_KEYS: JSON.stringify({ keys }) } as TestEnv });

/** The runbook's waits (scripts/signing-keys.ts --help): publish → activate ≥ 360 s, activate → retire ≥ 125 s. */
const PUBLISH_TO_ACTIVATE_MS = 360_000;
const ACTIVATE_TO_RETIRE_MS = 125_000;

describe("signing-key rotation with a verifier that cached the old JWKS", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.parse("2026-11-26T12:00:00Z"));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("verifies every request through publish, activate and retire", async () => {
    const key = await createKey();
    let live = deployment([k1]);
    let jwksFetches = 0;
    const verify = createIdentityVerifier({
      jwksUrl: JWKS_URL,
      fetch: async (url, init) => {
        jwksFetches++;
        return live.send(new Request(url as string, init)).then(({ res, body }) => new Response(body, res));
      },
    });

    /** Forwards one request through the live deployment; the engine verifies what it got. */
    const forwardAndVerify = async (path: string) => {
      const before = live.engine.calls.length;
      const { res } = await live.send(live.request(path, { authorization: key.authorization }));
      expect(res.status).toBe(200);
      const received = live.engine.calls[before]!;
      const kid = JSON.parse(atob(received.headers.get("x-nixflex-identity")!.split(".")[0]!)).kid;
      const identity = await verify(received);
      expect(identity).toMatchObject({ accountId: key.accountId, keyId: key.keyId });
      return kid as string;
    };

    // Before: k1 signs and is the only key; the verifier fetches and caches {k1}.
    expect(await forwardAndVerify("/v1/before")).toBe(k1.kid);
    expect(jwksFetches).toBe(1);

    // Phase 1, publish: {k1 signs, k2 published}. The verifier's cached {k1} still covers every token.
    live = deployment([k1, k2]);
    expect(await forwardAndVerify("/v1/published")).toBe(k1.kid);
    expect(jwksFetches).toBe(1);

    // Phase 2, activate (after the wait): {k2 signs, k1 still published}. The verifier meets an
    // unknown kid, refetches once, and accepts; tokens from isolates still signing with k1 pass too.
    vi.advanceTimersByTime(PUBLISH_TO_ACTIVATE_MS);
    const lagging = live;
    live = deployment([k2, k1]);
    expect(await forwardAndVerify("/v1/activated")).toBe(k2.kid);
    expect(jwksFetches).toBe(2);
    const stillOld = live;
    live = lagging;
    expect(await forwardAndVerify("/v1/lagging-isolate")).toBe(k1.kid);
    live = stillOld;

    // Phase 3, retire (after the wait): {k2}. Tokens signed by k2 keep verifying from the cache.
    vi.advanceTimersByTime(ACTIVATE_TO_RETIRE_MS);
    live = deployment([k2]);
    expect(await forwardAndVerify("/v1/retired")).toBe(k2.kid);
    expect(jwksFetches).toBe(2);
  });

  it("would fail if a key were activated without being published first and the verifier could not refetch", async () => {
    // The control: without the refetch-on-unknown-kid (cooldown not yet passed), skipping the
    // publish phase breaks the engine — the reason the runbook publishes first and waits.
    const key = await createKey();
    let live = deployment([k1]);
    const verify = createIdentityVerifier({
      jwksUrl: JWKS_URL,
      fetch: async (url, init) =>
        live.send(new Request(url as string, init)).then(({ res, body }) => new Response(body, res)),
    });
    const first = live.engine.calls.length;
    await live.send(live.request("/v1/a", { authorization: key.authorization }));
    await verify(live.engine.calls[first]!);
    live = deployment([k2]);
    const next = live.engine.calls.length;
    await live.send(live.request("/v1/b", { authorization: key.authorization }));
    // The JWKS was fetched moments ago, so jose's 30 s cooldown stops the refetch: an unknown kid.
    await expect(verify(live.engine.calls[next]!)).rejects.toMatchObject({ code: "ERR_IDENTITY_INVALID" });
  });
});
