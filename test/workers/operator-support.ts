/**
 * Shared setup for the operator API tests: a Cloudflare Access stand-in (an RS256 key pair
 * made here, its certificate set served through the injected `accessFetch`), assertions
 * signed like Access signs them, and a gateway over the real local KV whose env carries
 * the operator settings under test. Not a test file.
 */
import { env } from "cloudflare:test";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { createApp } from "../../src/app.ts";
import { LruCache } from "../../src/lib/lru-cache.ts";
import { createStoreCaches, KeyStore } from "../../src/keys/store.ts";
import { recordingEngine, type TestEnv, uniqueAddress } from "./harness.ts";
import { type Answer, exchange } from "./keys-support.ts";

export const TEAM = "nixflex-test.cloudflareaccess.com";
export const ISSUER = `https://${TEAM}`;
export const CERTS_URL = `${ISSUER}/cdn-cgi/access/certs`;
export const AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
export const LOCAL_TOKEN = "nxop_test_0123456789abcdefghijklmnopqrstuv";
export const DEPLOYED_ORIGIN = "https://api.nixflex.com";
export const LOCAL_ORIGIN = "http://127.0.0.1:8787";
/** The answer to every request the operator API does not let in (an unknown route's). */
export const NOT_FOUND_BODY = '{"error":{"type":"invalid_request_error","code":"not_found","message":"No such route"}}';

/** A signing key pair standing for the team's Access key, with its kid. */
export interface AccessKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: Record<string, unknown>;
}

export async function accessKey(kid = `kid-${crypto.randomUUID().slice(0, 8)}`): Promise<AccessKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

/** An application token as Access signs it; `claims` and `options` bend it for the hostile cases. */
export async function assertion(
  key: AccessKey,
  claims: JWTPayload = { email: "alice@nixflex.com" },
  options: { issuer?: string; audience?: string | string[]; expiresIn?: string | number; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ type: "app", ...claims })
    .setProtectedHeader({ alg: "RS256", kid: options.kid ?? key.kid, typ: "JWT" })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? [AUD])
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(options.expiresIn ?? now + 60)
    .sign(key.privateKey);
}

/** Serves the certificate set of `keys` at CERTS_URL only, and records every fetch. */
export function accessCerts(keys: AccessKey[]) {
  const fetched: string[] = [];
  const accessFetch = (async (input: RequestInfo | URL) => {
    const url = input instanceof Request ? input.url : String(input);
    fetched.push(url);
    if (url !== CERTS_URL) return new Response("not found", { status: 404 });
    return Response.json({ keys: keys.map((key) => key.publicJwk) });
  }) as typeof fetch;
  return { accessFetch, fetched };
}

/** The env of a deployed environment with Access set up (what `[env.production]` gets). */
export function accessEnv(overrides: Partial<TestEnv> = {}): TestEnv {
  const { OPERATOR_TOKEN_ALLOWED: _allowed, OPERATOR_TOKEN: _token, ...deployed } = env as TestEnv;
  return { ...deployed, ACCESS_TEAM_DOMAIN: TEAM, ACCESS_AUD: AUD, ...overrides };
}

/** The env of local development: the top level of wrangler.toml plus OPERATOR_TOKEN from .dev.vars. */
export function localEnv(overrides: Partial<TestEnv> = {}): TestEnv {
  return { ...(env as TestEnv), OPERATOR_TOKEN_ALLOWED: "true", OPERATOR_TOKEN: LOCAL_TOKEN, ...overrides };
}

/** A gateway over the real local KV with a recording engine (and `now`, when given, as its clock); `call` sends to any origin. */
export function operatorGateway(bindings: TestEnv, deps: { accessFetch?: typeof fetch; now?: () => number } = {}) {
  const engine = recordingEngine();
  const caches = createStoreCaches();
  const app = createApp({ ...deps, engineFetch: engine.fetch, caches, blocked: new LruCache<number>(1000) });
  const store = new KeyStore(bindings.API_KEYS, { now: deps.now, caches: createStoreCaches() });

  async function call(
    method: string,
    url: string,
    options: { headers?: Record<string, string>; body?: unknown } = {},
  ): Promise<Answer> {
    const headers = new Headers(options.headers);
    headers.set("cf-connecting-ip", uniqueAddress());
    let body: string | undefined;
    if (typeof options.body === "string") body = options.body;
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    }
    return exchange(app, bindings, new Request(url, { method, headers, body }));
  }

  return { app, engine, store, call };
}
