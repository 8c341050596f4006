/**
 * Shared setup for the key-route tests: a gateway with a controlled clock and its own
 * isolate caches, keys created in the real local KV, raw KV snapshots, and one `call`
 * that reads the body before waiting on the execution context. Not a test file.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { createApp } from "../../src/app.ts";
import type { Bindings } from "../../src/env.ts";
import { LruCache } from "../../src/lib/lru-cache.ts";
import { kvKeys } from "../../src/keys/record.ts";
import { createStoreCaches, KeyStore, type StoreCaches } from "../../src/keys/store.ts";

export const ORIGIN = "https://api.nixflex.com";
/** The standard 401 of SPEC §3, spelled out once in test support. */
export { expectStandard401, STANDARD_401_BODY as STANDARD_401 } from "../support/standard-401.ts";
export const KEY_NOT_FOUND_404 =
  '{"error":{"type":"not_found_error","code":"key_not_found","message":"No such API key"}}';
export const START = Date.parse("2031-03-04T05:06:07.000Z");

let accounts = 0;
/** An account no other test touches, so listings and index snapshots are exact. */
export function uniqueAccount(label = "acct"): string {
  accounts++;
  return `${label}_${accounts}_${crypto.randomUUID().slice(0, 8)}`;
}

let addresses = 0;
/** A fresh client address per request: 60 failures from one address would turn 401 into 429. */
function uniqueAddress(): string {
  addresses++;
  return `198.18.${(addresses >> 8) & 255}.${addresses & 255}`;
}

export interface Key {
  id: string;
  secret: string;
  account: string;
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect answers field by field
  json: any;
}

/**
 * Sends one request through a gateway and reads the whole answer (the body before waiting on
 * the execution context, which the pipe needs), with its JSON when it parses.
 */
export async function exchange(
  app: { fetch: ReturnType<typeof createApp>["fetch"] },
  bindings: Bindings,
  request: Request,
): Promise<Answer> {
  const ctx = createExecutionContext();
  const response = await app.fetch(request, bindings, ctx);
  const text = await response.text();
  await waitOnExecutionContext(ctx);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

export interface CallOptions {
  /** A key to authenticate with, a raw Authorization value, or none. */
  auth?: Key | string | null;
  /** An object is sent as JSON; a string or stream is sent as is. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** One gateway instance ("isolate"): its clock, caches, store and engine calls. */
export interface Gateway {
  app: ReturnType<typeof createApp>;
  store: KeyStore;
  caches: StoreCaches;
  engineCalls: Request[];
  now(): number;
  advance(ms: number): void;
  setNow(ms: number): void;
  call(method: string, path: string, options?: CallOptions): Promise<Answer>;
  createKey(account: string, input?: { name?: string; expiresAt?: string | null }): Promise<Key>;
}

export function authorization(key: Key): string {
  return `Bearer ${key.id}:${key.secret}`;
}

/** A gateway over `kvEnv` (default: the real local KV) with a clock that only moves when told. */
export function gateway(options: { start?: number; kvEnv?: typeof env } = {}): Gateway {
  let clock = options.start ?? START;
  const now = () => clock;
  const caches = createStoreCaches();
  const engineCalls: Request[] = [];
  const kvEnv = options.kvEnv ?? env;
  const app = createApp({
    now,
    caches,
    blocked: new LruCache(1000),
    engineFetch: async (input, init) => {
      engineCalls.push(new Request(input as Request, init));
      return new Response("engine", { status: 200 });
    },
  });
  const store = new KeyStore(kvEnv.API_KEYS, { now, caches });
  return {
    app,
    store,
    caches,
    engineCalls,
    now,
    advance: (ms) => {
      clock += ms;
    },
    setNow: (ms) => {
      clock = ms;
    },
    async call(method, path, callOptions = {}) {
      const headers = new Headers(callOptions.headers);
      headers.set("cf-connecting-ip", uniqueAddress());
      const auth = callOptions.auth;
      if (typeof auth === "string") headers.set("authorization", auth);
      else if (auth != null) headers.set("authorization", authorization(auth));
      let body: BodyInit | undefined;
      if (
        typeof callOptions.body === "string" ||
        callOptions.body instanceof ReadableStream ||
        callOptions.body instanceof Uint8Array
      ) {
        body = callOptions.body as BodyInit;
      } else if (callOptions.body !== undefined) {
        body = JSON.stringify(callOptions.body);
        if (!headers.has("content-type")) headers.set("content-type", "application/json");
      }
      return exchange(app, kvEnv, new Request(ORIGIN + path, { method, headers, body }));
    },
    async createKey(account, input = {}) {
      const { key, secret } = await store.create(account, {
        name: input.name ?? "test key",
        expiresAt: input.expiresAt ?? null,
      });
      return { id: key.key_id, secret, account };
    },
  };
}

/** Every raw KV value that belongs to one key, byte for byte. */
export async function keySnapshot(keyId: string): Promise<{ record: string | null; used: string | null }> {
  const [record, used] = await Promise.all([
    env.API_KEYS.get(kvKeys.record(keyId), "text"),
    env.API_KEYS.get(kvKeys.lastUsed(keyId), "text"),
  ]);
  return { record, used };
}

/** Every index entry (name and value) of one account. */
export async function accountSnapshot(account: string): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.API_KEYS.list({ prefix: kvKeys.accountPrefix(account), cursor });
    for (const entry of page.keys) out.push(`${entry.name}=${await env.API_KEYS.get(entry.name, "text")}`);
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor !== undefined);
  return out;
}

/** A key_id that was never created. */
export function unknownKeyId(): string {
  return `nxf_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The exact key-object field list of SPEC §5, in order. */
export const KEY_OBJECT_FIELDS = ["object", "key_id", "name", "created_at", "expires_at", "revoked_at", "last_used_at"];
