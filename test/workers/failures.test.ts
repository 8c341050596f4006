/**
 * Failure answers (SPEC §4 engine failures, §7 errors, §8 configuration): each is the
 * error envelope with application/json and an X-Request-Id, never leaks exception text,
 * and never forwards when the gateway cannot be sure who is calling.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app.ts";
import { defaultPrimitives } from "../../src/auth/verify-key.ts";
import { LruCache } from "../../src/lib/lru-cache.ts";
import { createStoreCaches } from "../../src/keys/store.ts";
import {
  createKey,
  gateway,
  recordingEngine,
  uniqueAddress,
  UUID,
  type Sent,
  type TestEnv,
  type TestKey,
} from "./harness.ts";

const MESSAGES = {
  bad_gateway: "The API engine could not be reached; retry later",
  gateway_timeout: "The API engine did not answer in time; retry later",
  service_unavailable: "The gateway cannot verify API keys right now; retry later",
  configuration_error: "The gateway is misconfigured; the operator has been told",
  internal_error: "An internal error occurred; retry later and quote the request id if it persists",
} as const;

const STATUS = {
  bad_gateway: 502,
  gateway_timeout: 504,
  service_unavailable: 503,
  configuration_error: 500,
  internal_error: 500,
} as const;

/** Asserts the SPEC §7 envelope, byte for byte, with its headers. */
function expectApiError({ res, body }: Sent, code: keyof typeof MESSAGES): void {
  expect(res.status).toBe(STATUS[code]);
  expect(body).toBe(JSON.stringify({ error: { type: "api_error", code, message: MESSAGES[code] } }));
  expect(res.headers.get("content-type")).toBe("application/json");
  expect(res.headers.get("x-request-id")).toMatch(UUID);
}

/** Console lines written during a test (the log-capture setup still sees them: spies call through). */
function spyConsole() {
  const spies = [vi.spyOn(console, "log"), vi.spyOn(console, "warn"), vi.spyOn(console, "error")];
  return () => spies.flatMap((spy) => spy.mock.calls.map((args) => args.map(String).join(" ")));
}

let key: TestKey;
beforeAll(async () => {
  key = await createKey();
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("engine failures (SPEC §4)", () => {
  it("answers 502 bad_gateway when the engine fetch throws, without the exception text", async () => {
    const engine = recordingEngine(() => {
      throw new TypeError("Network connection lost to engine-7.internal.nixflex.com:8443");
    });
    const h = gateway({ engine });
    const sent = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expectApiError(sent, "bad_gateway");
    expect(sent.body).not.toContain("internal");
  });

  it("answers 502 bad_gateway when the real fetch cannot connect to ENGINE_URL", async () => {
    // Port 1 on loopback: nothing listens, the connection is refused.
    const bindings = { ...env, ENGINE_URL: "http://127.0.0.1:1" };
    const app = createApp({ caches: createStoreCaches(), blocked: new LruCache(10) });
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request("https://api.nixflex.com/v1/agents", {
        headers: { authorization: key.authorization, "cf-connecting-ip": uniqueAddress() },
      }),
      bindings,
      ctx,
    );
    const body = await res.text();
    await waitOnExecutionContext(ctx);
    expectApiError({ res, body }, "bad_gateway");
    expect(body).not.toContain("127.0.0.1");
  });

  it("answers 504 gateway_timeout when the engine does not start answering within ENGINE_TIMEOUT_MS", async () => {
    // An engine that never answers. (That the runtime then closes the engine's connection is
    // pinned end to end in test/e2e/faults.test.ts; here no real connection exists.)
    const engine = recordingEngine(() => new Promise<Response>(() => {}));
    const h = gateway({ engine, env: { ...env, ENGINE_TIMEOUT_MS: "200" } });
    const started = Date.now();
    const sent = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    const elapsed = Date.now() - started;
    expectApiError(sent, "gateway_timeout");
    expect(engine.calls).toHaveLength(1);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(3000);
  });

  it("lets an engine that answers in time stream its body for longer than ENGINE_TIMEOUT_MS", async () => {
    const engine = recordingEngine(() => {
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          if (sent === 4) return controller.close();
          sent++;
          controller.enqueue(new TextEncoder().encode(`part${sent};`));
        },
      });
      return new Response(body);
    });
    const h = gateway({ engine, env: { ...env, ENGINE_TIMEOUT_MS: "200" } });
    const sent = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expect(sent.res.status).toBe(200);
    expect(sent.body).toBe("part1;part2;part3;part4;");
  });
});

describe("key store failures (SPEC §4: fail closed)", () => {
  const failingKv = (get: () => Promise<unknown>) =>
    ({
      ...env.API_KEYS,
      get,
      put: env.API_KEYS.put.bind(env.API_KEYS),
      list: env.API_KEYS.list.bind(env.API_KEYS),
    }) as unknown as KVNamespace;

  it("answers 503 service_unavailable when KV get fails, and never calls the engine", async () => {
    const kv = failingKv(() => Promise.reject(new Error("KV GET failed: 500 Internal Server Error")));
    const h = gateway({ env: { ...env, API_KEYS: kv } });
    const sent = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expectApiError(sent, "service_unavailable");
    expect(sent.body).not.toContain("KV GET");
    expect(h.engine.calls).toHaveLength(0);
  });

  it("answers 503 service_unavailable when KV does not answer within the store's time limit", async () => {
    const kv = failingKv(() => new Promise(() => {}));
    const h = gateway({ env: { ...env, API_KEYS: kv }, kvTimeoutMs: 50 });
    const sent = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expectApiError(sent, "service_unavailable");
    expect(h.engine.calls).toHaveLength(0);
  });

  it("does not cache a KV failure: the next request reads KV again and succeeds", async () => {
    let fail = true;
    const kv = failingKv((...args: unknown[]) =>
      fail ? Promise.reject(new Error("down")) : (env.API_KEYS.get as (...a: unknown[]) => Promise<unknown>)(...args),
    );
    const h = gateway({ env: { ...env, API_KEYS: kv } });
    expectApiError(await h.send(h.request("/v1/agents", { authorization: key.authorization })), "service_unavailable");
    fail = false;
    expect((await h.send(h.request("/v1/agents", { authorization: key.authorization }))).res.status).toBe(200);
    expect(h.engine.calls).toHaveLength(1);
  });
});

describe("bad configuration (SPEC §8: fail closed, name the setting)", () => {
  const parsedKeys = () => JSON.parse(env.IDENTITY_SIGNING_KEYS) as { keys: Array<Record<string, string>> };
  let rsaPrivateJwk: JsonWebKey;

  beforeAll(async () => {
    const pair = (await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    rsaPrivateJwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  });

  const signingKeys = (mutate: (keys: Array<Record<string, unknown>>) => unknown) => {
    const doc = parsedKeys();
    const result = mutate(doc.keys);
    return JSON.stringify(result === undefined ? doc : result);
  };

  const CASES: Array<[what: string, setting: string, patch: () => Partial<Record<string, unknown>>]> = [
    ["ENGINE_URL is missing", "ENGINE_URL", () => ({ ENGINE_URL: undefined })],
    ["ENGINE_URL is empty", "ENGINE_URL", () => ({ ENGINE_URL: "" })],
    ["ENGINE_URL is not a URL", "ENGINE_URL", () => ({ ENGINE_URL: "engine.internal" })],
    ["ENGINE_URL has a path", "ENGINE_URL", () => ({ ENGINE_URL: "https://engine.internal.nixflex.com/v1" })],
    ["ENGINE_URL has a query", "ENGINE_URL", () => ({ ENGINE_URL: "https://engine.internal.nixflex.com/?a=1" })],
    ["ENGINE_URL is not http(s)", "ENGINE_URL", () => ({ ENGINE_URL: "ftp://engine.internal.nixflex.com" })],
    ["ENGINE_URL carries credentials", "ENGINE_URL", () => ({ ENGINE_URL: "https://u:p@engine.internal.nixflex.com" })],
    ["ENGINE_TIMEOUT_MS is not a number", "ENGINE_TIMEOUT_MS", () => ({ ENGINE_TIMEOUT_MS: "abc" })],
    ["ENGINE_TIMEOUT_MS is zero", "ENGINE_TIMEOUT_MS", () => ({ ENGINE_TIMEOUT_MS: "0" })],
    ["ENGINE_TIMEOUT_MS is negative", "ENGINE_TIMEOUT_MS", () => ({ ENGINE_TIMEOUT_MS: "-5" })],
    ["ENGINE_TIMEOUT_MS is fractional", "ENGINE_TIMEOUT_MS", () => ({ ENGINE_TIMEOUT_MS: "1.5" })],
    ["IDENTITY_ISSUER is blank", "IDENTITY_ISSUER", () => ({ IDENTITY_ISSUER: "  " })],
    ["IDENTITY_AUDIENCE is empty", "IDENTITY_AUDIENCE", () => ({ IDENTITY_AUDIENCE: "" })],
    ["IDENTITY_SIGNING_KEYS is missing", "IDENTITY_SIGNING_KEYS", () => ({ IDENTITY_SIGNING_KEYS: undefined })],
    ["IDENTITY_SIGNING_KEYS is not JSON", "IDENTITY_SIGNING_KEYS", () => ({ IDENTITY_SIGNING_KEYS: "{keys:[" })],
    ["IDENTITY_SIGNING_KEYS has no keys member", "IDENTITY_SIGNING_KEYS", () => ({ IDENTITY_SIGNING_KEYS: "{}" })],
    [
      "IDENTITY_SIGNING_KEYS has an empty key list",
      "IDENTITY_SIGNING_KEYS",
      () => ({ IDENTITY_SIGNING_KEYS: '{"keys":[]}' }),
    ],
    [
      "IDENTITY_SIGNING_KEYS is a bare key, not a set",
      "IDENTITY_SIGNING_KEYS",
      () => ({ IDENTITY_SIGNING_KEYS: JSON.stringify(parsedKeys().keys[0]) }),
    ],
    [
      "IDENTITY_SIGNING_KEYS holds a public-only key",
      "IDENTITY_SIGNING_KEYS",
      () => ({
        IDENTITY_SIGNING_KEYS: signingKeys((keys) => {
          delete keys[0]!.d;
        }),
      }),
    ],
    [
      "IDENTITY_SIGNING_KEYS holds a public-only second key",
      "IDENTITY_SIGNING_KEYS",
      () => ({
        IDENTITY_SIGNING_KEYS: signingKeys((keys) => {
          delete keys[1]!.d;
        }),
      }),
    ],
    [
      "IDENTITY_SIGNING_KEYS holds an RSA key",
      "IDENTITY_SIGNING_KEYS",
      () => ({ IDENTITY_SIGNING_KEYS: JSON.stringify({ keys: [{ ...rsaPrivateJwk, kid: "rsa-1" }] }) }),
    ],
    [
      "IDENTITY_SIGNING_KEYS holds two keys with the same kid",
      "IDENTITY_SIGNING_KEYS",
      () => ({
        IDENTITY_SIGNING_KEYS: signingKeys((keys) => {
          keys[1]!.kid = keys[0]!.kid;
        }),
      }),
    ],
    [
      "IDENTITY_SIGNING_KEYS holds a key without a kid",
      "IDENTITY_SIGNING_KEYS",
      () => ({
        IDENTITY_SIGNING_KEYS: signingKeys((keys) => {
          delete keys[0]!.kid;
        }),
      }),
    ],
    [
      "IDENTITY_SIGNING_KEYS holds an encryption key",
      "IDENTITY_SIGNING_KEYS",
      () => ({
        IDENTITY_SIGNING_KEYS: signingKeys((keys) => {
          keys[0]!.use = "enc";
        }),
      }),
    ],
    [
      "IDENTITY_SIGNING_KEYS declares the wrong alg for a key",
      "IDENTITY_SIGNING_KEYS",
      () => ({
        IDENTITY_SIGNING_KEYS: signingKeys((keys) => {
          keys[0]!.alg = "ES256";
        }),
      }),
    ],
    ["API_KEYS is not bound", "API_KEYS", () => ({ API_KEYS: undefined })],
    [
      "GITHUB_SECRET_SCANNING_KEYS_URL is not a URL",
      "GITHUB_SECRET_SCANNING_KEYS_URL",
      () => ({ GITHUB_SECRET_SCANNING_KEYS_URL: "api.github.com/meta" }),
    ],
    [
      "GITHUB_SECRET_SCANNING_KEYS_URL is not http(s)",
      "GITHUB_SECRET_SCANNING_KEYS_URL",
      () => ({ GITHUB_SECRET_SCANNING_KEYS_URL: "ftp://api.github.com/meta" }),
    ],
    ["LEAK_WEBHOOK_URL is not a URL", "LEAK_WEBHOOK_URL", () => ({ LEAK_WEBHOOK_URL: "hooks" })],
    [
      "LEAK_WEBHOOK_URL carries credentials",
      "LEAK_WEBHOOK_URL",
      () => ({ LEAK_WEBHOOK_URL: "https://user:pw@hooks.nixflex.com/leaks" }),
    ],
  ];

  const PATHS: Array<[method: string, path: string, withKey: boolean]> = [
    ["GET", "/healthz", false],
    ["GET", "/.well-known/jwks.json", false],
    ["GET", "/v1/agents", true],
    ["POST", "/v1/calls", true],
    ["GET", "/v1/agents", false],
    ["POST", "/v1/leaked-keys", false],
    ["POST", "/v1/secret-scanning/github", false],
  ];

  it.each(CASES)(
    "answers 500 configuration_error on every path when %s, and logs the setting",
    async (_what, setting, patch) => {
      const bindings = { ...env, ...patch() } as TestEnv;
      const lines = spyConsole();
      const h = gateway({ env: bindings });
      for (const [method, path, withKey] of PATHS) {
        const sent = await h.send(
          h.request(path, {
            method,
            body: method === "POST" ? "{}" : undefined,
            authorization: withKey ? key.authorization : undefined,
          }),
        );
        expectApiError(sent, "configuration_error");
        expect(sent.body).not.toContain(setting);
      }
      expect(h.engine.calls).toHaveLength(0);
      const configLines = lines().filter((line) => line.includes('"configuration_error"'));
      expect(configLines.length).toBeGreaterThanOrEqual(PATHS.length);
      for (const line of configLines) expect(line).toContain(setting);
      for (const line of lines()) expect(line).not.toMatch(/"d":|"p":|"q":/);
    },
  );

  it("answers 500 configuration_error instead of forwarding when the signing key cannot be imported", async () => {
    const broken = signingKeys((keys) => {
      keys[0]!.d = "AAAA";
      keys[0]!.x = "AAAA";
    });
    const lines = spyConsole();
    const h = gateway({ env: { ...env, IDENTITY_SIGNING_KEYS: broken } });
    const sent = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expectApiError(sent, "configuration_error");
    expect(h.engine.calls).toHaveLength(0);
    // Every request fails closed (SPEC §8), public paths included: no JWKS with an unusable key.
    for (const path of ["/healthz", "/.well-known/jwks.json", "/v1/keys"]) {
      expectApiError(await h.send(h.request(path, { authorization: key.authorization })), "configuration_error");
    }
    expect(lines().some((line) => line.includes("configuration_error") && line.includes("IDENTITY_SIGNING_KEYS"))).toBe(
      true,
    );
  });

  it("recovers once the configuration is fixed (a new env object is parsed afresh)", async () => {
    const h = gateway({ env: { ...env, ENGINE_URL: "nope" } });
    expectApiError(await h.send(h.request("/healthz")), "configuration_error");
    const fixed = gateway();
    expect((await fixed.send(fixed.request("/healthz"))).res.status).toBe(200);
  });
});

describe("unexpected exceptions (SPEC §7)", () => {
  it("answers 500 internal_error with no exception text, and logs it with the request id", async () => {
    const lines = spyConsole();
    const h = gateway({
      primitives: {
        ...defaultPrimitives,
        digest: () => {
          throw new RangeError("kaboom at /srv/gateway/src/keys/hash.ts:12 (engine-7.internal.nixflex.com)");
        },
      },
    });
    const sent = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expectApiError(sent, "internal_error");
    for (const leak of ["kaboom", "RangeError", "hash.ts", "internal.nixflex", "stack", " at "])
      expect(sent.body).not.toContain(leak);
    expect(h.engine.calls).toHaveLength(0);
    const requestId = sent.res.headers.get("x-request-id")!;
    expect(lines().some((line) => line.includes('"internal_error"') && line.includes(requestId))).toBe(true);
    // The access line says what happened: a bug in authentication, not an unreachable key store.
    const access = lines()
      .map((line) => JSON.parse(line.slice(line.indexOf("{"))))
      .find((entry) => entry.event === "request" && entry.request_id === requestId);
    expect(access).toMatchObject({ status: 500, outcome: "internal_error" });
  });

  it("answers 500 internal_error when the clock itself throws", async () => {
    const h = gateway({
      now: () => {
        throw new Error("clock exploded");
      },
    });
    const sent = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expectApiError(sent, "internal_error");
    expect(sent.body).not.toContain("clock");
  });
});
