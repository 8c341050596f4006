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
  verifyIdentity,
  type IdentityErrorCode,
} from "../../src/verify/index.ts";
import {
  identityMiddleware,
  type IdentityMiddlewareOptions,
  type IdentityVariables,
} from "../../src/verify/middleware.ts";
import {
  AUTH_CHALLENGE,
  identityFailureResponse,
  UNAUTHORIZED_BODY,
  UNAVAILABLE_BODY,
} from "../../src/verify/response.ts";
import {
  AUTH_CHALLENGE as GATEWAY_AUTH_CHALLENGE,
  UNAUTHORIZED_BODY as GATEWAY_UNAUTHORIZED_BODY,
} from "../../src/errors.ts";
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

/** The gateway's published keys as a local key set (no JWKS fetch). */
async function localKeys() {
  return createLocalJWKSet(JSON.parse((await h.send(h.request("/.well-known/jwks.json"))).body));
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

  it("refuses a second use of one token as ERR_IDENTITY_REPLAYED (on by default)", async () => {
    const verify = h.verifier();
    const seen = await captured();
    await expect(verify(seen.clone())).resolves.toMatchObject({ keyId: key.keyId });
    expect(await rejection(verify(seen))).toBe("ERR_IDENTITY_REPLAYED");
  });

  it("does not use up a jti on a failed check: the legitimate request still gets through", async () => {
    const verify = h.verifier();
    const seen = await captured("POST", "/v1/calls");
    const token = seen.headers.get("x-nixflex-identity")!;
    expect(await rejection(verify(engineRequest(token, "POST", "/v1/other")))).toBe("ERR_IDENTITY_MISMATCH");
    await expect(verify(seen)).resolves.toMatchObject({ keyId: key.keyId });
  });

  it("asks a shared replay store, remembering the jti until the token's expiry plus the clock skew", async () => {
    const claims: Array<[string, number]> = [];
    const verify = createIdentityVerifier({
      keys: await localKeys(),
      replay: {
        async claim(jti, expiresAtMs) {
          claims.push([jti, expiresAtMs]);
          return claims.length === 1;
        },
      },
    });
    const seen = await captured();
    const { jti, exp } = jwtParts(seen.headers.get("x-nixflex-identity")!).payload as { jti: string; exp: number };
    await verify(seen.clone());
    expect(await rejection(verify(seen))).toBe("ERR_IDENTITY_REPLAYED");
    expect(claims).toEqual([
      [jti, (exp + 5) * 1000],
      [jti, (exp + 5) * 1000],
    ]);
  });

  it("fails closed (ERR_IDENTITY_REPLAY_STORE_UNAVAILABLE, a 503) when the shared store is down", async () => {
    const verify = createIdentityVerifier({
      keys: await localKeys(),
      replay: { claim: () => Promise.reject(new Error("ECONNREFUSED")) },
    });
    const error = await verify(await captured()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentityError);
    expect((error as IdentityError).code).toBe("ERR_IDENTITY_REPLAY_STORE_UNAVAILABLE");
    expect((error as IdentityError).status).toBe(503);
  });

  it("accepts a replay only when the guard is turned off (replay: false)", async () => {
    const verify = createIdentityVerifier({
      keys: await localKeys(),
      replay: false,
    });
    const seen = await captured();
    await verify(seen.clone());
    await expect(verify(seen)).resolves.toMatchObject({ keyId: key.keyId });
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
  function engineApp(options: Pick<IdentityMiddlewareOptions, "onFailure"> = {}) {
    const app = new Hono<{ Variables: IdentityVariables }>();
    app.use(
      identityMiddleware({
        ...options,
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

  /** Asserts the byte-exact 401 of SPEC §3: the gateway's own body and headers. */
  async function expectStandard401(res: Response): Promise<void> {
    expect(res.status).toBe(401);
    expect(await res.text()).toBe(UNAUTHORIZED_BODY);
    expect(res.headers.get("www-authenticate")).toBe(AUTH_CHALLENGE);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("content-type")).toBe("application/json");
  }

  it("answers the gateway's own 401 when the header is missing, and tells the hook why", async () => {
    const reasons: string[] = [];
    const res = await engineApp({ onFailure: (error) => reasons.push(error.code) }).fetch(engineRequest(null));
    await expectStandard401(res);
    expect(reasons).toEqual(["ERR_IDENTITY_MISSING"]);
  });

  it("answers the same 401 to a captured token replayed on another path (the reason only in the hook)", async () => {
    const token = (await captured()).headers.get("x-nixflex-identity")!;
    const reasons: string[] = [];
    const res = await engineApp({ onFailure: (error) => reasons.push(error.code) }).fetch(
      engineRequest(token, "POST", "/v1/admin"),
    );
    await expectStandard401(res);
    expect(reasons).toEqual(["ERR_IDENTITY_MISMATCH"]);
  });

  it("answers the same 401 to a forged token as to a missing one: nothing says which check failed", async () => {
    const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const forged = await sign(validClaims(), { key: privateKey });
    const app = engineApp({ onFailure() {} });
    const [a, b] = await Promise.all([app.fetch(engineRequest(forged)), app.fetch(engineRequest(null))]);
    expect([...a.headers]).toEqual([...b.headers]);
    expect(await a.text()).toBe(await b.text());
  });

  it("refuses the second use of one token on the same method and path (jti replay guard, on by default)", async () => {
    const seen = await captured();
    const reasons: string[] = [];
    const app = engineApp({ onFailure: (error) => reasons.push(error.code) });
    expect((await app.fetch(seen.clone())).status).toBe(200);
    await expectStandard401(await app.fetch(seen));
    expect(reasons).toEqual(["ERR_IDENTITY_REPLAYED"]);
  });

  it("answers 503 in the standard envelope when the JWKS cannot be fetched", async () => {
    const app = new Hono<{ Variables: IdentityVariables }>();
    const reasons: string[] = [];
    app.use(
      identityMiddleware({
        jwksUrl: JWKS_URL,
        fetch: () => Promise.resolve(new Response("down", { status: 503 })),
        onFailure: (error) => reasons.push(error.code),
      }),
    );
    app.all("*", (c) => c.json(c.var.identity));
    const res = await app.fetch(await captured());
    expect(res.status).toBe(503);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual({
      error: { type: "api_error", code: "service_unavailable", message: expect.any(String) },
    });
    expect(reasons).toEqual(["ERR_IDENTITY_KEYS_UNAVAILABLE"]);
  });
});

describe("the standard answer", () => {
  it("is byte for byte the gateway's own 401 (src/errors.ts), so the two can never drift", () => {
    expect(UNAUTHORIZED_BODY).toBe(GATEWAY_UNAUTHORIZED_BODY);
    expect(AUTH_CHALLENGE).toBe(GATEWAY_AUTH_CHALLENGE);
    expect(JSON.parse(UNAVAILABLE_BODY).error).toMatchObject({ type: "api_error", code: "service_unavailable" });
  });

  it.each<[IdentityErrorCode, number]>([
    ["ERR_IDENTITY_MISSING", 401],
    ["ERR_IDENTITY_INVALID", 401],
    ["ERR_IDENTITY_EXPIRED", 401],
    ["ERR_IDENTITY_CLAIM", 401],
    ["ERR_IDENTITY_MISMATCH", 401],
    ["ERR_IDENTITY_REPLAYED", 401],
    ["ERR_IDENTITY_KEYS_UNAVAILABLE", 503],
    ["ERR_IDENTITY_REPLAY_STORE_UNAVAILABLE", 503],
  ])("answers %s with %i and a body that does not name the code", async (code, status) => {
    const res = identityFailureResponse(new IdentityError(code, "reason"));
    expect(res.status).toBe(status);
    const body = await res.text();
    expect(body).not.toContain("ERR_");
    expect(body).not.toContain("reason");
    expect(body).toBe(status === 401 ? UNAUTHORIZED_BODY : UNAVAILABLE_BODY);
  });
});
