/**
 * Shared test harness for the workerd suite: builds a gateway with injected
 * dependencies (engine fetch, clock, caches, primitives), creates real keys in the
 * local KV binding, and verifies identity tokens with the shipped verifier against the
 * gateway's own JWKS. Not a test file: vitest only collects `*.test.ts`.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from "jose";
import { createApp, type AppDeps } from "../../src/app.ts";
import type { VerifyPrimitives } from "../../src/auth/verify-key.ts";
import type { Bindings } from "../../src/env.ts";
import { LruCache } from "../../src/lib/lru-cache.ts";
import { createStoreCaches, KeyStore } from "../../src/keys/store.ts";
import { createSyncView } from "../../src/keys/sync.ts";
import { createIdentityVerifier, type IdentityVerifier } from "../../src/verify/index.ts";

/**
 * What a test may pass as the env: the gateway's bindings (src/env.ts), so a copy can
 * carry values the generated wrangler types do not allow (a bad ENGINE_URL, say).
 */
export type TestEnv = Bindings & { TEST_ES256_SIGNING_KEYS?: string; FUZZ_RUNS?: string };

export const PUBLIC_ORIGIN = "https://api.nixflex.com";
export const JWKS_URL = `${PUBLIC_ORIGIN}/.well-known/jwks.json`;

/** The standard 401 of SPEC §3, spelled out once in test support. */
export { AUTH_CHALLENGE, expectStandard401, STANDARD_401_BODY } from "../support/standard-401.ts";
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Values the log-hygiene check (test/support/workers-log-capture.ts) must never find in
 * a console line: every secret and Authorization value the suite creates.
 */
export function rememberSensitive(value: string): void {
  const g = globalThis as { __nixflexSensitive?: Set<string> };
  g.__nixflexSensitive ??= new Set();
  g.__nixflexSensitive.add(value);
}

let addressCounter = 0;
/**
 * A client address no other test uses: the rate-limit binding's counters outlive a
 * test, and 60 failures from one address would turn the 401 into a 429 (SPEC §3).
 */
export function uniqueAddress(): string {
  addressCounter++;
  const n = addressCounter + Math.floor(Math.random() * 1_000_000) * 4096;
  return `2001:db8:${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}::${crypto.randomUUID().slice(0, 4)}`;
}

/** An engine at the outbound boundary: records every request and answers with `answer`. */
export interface RecordingEngine {
  fetch: typeof fetch;
  calls: Request[];
}

/** The default engine answer; like any HTTP response to HEAD (as `fetch` returns it), a HEAD answer has no body. */
const engineOk = (request: Request) => new Response(request.method === "HEAD" ? null : "engine ok", { status: 200 });

export function recordingEngine(
  answer: (request: Request) => Response | Promise<Response> = engineOk,
): RecordingEngine {
  const calls: Request[] = [];
  const engineFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request && init === undefined ? input : new Request(input, init);
    calls.push(request);
    return answer(request);
  }) as typeof fetch;
  return { fetch: engineFetch, calls };
}

/** KV wrapped to count reads; the env copy carrying it gets its own config cache. */
export interface CountingKv {
  kv: KVNamespace;
  reads: () => number;
  writes: () => number;
}

export function countingKv(inner: KVNamespace = env.API_KEYS): CountingKv {
  let reads = 0;
  let writes = 0;
  const kv = {
    get: (...args: Parameters<KVNamespace["get"]>) => {
      reads++;
      return (inner.get as (...a: unknown[]) => unknown)(...args);
    },
    getWithMetadata: (...args: Parameters<KVNamespace["getWithMetadata"]>) => {
      reads++;
      return (inner.getWithMetadata as (...a: unknown[]) => unknown)(...args);
    },
    list: (...args: Parameters<KVNamespace["list"]>) => {
      reads++;
      return inner.list(...args);
    },
    put: (...args: Parameters<KVNamespace["put"]>) => {
      writes++;
      return inner.put(...args);
    },
    delete: (...args: Parameters<KVNamespace["delete"]>) => {
      writes++;
      return inner.delete(...args);
    },
  } as unknown as KVNamespace;
  return { kv, reads: () => reads, writes: () => writes };
}

/** Counts the verification work (SPEC §3: equal work for every failure). */
export function countingPrimitives(inner: VerifyPrimitives): VerifyPrimitives & { digests: number; equals: number } {
  const counted = {
    digests: 0,
    equals: 0,
    async digest(secret: string) {
      counted.digests++;
      return inner.digest(secret);
    },
    equal(a: Uint8Array, b: Uint8Array) {
      counted.equals++;
      return inner.equal(a, b);
    },
  };
  return counted;
}

export interface GatewayOptions extends Omit<AppDeps, "engineFetch" | "caches" | "blocked"> {
  env?: TestEnv;
  engine?: RecordingEngine;
}

export interface Sent {
  res: Response;
  body: string;
}

/**
 * A gateway app with fresh caches, a recording engine and a verifier bound to its JWKS: one
 * simulated isolate. Its view of the key change log and its location cache are its own
 * unless the test passes them (two gateways given one `locationCache` share a location).
 */
export function gateway(options: GatewayOptions = {}) {
  const bindings: TestEnv = options.env ?? env;
  const engine = options.engine ?? recordingEngine();
  const { env: _env, engine: _engine, ...deps } = options;
  const app = createApp({
    ...deps,
    engineFetch: engine.fetch,
    caches: createStoreCaches(),
    blocked: new LruCache<number>(1000),
    syncView: deps.syncView ?? createSyncView(),
    locationCache: deps.locationCache ?? ownLocation(),
  });

  /** Sends a request; reads the body before waiting on the execution context (the pipe needs a reader). */
  async function send(request: Request): Promise<Sent> {
    const ctx = createExecutionContext();
    const res = await app.fetch(request, bindings, ctx);
    const body = await res.text();
    await waitOnExecutionContext(ctx);
    return { res, body };
  }

  /** Sends to `path` with a fresh client address and the given headers. */
  function request(path: string, init: RequestInit & { authorization?: string } = {}): Request {
    const headers = new Headers(init.headers);
    if (!headers.has("cf-connecting-ip")) headers.set("cf-connecting-ip", uniqueAddress());
    if (init.authorization !== undefined) headers.set("authorization", init.authorization);
    const { authorization: _a, ...rest } = init;
    return new Request(PUBLIC_ORIGIN + path, { ...rest, headers });
  }

  /** The shipped engine-side verifier, fetching this gateway's own JWKS. */
  function verifier(overrides: { issuer?: string; audience?: string } = {}): IdentityVerifier {
    return createIdentityVerifier({
      jwksUrl: JWKS_URL,
      ...overrides,
      fetch: (url, init) =>
        app.fetch(new Request(url as string, init), bindings, createExecutionContext()) as Promise<Response>,
    });
  }

  return { app, env: bindings, engine, send, request, verifier };
}

export type Gateway = ReturnType<typeof gateway>;

/** A location cache of its own, so no two test gateways share a view by accident. */
function ownLocation(): () => Promise<Cache> {
  const name = `location-${crypto.randomUUID()}`;
  return () => caches.open(name);
}

export interface TestKey {
  keyId: string;
  secret: string;
  accountId: string;
  authorization: string;
}

/** A store writing to the real local KV with its own caches, so the gateway under test reads KV itself. */
export function adminStore(options: { now?: () => number; kv?: KVNamespace } = {}): KeyStore {
  return new KeyStore(options.kv ?? env.API_KEYS, { now: options.now, caches: createStoreCaches() });
}

/** Creates a real key in the local KV. */
export async function createKey(
  options: { accountId?: string; expiresAt?: string | null; store?: KeyStore } = {},
): Promise<TestKey> {
  const accountId = options.accountId ?? `acct_${crypto.randomUUID().slice(0, 8)}`;
  const store = options.store ?? adminStore();
  const { key, secret } = await store.create(accountId, { name: "test", expiresAt: options.expiresAt ?? null });
  const authorization = `Bearer ${key.key_id}:${secret}`;
  rememberSensitive(secret);
  return { keyId: key.key_id, secret, accountId, authorization };
}

/** Fresh bytes from the CSPRNG, in 64 KiB draws (getRandomValues' limit). */
export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65_536) {
    crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + 65_536)));
  }
  return out;
}

export async function sha256Hex(data: BufferSource): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Header names of a response, sorted, for "nothing tells the failures apart" checks. */
export function headerNames(res: Response): string[] {
  return [...res.headers.keys()].sort();
}

/** The protected header and claims of a compact JWS, decoded without verifying. */
export function jwtParts(token: string): { header: ProtectedHeaderParameters; payload: JWTPayload } {
  return { header: decodeProtectedHeader(token), payload: decodeJwt(token) };
}
