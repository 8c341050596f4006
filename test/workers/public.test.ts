/**
 * Public paths (SPEC §6): /healthz and /.well-known/jwks.json answer without a key,
 * the JWKS carries every configured key's public half and never a private member,
 * and other methods get 405 with Allow.
 */
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import fc from "fast-check";
import { CompactSign, compactVerify, importJWK, type JWK } from "jose";
import { describe, expect, it } from "vitest";
import { countingKv, gateway, UUID, type TestEnv } from "./harness.ts";

type Jwk = Record<string, unknown> & { kid: string };
const configured = (keys: string) => (JSON.parse(keys) as { keys: Jwk[] }).keys;
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k", "oth", "r", "t"];

/** Every object key anywhere in a JSON value. */
function memberNames(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) for (const item of value) memberNames(item, out);
  else if (value !== null && typeof value === "object") {
    for (const [name, inner] of Object.entries(value)) {
      out.add(name);
      memberNames(inner, out);
    }
  }
  return out;
}

describe("GET /healthz", () => {
  it('answers 200 {"status":"ok"} without a key', async () => {
    const h = gateway();
    const { res, body } = await h.send(h.request("/healthz"));
    expect(res.status).toBe(200);
    expect(body).toBe('{"status":"ok"}');
    expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
    expect(res.headers.get("x-request-id")).toMatch(UUID);
  });

  it("ignores a bad Authorization header instead of answering 401", async () => {
    const h = gateway();
    const { res } = await h.send(h.request("/healthz", { authorization: "Bearer nonsense" }));
    expect(res.status).toBe(200);
  });

  it("touches neither KV nor the engine", async () => {
    const counting = countingKv();
    const h = gateway({ env: { ...env, API_KEYS: counting.kv } });
    for (let i = 0; i < 3; i++) expect((await h.send(h.request("/healthz"))).res.status).toBe(200);
    expect(counting.reads() + counting.writes()).toBe(0);
    expect(h.engine.calls).toHaveLength(0);
  });

  it("is answered by the Worker's own entry point (src/index.ts) with production dependencies", async () => {
    const res = await exports.default.fetch("https://api.nixflex.com/healthz");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"status":"ok"}');
  });

  it("answers HEAD with 200 and no body", async () => {
    const h = gateway();
    const { res, body } = await h.send(h.request("/healthz", { method: "HEAD" }));
    expect(res.status).toBe(200);
    expect(body).toBe("");
  });
});

describe("GET /.well-known/jwks.json", () => {
  it("answers 200 with Cache-Control public, max-age=300 and a JSON content type", async () => {
    const h = gateway();
    const { res } = await h.send(h.request("/.well-known/jwks.json"));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=300");
    expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
    expect(res.headers.get("x-request-id")).toMatch(UUID);
  });

  it.each([
    ["the default Ed25519 keys", "IDENTITY_SIGNING_KEYS"],
    ["a P-256 key followed by an Ed25519 key", "TEST_ES256_SIGNING_KEYS"],
  ] as const)("lists the public half of every configured key, in order, for %s", async (_name, binding) => {
    const keys = configured(env[binding]);
    const h = gateway({ env: { ...env, IDENTITY_SIGNING_KEYS: env[binding] } });
    const { body } = await h.send(h.request("/.well-known/jwks.json"));
    const published = (JSON.parse(body) as { keys: Jwk[] }).keys;
    expect(published.map((k) => k.kid)).toEqual(keys.map((k) => k.kid));
    published.forEach((pub, i) => {
      const priv = keys[i]!;
      if (priv.kty === "OKP") {
        expect(pub).toEqual({ kty: "OKP", crv: "Ed25519", x: priv.x, kid: priv.kid, alg: "EdDSA", use: "sig" });
      } else {
        expect(pub).toEqual({ kty: "EC", crv: "P-256", x: priv.x, y: priv.y, kid: priv.kid, alg: "ES256", use: "sig" });
      }
    });
  });

  it("publishes keys that verify what the matching private keys sign", async () => {
    const keys = configured(env.TEST_ES256_SIGNING_KEYS);
    const h = gateway({ env: { ...env, IDENTITY_SIGNING_KEYS: env.TEST_ES256_SIGNING_KEYS } });
    const published = (JSON.parse((await h.send(h.request("/.well-known/jwks.json"))).body) as { keys: Jwk[] }).keys;
    for (const priv of keys) {
      const alg = priv.kty === "OKP" ? "EdDSA" : "ES256";
      const jws = await new CompactSign(new TextEncoder().encode("probe"))
        .setProtectedHeader({ alg, kid: priv.kid })
        .sign(await importJWK(priv as JWK, alg));
      const pub = published.find((k) => k.kid === priv.kid)!;
      const { payload } = await compactVerify(jws, await importJWK(pub as JWK, alg));
      expect(new TextDecoder().decode(payload)).toBe("probe");
    }
  });

  it("never publishes a private member, whatever extra members the configured keys carry", async () => {
    const available = [
      ...configured(env.IDENTITY_SIGNING_KEYS),
      ...configured(env.TEST_ES256_SIGNING_KEYS).filter((k) => k.kty === "EC"),
    ];
    const secretish = fc.string({
      unit: fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      minLength: 16,
      maxLength: 40,
    });
    const extraName = fc.oneof(
      fc.constantFrom(...PRIVATE_MEMBERS, "x5c", "key_ops", "ext", "n", "e"),
      fc.string({ minLength: 1, maxLength: 8 }),
    );
    const reserved = new Set(["kid", "kty", "crv", "x", "y", "use", "alg", "__proto__"]);
    await fc.assert(
      fc.asyncProperty(
        fc.subarray(available, { minLength: 1 }),
        fc.array(fc.dictionary(extraName, secretish, { maxKeys: 6 }), { minLength: 3, maxLength: 3 }),
        async (chosen, extras) => {
          const keys = chosen.map((k, i) => {
            const extra = Object.fromEntries(Object.entries(extras[i]!).filter(([name]) => !reserved.has(name)));
            return { ...extra, ...k, d: k.d };
          });
          const secrets = keys.flatMap((k) =>
            Object.entries(k)
              .filter(([n]) => !reserved.has(n))
              .map(([, v]) => String(v)),
          );
          const bindings = { ...env, IDENTITY_SIGNING_KEYS: JSON.stringify({ keys }) } as TestEnv;
          const h = gateway({ env: bindings });
          const { res, body } = await h.send(h.request("/.well-known/jwks.json"));
          expect(res.status).toBe(200);
          const names = memberNames(JSON.parse(body));
          for (const name of PRIVATE_MEMBERS) expect(names.has(name), name).toBe(false);
          for (const value of secrets) expect(body).not.toContain(value);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("other methods on public paths", () => {
  it.each(
    ["/healthz", "/.well-known/jwks.json"].flatMap((path) =>
      ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"].map((method) => [method, path] as const),
    ),
  )("answers %s %s with 405, Allow: GET, HEAD and the error envelope", async (method, path) => {
    const h = gateway();
    const { res, body } = await h.send(h.request(path, { method, body: method === "OPTIONS" ? undefined : "{}" }));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("x-request-id")).toMatch(UUID);
    expect(JSON.parse(body)).toEqual({
      error: { type: "invalid_request_error", code: "method_not_allowed", message: expect.any(String) },
    });
    expect(h.engine.calls).toHaveLength(0);
  });
});
