/**
 * The failure limit costs the one who fails, not its neighbours (SPEC §3, issue 14 item 2):
 * a valid key is checked and served whatever else its address sends, the failing traffic
 * past the limit still gets 429 with Retry-After, and that failing traffic stays cheap —
 * no limiter call once the isolate knows the address is over, no KV read for a malformed
 * pair or a key_id already looked up.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { generateKeyId, generateSecret } from "../../src/keys/format.ts";
import { countingKv, createKey, gateway, rememberSensitive, uniqueAddress } from "./harness.ts";

const LIMIT = 60;

/** A binding that says yes `allowed` times, then no; counts its calls. */
function countingLimiter(allowed: number) {
  let calls = 0;
  const binding = {
    async limit() {
      calls++;
      return { success: calls <= allowed };
    },
  } as RateLimit;
  return { binding, calls: () => calls };
}

describe("a valid key behind an address that floods failures", () => {
  it("is served while the flood from the same address gets 429 with Retry-After (real binding)", async () => {
    const h = gateway();
    const key = await createKey();
    const shared = uniqueAddress(); // a carrier NAT: the attacker and the victim share it
    const send = (authorization: string) =>
      h.send(h.request("/v1/agents", { headers: { "cf-connecting-ip": shared }, authorization }));

    // Flood until the binding says no (a window boundary may reset the count once).
    let failures = 0;
    let limited: Awaited<ReturnType<typeof send>> | undefined;
    while (failures <= 2 * LIMIT) {
      const sent = await send(`Bearer ${generateKeyId()}:${generateSecret()}`);
      if (sent.res.status === 429) {
        limited = sent;
        break;
      }
      expect(sent.res.status).toBe(401);
      failures++;
    }
    expect(failures).toBeGreaterThanOrEqual(LIMIT);
    expect(limited).toBeDefined();
    const retryAfter = Number(limited!.res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    for (let round = 0; round < 3; round++) {
      const victim = await send(key.authorization);
      expect(victim.res.status).toBe(200);
      expect(victim.body).toBe("engine ok");
      const flood = await send("Bearer wrong");
      expect(flood.res.status).toBe(429);
      expect(JSON.parse(flood.body).error).toMatchObject({ type: "rate_limit_error", code: "rate_limited" });
      expect(Number(flood.res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    expect(h.engine.calls).toHaveLength(3);
    const identity = await h.verifier()(h.engine.calls.at(-1)!);
    expect(identity.accountId).toBe(key.accountId);
  });

  it("is served with a key whose record this isolate never read (a KV read, not a refusal)", async () => {
    const limiter = countingLimiter(0);
    const h = gateway({ env: { ...env, AUTH_FAILURE_LIMITER: limiter.binding } });
    const address = uniqueAddress();
    const over = await h.send(
      h.request("/v1/a", { headers: { "cf-connecting-ip": address }, authorization: "Bearer x" }),
    );
    expect(over.res.status).toBe(429);
    const fresh = await createKey();
    const sent = await h.send(
      h.request("/v1/a", { headers: { "cf-connecting-ip": address }, authorization: fresh.authorization }),
    );
    expect(sent.res.status).toBe(200);
  });

  it("is not counted, and does not lift the block for the failing traffic", async () => {
    const limiter = countingLimiter(1);
    const h = gateway({ env: { ...env, AUTH_FAILURE_LIMITER: limiter.binding } });
    const key = await createKey();
    const address = uniqueAddress();
    const send = (authorization: string) =>
      h.send(h.request("/v1/a", { headers: { "cf-connecting-ip": address }, authorization }));
    expect((await send("Bearer a")).res.status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await send(key.authorization)).res.status).toBe(200);
    expect(limiter.calls()).toBe(1);
    expect((await send("Bearer b")).res.status).toBe(429);
    expect((await send(key.authorization)).res.status).toBe(200);
    expect((await send("Bearer c")).res.status).toBe(429);
  });
});

describe("what the failing traffic of a blocked address costs", () => {
  async function blockedGateway() {
    const limiter = countingLimiter(0);
    const kv = countingKv();
    const h = gateway({ env: { ...env, AUTH_FAILURE_LIMITER: limiter.binding, API_KEYS: kv.kv } });
    const address = uniqueAddress();
    const send = (authorization: string) =>
      h.send(h.request("/v1/a", { headers: { "cf-connecting-ip": address }, authorization }));
    expect((await send("Bearer first")).res.status).toBe(429);
    expect(limiter.calls()).toBe(1);
    return { h, kv, limiter, send };
  }

  it("no limiter call once this isolate knows the address is over", async () => {
    const { limiter, send } = await blockedGateway();
    for (let i = 0; i < 20; i++)
      expect((await send(`Bearer ${generateKeyId()}:${generateSecret()}`)).res.status).toBe(429);
    expect(limiter.calls()).toBe(1);
  });

  it("no KV read for a malformed pair or a bad checksum", async () => {
    const { kv, send } = await blockedGateway();
    const good = generateSecret();
    const badChecksum = good.slice(0, -1) + (good.endsWith("0") ? "1" : "0");
    const before = kv.reads();
    for (const authorization of [
      "",
      "Bearer",
      "Basic abc",
      `Bearer ${generateKeyId()} ${good}`,
      `Bearer ${generateKeyId()}:${badChecksum}`,
    ]) {
      expect((await send(authorization)).res.status).toBe(429);
    }
    expect(kv.reads() - before).toBe(0);
  });

  it("one KV read for a key_id sent again and again (negative cache), none for a known key's wrong secret", async () => {
    const { kv, send } = await blockedGateway();
    const key = await createKey();
    rememberSensitive(key.secret);
    const unknown = generateKeyId();
    const before = kv.reads();
    for (let i = 0; i < 10; i++) expect((await send(`Bearer ${unknown}:${generateSecret()}`)).res.status).toBe(429);
    expect(kv.reads() - before).toBe(1);
    expect((await send(key.authorization)).res.status).toBe(200);
    const known = kv.reads();
    for (let i = 0; i < 10; i++) expect((await send(`Bearer ${key.keyId}:${generateSecret()}`)).res.status).toBe(429);
    expect(kv.reads() - known).toBe(0);
  });
});
