/**
 * `POST /v1/leaked-keys` (SPEC §10): anyone who found a secret revokes it, and the answer is
 * the same whatever was submitted — same status, same bytes, same headers, and given before
 * any key work, so neither content nor timing tells a live secret from a dead one.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { generateSecret } from "../../src/keys/format.ts";
import {
  createKey,
  gateway,
  headerNames,
  rememberSensitive,
  STANDARD_401_BODY,
  type TestKey,
  uniqueAddress,
} from "./harness.ts";
import { kvSnapshot, LEAK_PATH, leakEnv, outbound, watchLog } from "./leaks-support.ts";

/** The one answer, spelled out here so a change in the source cannot silently change it. */
const ANSWER =
  '{"object":"leak_report","status":"received","message":"Thank you. If this is a live Nixflex key secret, it is revoked now and its owner is told."}';

function setup(bindings = leakEnv) {
  const out = outbound([]);
  const g = gateway({ env: bindings, outboundFetch: out.fetch });
  const submit = (body: unknown, headers: Record<string, string> = {}) =>
    g.send(
      g.request(LEAK_PATH, {
        method: "POST",
        body: typeof body === "string" ? body : JSON.stringify(body),
        headers: { "content-type": "application/json", ...headers },
      }),
    );
  const call = (key: TestKey) => g.send(g.request("/v1/agents", { authorization: key.authorization }));
  return { g, out, submit, call };
}

describe("the answer tells nothing", () => {
  it("is the same status, bytes and headers for a live, a revoked, an unknown, a bad-checksum secret and a pair", async () => {
    const live = await createKey();
    const pairKey = await createKey();
    const revoked = await createKey();
    const { g, submit, call } = setup();
    await g.send(g.request(`/v1/keys/${revoked.keyId}`, { method: "DELETE", authorization: revoked.authorization }));
    const unknown = generateSecret();
    const badChecksum = `${unknown.slice(0, -1)}${unknown.endsWith("0") ? "1" : "0"}`;
    for (const s of [unknown, badChecksum]) rememberSensitive(s);
    const bodies = [
      { key_secret: live.secret },
      { key_secret: revoked.secret },
      { key_secret: unknown },
      { key_secret: badChecksum },
      { key_secret: `${pairKey.keyId}:${pairKey.secret}` },
      { key_secret: "anything at all", url: "https://example.com/paste/1" },
    ];
    const answers = [];
    for (const body of bodies) answers.push(await submit(body));
    for (const { res, body } of answers) {
      expect(res.status).toBe(202);
      expect(body).toBe(ANSWER);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(headerNames(res)).toEqual(headerNames(answers[0]!.res));
    }
    // The work ran after the answer: both live secrets are dead now.
    expect((await call(live)).body).toBe(STANDARD_401_BODY);
    expect((await call(pairKey)).res.status).toBe(401);
  });

  it("answers while the key work is still waiting on KV, whatever was submitted", async () => {
    const live = await createKey();
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let held = 0;
    // KV whose reads wait for the gate: an answer that waited for the key work could not come.
    const kv = new Proxy(env.API_KEYS, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (prop !== "get") return typeof value === "function" ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          held++;
          await gate;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const bindings = { ...leakEnv, API_KEYS: kv };
    const { g, call } = setup(bindings);
    const ctxs = [];
    for (const secret of [live.secret, generateSecret()]) {
      rememberSensitive(secret);
      const ctx = createExecutionContext();
      ctxs.push(ctx);
      const res = await g.app.fetch(
        new Request(`https://api.nixflex.com${LEAK_PATH}`, {
          method: "POST",
          headers: { "content-type": "application/json", "cf-connecting-ip": uniqueAddress() },
          body: JSON.stringify({ key_secret: secret }),
        }),
        bindings,
        ctx,
      );
      expect(res.status).toBe(202);
      expect(await res.text()).toBe(ANSWER);
    }
    open();
    for (const ctx of ctxs) await waitOnExecutionContext(ctx);
    expect(held).toBeGreaterThan(0);
    expect((await call(live)).res.status).toBe(401);
  });

  it("writes the audit line with the reported URL, never the secret", async () => {
    const key = await createKey();
    const { submit } = setup();
    const log = watchLog();
    await submit({ key_secret: key.secret, url: "https://pastebin.example/abc" });
    const audit = log.audits(key.keyId)[0];
    expect(audit).toMatchObject({
      action: "revoke",
      target_key_id: key.keyId,
      actor: "leak_report:leak_report",
      leak_url: "https://pastebin.example/abc",
    });
  });
});

describe("bad requests", () => {
  const bad: [string, string, Record<string, string>, string][] = [
    ["malformed JSON", '{"key_secret":', {}, "invalid_json"],
    ["a non-JSON Content-Type", '{"key_secret":"x"}', { "content-type": "text/plain" }, "invalid_content_type"],
    ["no key_secret", '{"secret":"x"}', {}, "invalid_parameters"],
    ["a key_secret that is not a string", '{"key_secret":5}', {}, "invalid_parameters"],
    ["an array", '["x"]', {}, "invalid_parameters"],
    ["a url that is not a string", '{"key_secret":"x","url":1}', {}, "invalid_parameters"],
  ];
  for (const [what, body, headers, code] of bad) {
    it(`answers 400 ${code} to ${what}, KV untouched`, async () => {
      const { submit } = setup();
      const before = await kvSnapshot();
      const sent = await submit(body, headers);
      expect(sent.res.status).toBe(400);
      expect(JSON.parse(sent.body).error).toMatchObject({ type: "invalid_request_error", code });
      expect(await kvSnapshot()).toEqual(before);
    });
  }

  it("answers 413 to a body over 4 KiB", async () => {
    const { submit } = setup();
    const sent = await submit({ key_secret: "x".repeat(5000) });
    expect(sent.res.status).toBe(413);
  });
});

describe("abuse", () => {
  it("counts every submission against the address like a failed authentication: past the limit, 429 with Retry-After", async () => {
    let allowed = 3;
    const limiter = { limit: async () => ({ success: allowed-- > 0 }) } as RateLimit;
    const { submit } = setup({ ...leakEnv, AUTH_FAILURE_LIMITER: limiter });
    const ip = uniqueAddress();
    for (let i = 0; i < 3; i++)
      expect((await submit({ key_secret: "x" }, { "cf-connecting-ip": ip })).res.status).toBe(202);
    const limited = await submit({ key_secret: "x" }, { "cf-connecting-ip": ip });
    expect(limited.res.status).toBe(429);
    expect(limited.res.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(JSON.parse(limited.body).error.type).toBe("rate_limit_error");
    // Blocked in this isolate for the window: no more calls to the binding.
    const again = await submit({ key_secret: "x" }, { "cf-connecting-ip": ip });
    expect(again.res.status).toBe(429);
    expect(allowed).toBe(-1);
  });

  it("is limited by the real binding of wrangler.toml", async () => {
    const { submit } = setup({ ...leakEnv, AUTH_FAILURE_LIMITER: env.AUTH_FAILURE_LIMITER });
    const ip = uniqueAddress();
    let status = 202;
    let sent = 0;
    while (status === 202 && sent < 200) {
      status = (await submit({ key_secret: "x" }, { "cf-connecting-ip": ip })).res.status;
      sent++;
    }
    expect(status).toBe(429);
    expect(sent).toBeGreaterThan(60);
  }, 60_000);
});
