/**
 * Forwarding to the engine (SPEC §4) with the engine at the outbound boundary: the
 * injected engineFetch sees exactly the Request the runtime would send. Identity tokens
 * are checked claim by claim and verified with the shipped verifier (src/verify)
 * against the gateway's own /.well-known/jwks.json. Client headers that imitate the
 * gateway's own (x-nixflex-*, X-Request-Id, X-Forwarded-*) are pinned in spoofing.test.ts.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { IdentityError } from "../../src/verify/index.ts";
import {
  createKey,
  gateway,
  jwtParts,
  PUBLIC_ORIGIN,
  randomBytes,
  recordingEngine,
  sha256Hex,
  UUID,
  type TestEnv,
  type TestKey,
} from "./harness.ts";

const ENGINE_ORIGIN = "http://127.0.0.1:8788"; // wrangler.toml [vars] ENGINE_URL
const firstKid = (keys: string) => (JSON.parse(keys) as { keys: Array<{ kid: string }> }).keys[0]!.kid;

/** Sends one authenticated request and returns what the engine received. */
async function forwardOnce(
  init: RequestInit & { path?: string; env?: TestEnv; key?: TestKey; now?: () => number } = {},
) {
  const key = init.key ?? (await createKey());
  const h = gateway({ env: init.env, now: init.now });
  const headers = new Headers(init.headers);
  headers.set("authorization", key.authorization);
  const sent = await h.send(h.request(init.path ?? "/v1/agents", { ...init, headers }));
  expect(sent.res.status).toBe(200);
  expect(h.engine.calls).toHaveLength(1);
  const seen = h.engine.calls[0]!;
  return { ...sent, h, key, seen, token: seen.headers.get("x-nixflex-identity")! };
}

describe("request headers the engine receives", () => {
  it("never includes the Authorization header", async () => {
    const { seen } = await forwardOnce();
    expect(seen.headers.has("authorization")).toBe(false);
    for (const [, value] of seen.headers) expect(value).not.toMatch(/nxfs_/);
  });

  it("describes a non-default public URL in X-Forwarded-Host and X-Forwarded-Proto", async () => {
    const key = await createKey();
    const h = gateway();
    const request = new Request("http://gateway.test:8443/v1/agents", {
      headers: { authorization: key.authorization, "cf-connecting-ip": "2001:db8::1" },
    });
    expect((await h.send(request)).res.status).toBe(200);
    const seen = h.engine.calls[0]!;
    expect(seen.headers.get("x-forwarded-host")).toBe("gateway.test:8443");
    expect(seen.headers.get("x-forwarded-proto")).toBe("http");
    expect(seen.headers.get("x-forwarded-for")).toBe("2001:db8::1");
  });

  it("drops hop-by-hop headers and every header the Connection header lists", async () => {
    const headers = new Headers({
      connection: "X-Drop-Me, x-also-dropped",
      "x-drop-me": "1",
      "x-also-dropped": "2",
      "keep-alive": "timeout=5",
      te: "trailers",
      trailer: "x-checksum",
      upgrade: "h2c", // a WebSocket upgrade is refused instead (hardening.test.ts)
      "proxy-authorization": "Basic dXNlcjpwYXNz",
      "proxy-connection": "keep-alive",
      "x-kept": "yes",
      accept: "application/json",
      "user-agent": "forward-test/1.0",
    });
    const { seen } = await forwardOnce({ headers });
    for (const name of [
      "connection",
      "x-drop-me",
      "x-also-dropped",
      "keep-alive",
      "te",
      "trailer",
      "upgrade",
      "proxy-authorization",
      "proxy-connection",
      "transfer-encoding",
    ]) {
      expect(seen.headers.has(name), name).toBe(false);
    }
    expect(seen.headers.get("x-kept")).toBe("yes");
    expect(seen.headers.get("accept")).toBe("application/json");
    expect(seen.headers.get("user-agent")).toBe("forward-test/1.0");
  });

  it("forwards the method, path and query string unchanged to ENGINE_URL", async () => {
    const search = "?b=2&a=1&a=3&empty=&enc=%20%2F%3F&utf=%C3%A9";
    const { seen } = await forwardOnce({ method: "PATCH", path: `/v1/agents/agt_1/calls${search}`, body: "{}" });
    expect(seen.method).toBe("PATCH");
    expect(seen.url).toBe(`${ENGINE_ORIGIN}/v1/agents/agt_1/calls${search}`);
  });

  it.each(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])(
    "forwards %s with that method",
    async (method) => {
      const body = method === "GET" || method === "HEAD" ? undefined : "payload";
      const { seen } = await forwardOnce({ method, body });
      expect(seen.method).toBe(method);
      if (body !== undefined) expect(await seen.text()).toBe(body);
    },
  );
});

describe("the identity token", () => {
  it("verifies with the shipped verifier against the gateway's own JWKS", async () => {
    const { h, key, seen, res } = await forwardOnce();
    const identity = await h.verifier()(seen);
    expect(identity).toEqual({
      accountId: key.accountId,
      keyId: key.keyId,
      requestId: res.headers.get("x-request-id"),
    });
  });

  it("carries typ nixflex-identity+jwt, the first configured kid and EdDSA by default", async () => {
    const { token } = await forwardOnce();
    expect(jwtParts(token).header).toEqual({
      alg: "EdDSA",
      kid: firstKid(env.IDENTITY_SIGNING_KEYS),
      typ: "nixflex-identity+jwt",
    });
  });

  it("claims the account as sub, the key_id, the method as htm and the path without query as htu", async () => {
    const { token, key } = await forwardOnce({ method: "POST", path: "/v1/calls/start?dry_run=1&x=%2F", body: "{}" });
    const { payload } = jwtParts(token);
    expect(payload.sub).toBe(key.accountId);
    expect(payload.key_id).toBe(key.keyId);
    expect(payload.htm).toBe("POST");
    expect(payload.htu).toBe("/v1/calls/start");
  });

  it("uses the default issuer and audience when none are configured", async () => {
    const bindings = { ...env, IDENTITY_ISSUER: undefined, IDENTITY_AUDIENCE: undefined } as unknown as TestEnv;
    const { token, h, seen } = await forwardOnce({ env: bindings });
    const { payload } = jwtParts(token);
    expect(payload.iss).toBe("https://api.nixflex.com");
    expect(payload.aud).toBe("nixflex-engine");
    await expect(h.verifier()(seen)).resolves.toBeDefined();
  });

  it("uses IDENTITY_ISSUER and IDENTITY_AUDIENCE when configured", async () => {
    const bindings = { ...env, IDENTITY_ISSUER: "https://edge.example.test", IDENTITY_AUDIENCE: "engine-eu" };
    const { token, h, seen } = await forwardOnce({ env: bindings });
    const { payload } = jwtParts(token);
    expect(payload.iss).toBe("https://edge.example.test");
    expect(payload.aud).toBe("engine-eu");
    await expect(
      h.verifier({ issuer: "https://edge.example.test", audience: "engine-eu" })(seen),
    ).resolves.toBeDefined();
    await expect(h.verifier()(seen)).rejects.toMatchObject({ code: "ERR_IDENTITY_CLAIM" });
  });

  it("sets X-Request-Id, the JWT jti and the response X-Request-Id to the same fresh id", async () => {
    const { token, seen, res } = await forwardOnce({ headers: { "x-request-id": "client-id" } });
    const id = res.headers.get("x-request-id");
    expect(id).toMatch(UUID);
    expect(jwtParts(token).payload.jti).toBe(id);
    expect(seen.headers.get("x-request-id")).toBe(id);
  });

  it("never issues the same jti twice", async () => {
    const key = await createKey();
    const h = gateway();
    const jtis = new Set<unknown>();
    for (let i = 0; i < 25; i++) {
      await h.send(h.request("/v1/agents", { authorization: key.authorization }));
      jtis.add(jwtParts(h.engine.calls[i]!.headers.get("x-nixflex-identity")!).payload.jti);
    }
    expect(jtis.size).toBe(25);
  });

  it("lives at most 60 seconds from an iat taken from the gateway's clock", async () => {
    const now = Date.parse("2026-11-26T12:00:00.750Z");
    const { token } = await forwardOnce({ now: () => now });
    const { payload } = jwtParts(token);
    expect(payload.iat).toBe(Math.floor(now / 1000));
    expect(payload.exp! - payload.iat!).toBeGreaterThan(0);
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
  });

  it("is signed with ES256 when the first configured key is P-256, and still verifies", async () => {
    const bindings = { ...env, IDENTITY_SIGNING_KEYS: env.TEST_ES256_SIGNING_KEYS };
    const { token, h, seen, key } = await forwardOnce({ env: bindings });
    expect(jwtParts(token).header).toEqual({
      alg: "ES256",
      kid: firstKid(env.TEST_ES256_SIGNING_KEYS),
      typ: "nixflex-identity+jwt",
    });
    await expect(h.verifier()(seen)).resolves.toMatchObject({ accountId: key.accountId, keyId: key.keyId });
  });

  it("is rejected by a verifier that only knows another gateway's keys", async () => {
    const { seen } = await forwardOnce({ env: { ...env, IDENTITY_SIGNING_KEYS: env.TEST_ES256_SIGNING_KEYS } });
    // The default-keys gateway publishes no test-ec-1 key: the token must not verify there.
    const error = await gateway()
      .verifier()(seen)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentityError);
    expect((error as IdentityError).code).toBe("ERR_IDENTITY_INVALID");
  });
});

describe("bodies", () => {
  const MIB = 1024 * 1024;

  it("streams an 8 MiB request body to the engine intact, without buffering it whole", async () => {
    const key = await createKey();
    const chunks = Array.from({ length: 128 }, () => randomBytes(64 * 1024));
    let engineHasFirstChunk!: () => void;
    const firstChunkArrived = new Promise<void>((resolve) => {
      engineHasFirstChunk = resolve;
    });
    // The client sends its second chunk only once the engine holds the first: a gateway
    // that buffered the whole body would wait forever here.
    let next = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (next === 1) await firstChunkArrived;
        if (next === chunks.length) return controller.close();
        controller.enqueue(chunks[next++]!);
      },
    });
    let reads = 0;
    let received = 0;
    const digest = new crypto.DigestStream("SHA-256");
    const writer = digest.getWriter();
    const engine = recordingEngine(async (request) => {
      const reader = request.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        reads++;
        received += value.byteLength;
        await writer.write(value);
        engineHasFirstChunk();
      }
      await writer.close();
      return new Response("stored", { status: 201 });
    });
    const h = gateway({ engine });
    const request = h.request("/v1/uploads", {
      method: "POST",
      body,
      authorization: key.authorization,
      headers: { "content-type": "application/octet-stream" },
      duplex: "half",
    } as RequestInit);
    const { res, body: text } = await h.send(request);
    expect(res.status).toBe(201);
    expect(text).toBe("stored");
    expect(received).toBe(8 * MIB);
    expect(reads).toBeGreaterThan(1);
    const sent = new Uint8Array(8 * MIB);
    for (const [i, chunk] of chunks.entries()) sent.set(chunk, i * chunk.byteLength);
    const engineHash = Array.from(new Uint8Array(await digest.digest), (b) => b.toString(16).padStart(2, "0")).join("");
    expect(engineHash).toBe(await sha256Hex(sent));
  });

  it("streams an 8 MiB response body back to the client intact, without buffering it whole", async () => {
    const key = await createKey();
    const chunks = Array.from({ length: 128 }, () => randomBytes(64 * 1024));
    let clientHasFirstChunk!: () => void;
    const firstChunkRead = new Promise<void>((resolve) => {
      clientHasFirstChunk = resolve;
    });
    let next = 0;
    const engine = recordingEngine(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            async pull(controller) {
              if (next === 1) await firstChunkRead;
              if (next === chunks.length) return controller.close();
              controller.enqueue(chunks[next++]!);
            },
          }),
          { headers: { "content-type": "application/octet-stream" } },
        ),
    );
    const h = gateway({ engine });
    const ctx = createExecutionContext();
    const res = await h.app.fetch(h.request("/v1/recordings/1", { authorization: key.authorization }), env, ctx);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      clientHasFirstChunk();
    }
    await waitOnExecutionContext(ctx);
    const received = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let offset = 0;
    for (const p of parts) {
      received.set(p, offset);
      offset += p.byteLength;
    }
    const sent = new Uint8Array(8 * MIB);
    for (const [i, chunk] of chunks.entries()) sent.set(chunk, i * chunk.byteLength);
    expect(received.byteLength).toBe(8 * MIB);
    expect(await sha256Hex(received)).toBe(await sha256Hex(sent));
  });

  it("returns a multi-MB response with a known length intact and keeps its Content-Length", async () => {
    const key = await createKey();
    const payload = randomBytes(3 * MIB + 17);
    const engine = recordingEngine(
      () =>
        new Response(payload, {
          headers: { "content-length": String(payload.byteLength), "content-type": "application/octet-stream" },
        }),
    );
    const h = gateway({ engine });
    const ctx = createExecutionContext();
    const res = await h.app.fetch(h.request("/v1/exports/1", { authorization: key.authorization }), env, ctx);
    const received = new Uint8Array(await res.arrayBuffer());
    await waitOnExecutionContext(ctx);
    expect(res.headers.get("content-length")).toBe(String(payload.byteLength));
    expect(await sha256Hex(received)).toBe(await sha256Hex(payload));
  });
});

describe("the engine's answer", () => {
  it("passes status, headers and body through, with the gateway's X-Request-Id", async () => {
    const engine = recordingEngine(
      () =>
        new Response('{"error":"teapot"}', {
          status: 418,
          statusText: "I'm a teapot",
          headers: {
            "content-type": "application/problem+json",
            "x-engine-version": "7.1",
            "cache-control": "private, max-age=5",
            "set-cookie": "s=1; Secure; HttpOnly",
            "x-request-id": "engine-made-this-up",
          },
        }),
    );
    const key = await createKey();
    const h = gateway({ engine });
    const { res, body } = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expect(res.status).toBe(418);
    expect(res.statusText).toBe("I'm a teapot");
    expect(body).toBe('{"error":"teapot"}');
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("x-engine-version")).toBe("7.1");
    expect(res.headers.get("cache-control")).toBe("private, max-age=5");
    expect(res.headers.get("set-cookie")).toBe("s=1; Secure; HttpOnly");
    expect(res.headers.get("x-request-id")).toBe(h.engine.calls[0]!.headers.get("x-request-id"));
  });

  it("passes an engine 500 through as the engine's own answer", async () => {
    const engine = recordingEngine(() => new Response("engine broke", { status: 500 }));
    const key = await createKey();
    const h = gateway({ engine });
    const { res, body } = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    expect(res.status).toBe(500);
    expect(body).toBe("engine broke");
  });

  it("passes a 204 without a body", async () => {
    const engine = recordingEngine(() => new Response(null, { status: 204 }));
    const key = await createKey();
    const h = gateway({ engine });
    const { res, body } = await h.send(
      h.request("/v1/agents/1", { method: "DELETE", authorization: key.authorization }),
    );
    expect(res.status).toBe(204);
    expect(body).toBe("");
  });

  it("drops hop-by-hop headers and the headers its Connection header lists", async () => {
    const engine = recordingEngine(
      () =>
        new Response("ok", {
          headers: {
            connection: "x-internal-route",
            "x-internal-route": "pod-7",
            "keep-alive": "timeout=5",
            "proxy-authenticate": "Basic",
            trailer: "x-sum",
            "x-public": "kept",
          },
        }),
    );
    const key = await createKey();
    const h = gateway({ engine });
    const { res } = await h.send(h.request("/v1/agents", { authorization: key.authorization }));
    for (const name of ["connection", "x-internal-route", "keep-alive", "proxy-authenticate", "trailer"]) {
      expect(res.headers.has(name), name).toBe(false);
    }
    expect(res.headers.get("x-public")).toBe("kept");
  });

  it.each([
    [
      "Location on the engine origin",
      "location",
      `${ENGINE_ORIGIN}/v1/agents/agt_9?x=1#top`,
      `${PUBLIC_ORIGIN}/v1/agents/agt_9?x=1#top`,
    ],
    ["Location on the engine host, another port", "location", "http://127.0.0.1:9999/v1/a", `${PUBLIC_ORIGIN}/v1/a`],
    ["Location on the engine host, https", "location", "https://127.0.0.1/v1/b", `${PUBLIC_ORIGIN}/v1/b`],
    [
      "Content-Location on the engine origin",
      "content-location",
      `${ENGINE_ORIGIN}/v1/agents/agt_9`,
      `${PUBLIC_ORIGIN}/v1/agents/agt_9`,
    ],
    ["Location on another host", "location", "https://cdn.nixflex.com/files/1", "https://cdn.nixflex.com/files/1"],
    // Not the engine's host, but its name is in it: dropped, as any other header naming it is.
    ["Location on a look-alike host", "location", "http://127.0.0.1.evil.example:8788/x", null],
    ["a relative Location", "location", "/v1/agents/agt_9", "/v1/agents/agt_9"],
  ])("rewrites or keeps %s", async (_name, header, value, expected) => {
    const engine = recordingEngine(() => new Response(null, { status: 303, headers: { [header]: value } }));
    const key = await createKey();
    const h = gateway({ engine });
    const { res } = await h.send(
      h.request("/v1/agents", { method: "POST", body: "{}", authorization: key.authorization }),
    );
    expect(res.status).toBe(303);
    expect(res.headers.get(header)).toBe(expected);
  });
});
