/**
 * Typed bindings and the configuration parsed from them (SPEC §8). Parsing happens
 * once per isolate per distinct set of values; a missing or malformed setting is a
 * `configuration_error` on every request, never a forward.
 */
import type { RequestIdVariables } from "hono/request-id";
import { GatewayError } from "./errors.ts";
import type { KeyStore } from "./keys/store.ts";
import { DEFAULT_SYNC_INTERVAL_MS, MAX_SYNC_INTERVAL_MS, MIN_SYNC_INTERVAL_MS } from "./keys/sync.ts";
import type { FailureLimiter } from "./auth/rate-limit.ts";
import { parseSigningKeys, type SigningKeySet } from "./identity/keys.ts";
import type { OperatorGate } from "./operator/gate.ts";
import type { GitHubKeys } from "./leaks/github-keys.ts";

/** What wrangler.toml binds (see `wrangler types`). */
export interface Bindings {
  API_KEYS: KVNamespace;
  ENGINE_URL?: string;
  ENGINE_TIMEOUT_MS?: string | number;
  IDENTITY_ISSUER?: string;
  IDENTITY_AUDIENCE?: string;
  IDENTITY_SIGNING_KEYS?: string;
  /** Workers Rate Limiting binding counting failed authentications per client address. */
  AUTH_FAILURE_LIMITER?: RateLimit;
  /**
   * The key change log: a DurableObjectNamespace of `KeyChangeLog` (src/keys/change-log-object.ts),
   * typed by the one method the config check needs so the scripts' Node types can name it.
   */
  KEY_CHANGES?: { idFromName(name: string): unknown };
  /** How often a location reads the key change log, in ms (src/keys/sync.ts). */
  KEY_SYNC_INTERVAL_MS?: string | number;
  /** Cloudflare Access team domain (`<team>.cloudflareaccess.com`) guarding the operator API. */
  ACCESS_TEAM_DOMAIN?: string;
  /** The AUD tag of the operator API's Access application. */
  ACCESS_AUD?: string;
  /** Local development only: the operator API's token (.dev.vars). */
  OPERATOR_TOKEN?: string;
  /** `"true"` only at wrangler.toml's top level (local development): lets OPERATOR_TOKEN in. */
  OPERATOR_TOKEN_ALLOWED?: string;
  /** GitHub's secret-scanning keys document (SPEC §10). */
  GITHUB_SECRET_SCANNING_KEYS_URL?: string;
  /** Where `key.leaked` notifications go; unset: none are sent. */
  LEAK_WEBHOOK_URL?: string;
}

export interface Config {
  /** Engine origin without a trailing slash, e.g. `https://engine.internal.nixflex.com`. */
  engineOrigin: string;
  engineHostname: string;
  engineTimeoutMs: number;
  issuer: string;
  audience: string;
  signing: SigningKeySet;
  keySyncIntervalMs: number;
  leaks: LeakConfig;
}

/** Leak reports (SPEC §10). */
export interface LeakConfig {
  githubKeysUrl: string;
  /** Null: no webhook configured, the audit line is the only notice. */
  webhookUrl: string | null;
}

/** The authenticated caller. */
export interface Principal {
  accountId: string;
  keyId: string;
}

/** What the gateway needs of a request's execution context: work that outlives the answer. */
export interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

/** Per-request services, built from the env and the injected dependencies. */
export interface Services {
  config: Config;
  store: KeyStore;
  limiter: FailureLimiter;
  engineFetch: typeof fetch;
  /** Who may use the operator API (src/operator/gate.ts). */
  operator: OperatorGate;
  /** How the gateway reaches anything but the engine: GitHub's keys document, the leak webhook. */
  outboundFetch: typeof fetch;
  githubKeys: GitHubKeys;
}

export type AppEnv = {
  Bindings: Bindings;
  Variables: RequestIdVariables & {
    services: Services;
    principal: Principal;
    /** Why authentication failed, for the access log only. */
    authOutcome: string;
    /** The operator's subject (operator API only; src/operator/gate.ts). */
    operator: string;
  };
};

export const DEFAULT_ISSUER = "https://api.nixflex.com";
export const DEFAULT_AUDIENCE = "nixflex-engine";
export const DEFAULT_ENGINE_TIMEOUT_MS = 30_000;
export const DEFAULT_GITHUB_SECRET_SCANNING_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning";

const fail = (setting: string, why: string): never => {
  throw new GatewayError("configuration_error", { detail: `${setting} ${why}` });
};

/** Parses the engine origin: http(s), no credentials, no path, query or fragment. */
function parseEngineUrl(raw: string | undefined): { origin: string; hostname: string } {
  if (raw === undefined || raw.trim() === "") return fail("ENGINE_URL", "is not set");
  const url = new URL(parseUrl("ENGINE_URL", raw, ""));
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "")
    fail("ENGINE_URL", "must be an origin, without path or query");
  return { origin: url.origin, hostname: url.hostname };
}

/** Parses an http(s) URL setting without credentials; `undefined` and "" give `fallback`. */
function parseUrl<F extends string | null>(name: string, raw: string | undefined, fallback: F): string | F {
  if (raw === undefined || raw === "") return fallback;
  let url: URL;
  try {
    url = new URL(String(raw).trim());
  } catch {
    return fail(name, "is not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") fail(name, "must be an http(s) URL");
  if (url.username !== "" || url.password !== "") fail(name, "must not carry credentials");
  return url.href;
}

/** Parses a whole number of milliseconds in [min, max]; unset or empty is the default. */
function parseMs(name: string, raw: string | number | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === "") return fallback;
  const value = typeof raw === "number" ? raw : Number(raw.trim());
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(name, `must be an integer number of milliseconds between ${min} and ${max}`);
  }
  return value;
}

function parseText(name: string, raw: string | undefined, fallback: string): string {
  if (raw === undefined) return fallback;
  if (typeof raw !== "string" || raw.trim() === "") return fail(name, "must be a non-empty string");
  return raw;
}

/** Parses every setting, throwing `configuration_error` naming the first bad one. */
export function parseConfig(env: Bindings): Config {
  if (env.API_KEYS === undefined || typeof env.API_KEYS.get !== "function") fail("API_KEYS", "KV binding is missing");
  // Without the log a revoke would silently take KV's 90 s instead of the bound the API states.
  if (env.KEY_CHANGES === undefined || typeof env.KEY_CHANGES.idFromName !== "function") {
    fail("KEY_CHANGES", "Durable Object binding is missing");
  }
  const engine = parseEngineUrl(env.ENGINE_URL);
  return {
    engineOrigin: engine.origin,
    engineHostname: engine.hostname,
    engineTimeoutMs: parseMs("ENGINE_TIMEOUT_MS", env.ENGINE_TIMEOUT_MS, DEFAULT_ENGINE_TIMEOUT_MS, 1, 600_000),
    issuer: parseText("IDENTITY_ISSUER", env.IDENTITY_ISSUER, DEFAULT_ISSUER),
    audience: parseText("IDENTITY_AUDIENCE", env.IDENTITY_AUDIENCE, DEFAULT_AUDIENCE),
    signing: parseSigningKeys(env.IDENTITY_SIGNING_KEYS),
    // Bounded so the interval plus a background refresh stays inside the stated bound.
    keySyncIntervalMs: parseMs(
      "KEY_SYNC_INTERVAL_MS",
      env.KEY_SYNC_INTERVAL_MS,
      DEFAULT_SYNC_INTERVAL_MS,
      MIN_SYNC_INTERVAL_MS,
      MAX_SYNC_INTERVAL_MS,
    ),
    leaks: {
      githubKeysUrl: parseUrl(
        "GITHUB_SECRET_SCANNING_KEYS_URL",
        env.GITHUB_SECRET_SCANNING_KEYS_URL,
        DEFAULT_GITHUB_SECRET_SCANNING_KEYS_URL,
      ),
      webhookUrl: parseUrl("LEAK_WEBHOOK_URL", env.LEAK_WEBHOOK_URL, null),
    },
  };
}

const parsed = new WeakMap<object, Config | GatewayError>();

/** The config for this env, parsed at most once per env object. Throws the cached error. */
export function loadConfig(env: Bindings): Config {
  let result = parsed.get(env);
  if (result === undefined) {
    try {
      result = parseConfig(env);
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      result = error;
    }
    parsed.set(env, result);
  }
  if (result instanceof GatewayError) throw result;
  return result;
}
