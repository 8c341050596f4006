/**
 * Odd forwarded requests (issue 14; SPEC §4, §6): the engine subrequest bypasses
 * Cloudflare's cache, method/URL override headers never reach the engine, a WebSocket
 * upgrade and a path too long for the engine get a clear answer of their own. (A GET with a
 * body cannot be built inside workerd; test/e2e/hardening.test.ts sends one over HTTP.)
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PATH_MAX_BYTES } from "../../src/proxy/forward.ts";
import { engineRequestHeaders } from "../../src/proxy/headers.ts";
import { createKey, gateway, type Gateway, type TestKey } from "./harness.ts";

const CONTEXT = {
  identity: "token",
  requestId: "00000000-0000-4000-8000-000000000000",
  clientAddress: "198.51.100.7",
  publicHost: "api.nixflex.com",
  publicProto: "https",
};

const OVERRIDES = [
  "x-http-method-override",
  "x-method-override",
  "x-http-method",
  "x-original-method",
  "x-original-url",
  "x-original-uri",
  "x-rewrite-url",
];

async function forward(h: Gateway, key: TestKey, path: string, init: RequestInit = {}) {
  const before = h.engine.calls.length;
  const sent = await h.send(h.request(path, { ...init, authorization: key.authorization }));
  return { ...sent, engine: h.engine.calls.slice(before) };
}

function expectEnvelope(sent: { res: Response; body: string }, status: number, code: string) {
  expect(sent.res.status).toBe(status);
  expect(sent.res.headers.get("content-type")).toBe("application/json");
  expect(sent.res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  expect(JSON.parse(sent.body)).toEqual({
    error: { type: "invalid_request_error", code, message: expect.any(String) },
  });
}

describe("the engine subrequest", () => {
  it.each(["GET", "HEAD", "POST", "DELETE"])("%s is sent with cache: no-store", async (method) => {
    const [h, key] = [gateway(), await createKey()];
    const body = method === "POST" ? "a,b\n1,2\n" : undefined;
    const { res, engine } = await forward(h, key, "/v1/exports/report.csv", { method, body });
    expect(res.status).toBe(200);
    expect(engine).toHaveLength(1);
    expect(engine[0]!.cache).toBe("no-store");
  });
});

describe("method and URL override headers", () => {
  it("are dropped whatever their casing, spelling with _ or value (property)", () => {
    const name = fc
      .tuple(fc.constantFrom(...OVERRIDES), fc.array(fc.boolean(), { minLength: 32, maxLength: 32 }), fc.boolean())
      .map(([base, upper, underscores]) => {
        const spelled = underscores ? base.replaceAll("-", "_") : base;
        return [...spelled].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join("");
      });
    fc.assert(
      fc.property(fc.uniqueArray(name, { minLength: 1, maxLength: 7 }), fc.string(), (names, value) => {
        const incoming = new Headers({ "content-type": "application/json" });
        for (const n of names) incoming.append(n, value.replace(/[\r\n\0]/g, "") || "DELETE");
        const out = engineRequestHeaders(incoming, CONTEXT);
        const kept = [...out.keys()].map((n) => n.replaceAll("_", "-"));
        for (const n of OVERRIDES) expect(kept).not.toContain(n);
        expect(out.get("content-type")).toBe("application/json");
      }),
    );
  });

  it("drops every client x-forwarded-* and sets only the gateway's three", () => {
    const incoming = new Headers();
    for (const n of [
      "X-Forwarded-Prefix",
      "X-Forwarded-Uri",
      "X-Forwarded-Method",
      "x_forwarded_path",
      "X-Forwarded-Port",
    ]) {
      incoming.set(n, "/admin");
    }
    const out = engineRequestHeaders(incoming, CONTEXT);
    expect([...out.keys()].filter((n) => n.replaceAll("_", "-").startsWith("x-forwarded-")).sort()).toEqual([
      "x-forwarded-for",
      "x-forwarded-host",
      "x-forwarded-proto",
    ]);
  });

  it("never reach the engine, which sees the method and path the token names", async () => {
    const [h, key] = [gateway(), await createKey()];
    const headers = new Headers();
    for (const n of OVERRIDES) headers.set(n, n.includes("method") ? "DELETE" : "/v1/admin");
    const { res, engine } = await forward(h, key, "/v1/items", { method: "POST", headers, body: "{}" });
    expect(res.status).toBe(200);
    for (const n of OVERRIDES) expect(engine[0]!.headers.has(n), n).toBe(false);
    expect(engine[0]!.method).toBe("POST");
    const identity = await h.verifier()(engine[0]!);
    expect(identity.keyId).toBe(key.keyId);
  });
});

describe("a WebSocket upgrade", () => {
  it.each(["websocket", "WebSocket", "h2c, websocket", "websocket/13"])(
    "Upgrade: %s → 400 upgrade_not_supported, nothing forwarded",
    async (upgrade) => {
      const [h, key] = [gateway(), await createKey()];
      const sent = await forward(h, key, "/v1/stream", { headers: { upgrade, "sec-websocket-version": "13" } });
      expectEnvelope(sent, 400, "upgrade_not_supported");
      expect(sent.engine).toHaveLength(0);
    },
  );

  it("is refused only after authentication: without a key it is the standard 401", async () => {
    const h = gateway();
    const sent = await h.send(h.request("/v1/stream", { headers: { upgrade: "websocket" } }));
    expect(sent.res.status).toBe(401);
  });

  it("another Upgrade token is ignored (RFC 9110 §7.8) and the request forwarded without it", async () => {
    const [h, key] = [gateway(), await createKey()];
    const { res, engine } = await forward(h, key, "/v1/stream", { headers: { upgrade: "h2c" } });
    expect(res.status).toBe(200);
    expect(engine[0]!.headers.has("upgrade")).toBe(false);
  });
});

describe("the path length limit", () => {
  const pathOf = (bytes: number) => `/v1/${"a".repeat(bytes - 4)}`;

  it(`forwards a path of exactly ${PATH_MAX_BYTES} bytes`, async () => {
    const [h, key] = [gateway(), await createKey()];
    const { res, engine } = await forward(h, key, pathOf(PATH_MAX_BYTES));
    expect(res.status).toBe(200);
    expect(new URL(engine[0]!.url).pathname).toHaveLength(PATH_MAX_BYTES);
  });

  it("answers one byte more 414 uri_too_long, nothing forwarded", async () => {
    const [h, key] = [gateway(), await createKey()];
    const sent = await forward(h, key, pathOf(PATH_MAX_BYTES + 1));
    expectEnvelope(sent, 414, "uri_too_long");
    expect(JSON.parse(sent.body).error.message).toContain(String(PATH_MAX_BYTES));
    expect(sent.engine).toHaveLength(0);
  });

  it("counts the path as sent, percent-encoded: 700 × é is 1,400 bytes of UTF-8 but 4,200 as %C3%A9", async () => {
    const [h, key] = [gateway(), await createKey()];
    const sent = await forward(h, key, `/v1/${"é".repeat(700)}`);
    expectEnvelope(sent, 414, "uri_too_long");
  });

  it("does not count the query", async () => {
    const [h, key] = [gateway(), await createKey()];
    const { res } = await forward(h, key, `/v1/search?q=${"q".repeat(PATH_MAX_BYTES * 2)}`);
    expect(res.status).toBe(200);
  });

  it("applies only to an authenticated request: without a key it is the standard 401", async () => {
    const h = gateway();
    const sent = await h.send(h.request(pathOf(PATH_MAX_BYTES + 1)));
    expect(sent.res.status).toBe(401);
  });
});
