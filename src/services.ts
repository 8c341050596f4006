/**
 * The per-isolate services a request uses (config, key store, failure limiter, the
 * engine's fetch, the outbound fetch, GitHub's scanning keys, the operator API's gate),
 * built once per env object from the bindings and the injected dependencies. The HTTP
 * pipeline and the KeyAdmin entrypoint get them here.
 */
import { FailureLimiter } from "./auth/rate-limit.ts";
import { type Bindings, loadConfig, type Services } from "./env.ts";
import type { LruCache } from "./lib/lru-cache.ts";
import type { ChangeLogApi } from "./keys/change-log.ts";
import { changeLogFrom } from "./keys/change-log-object.ts";
import { KeyStore, KV_BOUND_S, type StoreCaches } from "./keys/store.ts";
import { KeySync, type SyncView } from "./keys/sync.ts";
import { createOperatorGate, parseOperatorSettings } from "./operator/gate.ts";
import { GitHubKeys } from "./leaks/github-keys.ts";

/** The named Cache API cache a location's isolates share the change log view through. */
export const LOCATION_CACHE_NAME = "nixflex-key-changes";

/** What tests (and the benchmark) may replace. Production uses the defaults. */
export interface ServiceDeps {
  /** How the engine is reached. Default: the runtime's `fetch`. */
  engineFetch?: typeof fetch;
  /** Milliseconds since the epoch. */
  now?: () => number;
  caches?: StoreCaches;
  blocked?: LruCache<number>;
  kvTimeoutMs?: number;
  /** The key change log. Default: the `KEY_CHANGES` Durable Object. */
  changeLog?: ChangeLogApi;
  /** This location's shared cache. Default: the named cache `LOCATION_CACHE_NAME`. */
  locationCache?: () => Promise<Cache>;
  /** This isolate's view of the log. Default: module scope. */
  syncView?: SyncView;
  /** How the operator API fetches Cloudflare Access's certificates. Default: the runtime's `fetch`. */
  accessFetch?: typeof fetch;
  /** How GitHub's keys document and the leak webhook are reached. Default: the runtime's `fetch`. */
  outboundFetch?: typeof fetch;
}

/** Hands out the services of an env (see `serviceProvider`). */
export type ServiceProvider = (env: Bindings) => Services | Promise<Services>;

/**
 * Returns the services for an env: parsed and built on its first request, then reused
 * (workerd hands every request of an isolate the same env object). Throws the cached
 * `configuration_error` when a setting is bad, and waits for the signing keys to be
 * imported and checked on the first requests.
 */
export function serviceProvider(deps: ServiceDeps): ServiceProvider {
  const services = new WeakMap<Bindings, Services>();
  const build = (env: Bindings): Services => {
    const config = loadConfig(env);
    const sync = new KeySync({
      // loadConfig has checked the binding.
      log: deps.changeLog ?? changeLogFrom(env.KEY_CHANGES!),
      locationCache: deps.locationCache ?? (() => caches.open(LOCATION_CACHE_NAME)),
      intervalMs: config.keySyncIntervalMs,
      trustMs: KV_BOUND_S * 1000,
      view: deps.syncView,
      now: deps.now,
    });
    const outboundFetch = deps.outboundFetch ?? ((input, init) => fetch(input, init));
    const found: Services = {
      config,
      store: new KeyStore(env.API_KEYS, { now: deps.now, caches: deps.caches, timeoutMs: deps.kvTimeoutMs, sync }),
      limiter: new FailureLimiter(env.AUTH_FAILURE_LIMITER, { now: deps.now, blocked: deps.blocked }),
      engineFetch: deps.engineFetch ?? ((input, init) => fetch(input, init)),
      operator: createOperatorGate(parseOperatorSettings(env), { accessFetch: deps.accessFetch }),
      outboundFetch,
      githubKeys: new GitHubKeys(config.leaks.githubKeysUrl, outboundFetch, deps.now),
    };
    services.set(env, found);
    return found;
  };
  return (env) => {
    const found = services.get(env) ?? build(env);
    if (found.config.signing.ready) return found;
    return found.config.signing.check().then(() => found);
  };
}

/**
 * The deployed Worker's provider, one per isolate: the HTTP gateway (src/index.ts) and the
 * `KeyAdmin` entrypoint share it, so an RPC call and a request see the same parsed config
 * and the same key store.
 */
export const isolateServices: ServiceProvider = serviceProvider({});
