/**
 * The two request paths of src/app.ts answer alike. Forwarded requests skip the Hono app
 * for speed (docs/BENCHMARKS.md); this file sends the same requests to a gateway built as
 * in production and to one that sends everything through the Hono app
 * (`forwardThroughRouter`), and compares everything observable: status, body, response
 * headers, what the engine received (method, URL, headers, body, the identity token's
 * claims) and the access log line. Request ids and token ids differ per request by
 * design and are compared by shape.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ownedByRouter } from "../../src/routes/router.ts";
import {
  createKey,
  gateway,
  jwtParts,
  PUBLIC_ORIGIN,
  recordingEngine,
  type TestEnv,
  type TestKey,
  uniqueAddress,
  UUID,
} from "./harness.ts";
import { env } from "cloudflare:test";

type Answer = (request: Request) => Response | Promise<Response>;

/** What one request looked like from every side, with per-request ids replaced by their shape. */
interface Observed {
  status: number;
  body: string;
  headers: [string, string][];
  engine: { method: string; url: string; headers: [string, string][]; body: string; claims: unknown } | null;
  log: Record<string, unknown>[];
}

const lines = () => (globalThis as { __nixflexLogLines?: string[] }).__nixflexLogLines ?? [];

const ISO_TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g;

/** Replaces what differs per request by design: the request id and (last_used_at) times. */
function withoutIds(value: string, requestId: string | null): string {
  const timeless = value.replace(ISO_TIME, "<time>");
  return requestId === null ? timeless : timeless.replaceAll(requestId, "<request-id>");
}

/** Sends `make()` to `g` and records what the client, the engine and the log saw. */
async function observe(g: ReturnType<typeof gateway>, make: () => Request): Promise<Observed> {
  const before = lines().length;
  const calls = g.engine.calls.length;
  const { res, body } = await g.send(make());
  const requestId = res.headers.get("x-request-id");
  expect(requestId).toMatch(UUID);
  const call = g.engine.calls[calls] ?? null;
  let engine: Observed["engine"] = null;
  if (call !== null) {
    const identity = call.headers.get("x-nixflex-identity");
    const claims = identity === null ? null : { ...jwtParts(identity).payload, iat: "<iat>", exp: "<exp>" };
    engine = {
      method: call.method,
      url: call.url,
      headers: [...call.headers].map(([name, value]) =>
        name === "x-nixflex-identity" ? [name, "<jwt>"] : [name, withoutIds(value, requestId)],
      ),
      body: call.bodyUsed ? "<used>" : await call.text(),
      claims: claims === null ? null : JSON.parse(withoutIds(JSON.stringify(claims), requestId)),
    };
  }
  const log = lines()
    .slice(before)
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(withoutIds(line, requestId)) as Record<string, unknown>)
    .map(({ duration_ms: _d, ...rest }) => rest);
  return {
    status: res.status,
    body: withoutIds(body, requestId),
    headers: [...res.headers].map(([name, value]) => [name, withoutIds(value, requestId)]),
    engine,
    log,
  };
}

/** A production gateway and a router-only one, each with its own caches and an engine answering alike. */
function pair(answer?: Answer, bindings: TestEnv = env) {
  return {
    direct: gateway({ env: bindings, engine: recordingEngine(answer) }),
    routed: gateway({ env: bindings, engine: recordingEngine(answer), forwardThroughRouter: true }),
  };
}

async function expectAlike(gateways: ReturnType<typeof pair>, make: () => Request): Promise<Observed> {
  const direct = await observe(gateways.direct, make);
  const routed = await observe(gateways.routed, make);
  expect(direct).toEqual(routed);
  return direct;
}

function request(path: string, init: RequestInit & { authorization?: string; address?: string } = {}) {
  return () => {
    const headers = new Headers(init.headers);
    headers.set("cf-connecting-ip", init.address ?? "192.0.2.10");
    if (init.authorization !== undefined) headers.set("authorization", init.authorization);
    return new Request(PUBLIC_ORIGIN + path, { method: init.method, headers, body: init.body });
  };
}

let key: TestKey;
beforeAll(async () => {
  key = await createKey();
});

describe("the dispatch: which paths the Hono app owns", () => {
  it.each([
    ["/healthz", true],
    ["/.well-known/jwks.json", true],
    ["/v1/keys", true],
    ["/v1/keys/", true],
    ["/v1/keys/nxf_0/roll", true],
    ["/healthz/", true],
    ["/.well-known/jwks.json/", true],
    ["/healthz//", false],
    ["/HEALTHZ", false],
    ["/v1/keysx", false],
    ["/v1/key", false],
    ["/v2/keys", false],
    ["/", false],
    ["//v1/keys", false],
  ])("%s → router %s", (path, owned) => {
    expect(ownedByRouter(path)).toBe(owned);
  });
});

describe("forwarded requests answer the same on both paths", () => {
  const paths = [
    "/",
    "/v1/agents",
    "/v1/agents/a1?limit=5&x=%20y",
    "/healthz/",
    "/HEALTHZ",
    "/v1/keysx",
    "/v1/%6Beys", // Hono decodes this to /v1/keys: the router must see it
    "/v1/%6beys/nxf_00",
    "/%2e%2e/v1/keys",
    "/.well-known/jwks.json/x",
    "/v1/a%2Fb",
    "/v1/%ZZ",
    "/v1/%E2%82%AC",
    "/v1/x;y=1",
  ];
  const methods = ["GET", "HEAD", "POST", "DELETE", "OPTIONS"];

  it.each(paths.flatMap((path) => methods.map((method) => [method, path])))(
    "%s %s with a valid key",
    async (method, path) => {
      const g = pair();
      const body = method === "POST" ? '{"hello":"engine"}' : undefined;
      const seen = await expectAlike(g, request(path, { method, authorization: key.authorization, body }));
      expect(seen.status).not.toBe(500);
    },
  );

  it.each(paths.map((path) => [path]))("GET %s without a key, and with a wrong secret", async (path) => {
    const g = pair();
    // `/healthz/` is the public health check (the router tolerates one trailing slash).
    const status = path === "/healthz/" ? 200 : 401;
    expect((await expectAlike(g, request(path))).status).toBe(status);
    const wrong = `${key.keyId}:${key.secret.slice(0, -1)}${key.secret.endsWith("A") ? "B" : "A"}`;
    expect((await expectAlike(g, request(path, { authorization: `Bearer ${wrong}` }))).status).toBe(status);
  });

  it("engine failures, redirects and headers naming the engine", async () => {
    // Like `fetch`, the engine answers HEAD without a body.
    const text = (request: Request, body: string) => (request.method === "HEAD" ? null : body);
    const answers: [Answer, number][] = [
      [() => Promise.reject(new TypeError("connection refused")), 502],
      [
        (r) =>
          new Response(text(r, "moved"), { status: 302, headers: { location: "http://127.0.0.1:9/v1/elsewhere" } }),
        302,
      ],
      [
        () =>
          new Response(null, {
            status: 204,
            headers: { connection: "x-drop", "x-drop": "1", link: "<http://127.0.0.1:9/a>" },
          }),
        204,
      ],
      [(r) => new Response(text(r, "boom"), { status: 503, headers: { "retry-after": "5" } }), 503],
    ];
    for (const [answer, status] of answers) {
      const g = pair(answer, { ...env, ENGINE_URL: "http://127.0.0.1:9" });
      for (const method of ["GET", "HEAD"]) {
        const seen = await expectAlike(g, request("/v1/agents", { method, authorization: key.authorization }));
        expect(seen.status).toBe(status);
      }
    }
  });

  it("a bad configuration and a failing key store", async () => {
    const badConfig = pair(undefined, { ...env, ENGINE_URL: "ftp://engine" });
    expect((await expectAlike(badConfig, request("/v1/agents", { authorization: key.authorization }))).status).toBe(
      500,
    );
    const failingKv = {
      get: () => Promise.reject(new Error("KV down")),
    } as unknown as KVNamespace;
    const down = pair(undefined, { ...env, API_KEYS: failingKv });
    expect((await expectAlike(down, request("/v1/agents", { authorization: key.authorization }))).status).toBe(503);
  });

  it("a client past the failure limit", async () => {
    const g = pair();
    const address = uniqueAddress();
    const statuses: number[] = [];
    for (let i = 0; i < 62; i++) {
      statuses.push((await expectAlike(g, request("/v1/agents", { address, authorization: "Bearer nope" }))).status);
    }
    // Both paths count against the same binding, so the limit (60) is reached after 30 pairs.
    expect(statuses.slice(0, 30).every((status) => status === 401)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
  });

  it("generated paths and methods (property)", async () => {
    const segment = fc.oneof(
      fc.constantFrom("v1", "keys", "healthz", ".well-known", "jwks.json", "%6Beys", "%2F", "%25", "%", "", "..", "é"),
      fc.string({ unit: fc.constantFrom(..."aK%2F5e/?#;"), maxLength: 8 }),
    );
    const g = pair();
    await fc.assert(
      fc.asyncProperty(
        fc.array(segment, { maxLength: 4 }),
        fc.constantFrom("GET", "HEAD", "POST", "PATCH"),
        fc.boolean(),
        async (segments, method, valid) => {
          const path = `/${segments.join("/")}`;
          let url: URL;
          try {
            url = new URL(PUBLIC_ORIGIN + path);
          } catch {
            return;
          }
          const auth = valid ? key.authorization : "Bearer nxf_x:nxfs_y";
          // A fresh address each: 60 failures from one would turn the 401s into 429s.
          const address = uniqueAddress();
          await expectAlike(g, request(url.pathname + url.search, { method, authorization: auth, address }));
        },
      ),
      { numRuns: 150 },
    );
  });
});
