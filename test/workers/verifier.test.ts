/**
 * The engine-side verifier (SPEC §9, src/verify): accepts what the gateway signs for
 * this exact method and path, and rejects everything else with a stable IdentityError
 * code. Real tokens come from real forwards; forged ones are signed here with jose.
 */
import { env } from "cloudflare:test";
import { Hono } from "hono";
import { base64url, createLocalJWKSet, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  createIdentityVerifier,
  IdentityError,
  identityMiddleware,
  verifyIdentity,
  type IdentityErrorCode,
  type IdentityVariables,
} from "../../src/verify/index.ts";
import { createKey, gateway, JWKS_URL, jwtParts, type Gateway, type TestKey } from "./harness.ts";

const ENGINE_ORIGIN = "http://127.0.0.1:8788";
const TYP = "nixflex-identity+jwt";
const signingKeys = () => (JSON.parse(env.IDENTITY_SIGNING_KEYS) as { keys: Array<JWK & { kid: string }> }).keys;

let h: Gateway;
let key: TestKey;

beforeAll(async () => {
  h = gateway();
  key = await createKey();
});

/** Forwards one request and returns what the engine received (its identity header included). */
async function captured(method = "POST", path = "/v1/calls"): Promise<Request> {
  const before = h.engine.calls.length;
  await h.send(
    h.request(path, {
      method,
      body: method === "GET" || method === "HEAD" ? undefined : "{}",
      authorization: key.authorization,
    }),
  );
  return h.engine.calls[before]!;
}

/** The request the engine would see, with `token` as its identity header. */
function engineRequest(token: string | null, method = "POST", path = "/v1/calls"): Request {
  const headers = new Headers();
  if (token !== null) headers.set("x-nixflex-identity", token);
  return new Request(ENGINE_ORIGIN + path, { method, headers });
}

/** Claims the gateway would sign for POST /v1/calls now. */
function validClaims(overrides: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: "https://api.nixflex.com",
    aud: "nixflex-engine",
    sub: key.accountId,
    key_id: key.keyId,
    iat: now,
    exp: now + 60,
    jti: crypto.randomUUID(),
    htm: "POST",
    htu: "/v1/calls",
    ...overrides,
  };
}

/** Signs `claims` with a configured private key (index into the binding) or any CryptoKey. */
async function sign(
  claims: JWTPayload,
  options: { keyIndex?: number; key?: CryptoKey; header?: Record<string, unknown> } = {},
): Promise<string> {
  const jwk = signingKeys()[options.keyIndex ?? 0]!;
  const cryptoKey = options.key ?? ((await importJWK(jwk, "EdDSA")) as CryptoKey);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "EdDSA", kid: jwk.kid, typ: TYP, ...options.header })
    .sign(cryptoKey);
}

async function rejection(promise: Promise<unknown>): Promise<IdentityErrorCode> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IdentityError);
  return (error as IdentityError).code;
}

describe("the plain Request form", () => {
  it("accepts a fresh token for the request it was issued for", async () => {
    const seen = await captured();
    const identity = await h.verifier()(seen);
    expect(identity).toEqual({
      accountId: key.accountId,
      keyId: key.keyId,
      requestId: seen.headers.get("x-request-id"),
    });
  });

  it("rejects a request without the identity header as ERR_IDENTITY_MISSING", async () => {
    expect(await rejection(h.verifier()(engineRequest(null)))).toBe("ERR_IDENTITY_MISSING");
  });

  it("rejects an empty identity header as ERR_IDENTITY_MISSING", async () => {
    expect(await rejection(h.verifier()(engineRequest("")))).toBe("ERR_IDENTITY_MISSING");
  });

  it("rejects two identity headers (comma-joined) as ERR_IDENTITY_MISSING", async () => {
    const token = (await captured()).headers.get("x-nixflex-identity")!;
    const request = engineRequest(token);
    request.headers.append("x-nixflex-identity", token);
    expect(await rejection(h.verifier()(request))).toBe("ERR_IDENTITY_MISSING");
  });

  it("rejects a token that is not a JWT as ERR_IDENTITY_INVALID", async () => {
    expect(await rejection(h.verifier()(engineRequest("not-a-jwt")))).toBe("ERR_IDENTITY_INVALID");
  });

  it("rejects a token signed by a key not in the JWKS, even under a published kid, as ERR_IDENTITY_INVALID", async () => {
    const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const forged = await sign(validClaims(), { key: privateKey });
    expect(await rejection(h.verifier()(engineRequest(forged)))).toBe("ERR_IDENTITY_INVALID");
  });

  it("rejects a token signed by an unknown kid as ERR_IDENTITY_INVALID", async () => {
    const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const forged = await sign(validClaims(), { key: privateKey, header: { kid: "attacker-1" } });
    expect(await rejection(h.verifier()(engineRequest(forged)))).toBe("ERR_IDENTITY_INVALID");
  });

  it("rejects a genuine token whose payload was tampered with as ERR_IDENTITY_INVALID", async () => {
    const seen = await captured();
    const [header, , signature] = seen.headers.get("x-nixflex-identity")!.split(".");
    const claims = { ...jwtParts(seen.headers.get("x-nixflex-identity")!).payload, sub: "acct_victim" };
    const tampered = `${header}.${base64url.encode(JSON.stringify(claims))}.${signature}`;
    expect(await rejection(h.verifier()(engineRequest(tampered)))).toBe("ERR_IDENTITY_INVALID");
  });

  it("rejects a token for another audience as ERR_IDENTITY_CLAIM", async () => {
    const seen = await captured();
    expect(await rejection(h.verifier({ audience: "billing-engine" })(seen))).toBe("ERR_IDENTITY_CLAIM");
  });

  it("rejects a token from another issuer as ERR_IDENTITY_CLAIM", async () => {
    const seen = await captured();
    expect(await rejection(h.verifier({ issuer: "https://api.staging.nixflex.com" })(seen))).toBe("ERR_IDENTITY_CLAIM");
  });

  // typ is reported with the claim checks (src/verify/errors.ts, docs/engine-integration.md).
  it("rejects a correctly signed token with another typ as ERR_IDENTITY_CLAIM", async () => {
    const token = await sign(validClaims(), { header: { typ: "JWT" } });
    expect(await rejection(h.verifier()(engineRequest(token)))).toBe("ERR_IDENTITY_CLAIM");
  });

  it("rejects a correctly signed token without typ as ERR_IDENTITY_CLAIM", async () => {
    const jwk = signingKeys()[0]!;
    const token = await new SignJWT(validClaims())
      .setProtectedHeader({ alg: "EdDSA", kid: jwk.kid })
      .sign((await importJWK(jwk, "EdDSA")) as CryptoKey);
    expect(await rejection(h.verifier()(engineRequest(token)))).toBe("ERR_IDENTITY_CLAIM");
  });

  it("rejects an unsigned token (alg none) as ERR_IDENTITY_INVALID", async () => {
    const header = base64url.encode(JSON.stringify({ alg: "none", typ: TYP, kid: signingKeys()[0]!.kid }));
    const token = `${header}.${base64url.encode(JSON.stringify(validClaims()))}.`;
    expect(await rejection(h.verifier()(engineRequest(token)))).toBe("ERR_IDENTITY_INVALID");
  });

  it("rejects an HS256 token keyed with the published public key (algorithm confusion) as ERR_IDENTITY_INVALID", async () => {
    const x = signingKeys()[0]!.x!;
    const token = await new SignJWT(validClaims())
      .setProtectedHeader({ alg: "HS256", kid: signingKeys()[0]!.kid, typ: TYP })
      .sign(new TextEncoder().encode(x));
    expect(await rejection(h.verifier()(engineRequest(token)))).toBe("ERR_IDENTITY_INVALID");
  });

  it("rejects an expired token (issued by a gateway whose clock is 5 minutes behind) as ERR_IDENTITY_EXPIRED", async () => {
    const late = gateway({ now: () => Date.now() - 5 * 60_000 });
    await late.send(late.request("/v1/calls", { method: "POST", body: "{}", authorization: key.authorization }));
    const seen = late.engine.calls[0]!;
    expect(jwtParts(seen.headers.get("x-nixflex-identity")!).payload.exp).toBeLessThan(Date.now() / 1000);
    expect(await rejection(late.verifier()(seen))).toBe("ERR_IDENTITY_EXPIRED");
  });

  it("rejects a correctly signed token that lives longer than 60 s as ERR_IDENTITY_CLAIM", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await sign(validClaims({ iat: now, exp: now + 3600 }));
    expect(await rejection(h.verifier()(engineRequest(token)))).toBe("ERR_IDENTITY_CLAIM");
  });

  it.each(["sub", "key_id", "jti", "htm", "htu", "iat", "exp"])(
    "rejects a correctly signed token without %s",
    async (claim) => {
      const claims = validClaims();
      delete claims[claim];
      const code = await rejection(h.verifier()(engineRequest(await sign(claims))));
      expect(["ERR_IDENTITY_CLAIM", "ERR_IDENTITY_INVALID"]).toContain(code);
    },
  );

  it("rejects a captured token replayed with another method as ERR_IDENTITY_MISMATCH", async () => {
    const token = (await captured("POST", "/v1/calls")).headers.get("x-nixflex-identity")!;
    expect(await rejection(h.verifier()(engineRequest(token, "DELETE", "/v1/calls")))).toBe("ERR_IDENTITY_MISMATCH");
  });

  it("rejects a captured token replayed on another path as ERR_IDENTITY_MISMATCH", async () => {
    const token = (await captured("POST", "/v1/calls")).headers.get("x-nixflex-identity")!;
    expect(await rejection(h.verifier()(engineRequest(token, "POST", "/v1/keys")))).toBe("ERR_IDENTITY_MISMATCH");
    expect(await rejection(h.verifier()(engineRequest(token, "POST", "/v1/calls/")))).toBe("ERR_IDENTITY_MISMATCH");
  });

  it("binds the path but not the query string (htu has no query, SPEC §4)", async () => {
    const token = (await captured("GET", "/v1/agents?limit=1")).headers.get("x-nixflex-identity")!;
    await expect(h.verifier()(engineRequest(token, "GET", "/v1/agents?limit=100"))).resolves.toMatchObject({
      keyId: key.keyId,
    });
  });

  it("accepts a token signed by the second published key (signing-key rotation)", async () => {
    const token = await sign(validClaims(), {
      keyIndex: 1,
      key: (await importJWK(signingKeys()[1]!, "EdDSA")) as CryptoKey,
    });
    await expect(h.verifier()(engineRequest(token))).resolves.toMatchObject({ accountId: key.accountId });
  });

  it("accepts a token against a local key set (keys instead of jwksUrl)", async () => {
    const jwks = JSON.parse((await h.send(h.request("/.well-known/jwks.json"))).body);
    const verify = createIdentityVerifier({ keys: createLocalJWKSet(jwks) });
    await expect(verify(await captured())).resolves.toMatchObject({ keyId: key.keyId });
  });

  it("reports an unreachable JWKS as ERR_IDENTITY_KEYS_UNAVAILABLE", async () => {
    const verify = createIdentityVerifier({
      jwksUrl: JWKS_URL,
      fetch: () => Promise.reject(new TypeError("connection refused")),
    });
    expect(await rejection(verify(await captured()))).toBe("ERR_IDENTITY_KEYS_UNAVAILABLE");
  });

  it("works through verifyIdentity, which keeps one verifier per JWKS URL", async () => {
    const options = {
      jwksUrl: `${JWKS_URL}?instance=${crypto.randomUUID()}`,
      fetch: (url: string | URL | Request, init?: RequestInit) =>
        h.app.fetch(new Request(url as string, init), env, {
          waitUntil() {},
          passThroughOnException() {},
          props: {},
        }) as Promise<Response>,
    };
    await expect(verifyIdentity(await captured(), options)).resolves.toMatchObject({ accountId: key.accountId });
    expect(await rejection(verifyIdentity(engineRequest(null), options))).toBe("ERR_IDENTITY_MISSING");
  });
});

describe("the Hono middleware form", () => {
  function engineApp() {
    const app = new Hono<{ Variables: IdentityVariables }>();
    app.use(
      identityMiddleware({
        jwksUrl: JWKS_URL,
        fetch: (url, init) =>
          h.app.fetch(new Request(url as string, init), env, {
            waitUntil() {},
            passThroughOnException() {},
            props: {},
          }) as Promise<Response>,
      }),
    );
    app.all("*", (c) => c.json(c.var.identity));
    return app;
  }

  it("sets c.var.identity for a valid token", async () => {
    const seen = await captured();
    const res = await engineApp().fetch(seen);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      accountId: key.accountId,
      keyId: key.keyId,
      requestId: seen.headers.get("x-request-id"),
    });
  });

  it("answers 401 with the error code when the header is missing", async () => {
    const res = await engineApp().fetch(engineRequest(null));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { type: "authentication_error", code: "ERR_IDENTITY_MISSING" } });
  });

  it("answers 401 ERR_IDENTITY_MISMATCH to a captured token replayed on another path", async () => {
    const token = (await captured()).headers.get("x-nixflex-identity")!;
    const res = await engineApp().fetch(engineRequest(token, "POST", "/v1/admin"));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: "ERR_IDENTITY_MISMATCH" } });
  });

  it("answers 503 when the JWKS cannot be fetched", async () => {
    const app = new Hono<{ Variables: IdentityVariables }>();
    app.use(
      identityMiddleware({ jwksUrl: JWKS_URL, fetch: () => Promise.resolve(new Response("down", { status: 503 })) }),
    );
    app.all("*", (c) => c.json(c.var.identity));
    const res = await app.fetch(await captured());
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { code: "ERR_IDENTITY_KEYS_UNAVAILABLE" } });
  });
});
