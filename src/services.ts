/**
 * The per-isolate services a request uses (config, key store, failure limiter, the
 * engine's fetch, the outbound fetch, GitHub's scanning keys), built once per env object
 * from the bindings and the injected dependencies. Both request paths (src/app.ts) get
 * them here.
 */
import { FailureLimiter } from "./auth/rate-limit.ts";
import { type Bindings, loadConfig, type Services } from "./env.ts";
import type { LruCache } from "./keys/cache.ts";
import { KeyStore, type StoreCaches } from "./keys/store.ts";
import { GitHubKeys } from "./leaks/github-keys.ts";

/** What tests (and the benchmark) may replace. Production uses the defaults. */
export interface ServiceDeps {
  /** How the engine is reached. Default: the runtime's `fetch`. */
  engineFetch?: typeof fetch;
  /** Milliseconds since the epoch. */
  now?: () => number;
  caches?: StoreCaches;
  blocked?: LruCache<number>;
  kvTimeoutMs?: number;
  /** How GitHub's keys document and the leak webhook are reached. Default: the runtime's `fetch`. */
  outboundFetch?: typeof fetch;
}

/**
 * Returns the services for an env: parsed and built on its first request, then reused
 * (workerd hands every request of an isolate the same env object). Throws the cached
 * `configuration_error` when a setting is bad, and waits for the signing keys to be
 * imported and checked on the first requests.
 */
export function serviceProvider(deps: ServiceDeps): (env: Bindings) => Services | Promise<Services> {
  const services = new WeakMap<Bindings, Services>();
  const build = (env: Bindings): Services => {
    const config = loadConfig(env);
    const outboundFetch = deps.outboundFetch ?? ((input, init) => fetch(input, init));
    const found: Services = {
      config,
      store: new KeyStore(env.API_KEYS, { now: deps.now, caches: deps.caches, timeoutMs: deps.kvTimeoutMs }),
      limiter: new FailureLimiter(env.AUTH_FAILURE_LIMITER, { now: deps.now, blocked: deps.blocked }),
      engineFetch: deps.engineFetch ?? ((input, init) => fetch(input, init)),
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
