/**
 * Limits failed authentications per client address (SPEC §3) with the Workers Rate
 * Limiting binding. The binding counts failures per location; once it says no, this
 * isolate also refuses that address outright for the rest of the window, before any
 * key work, so a blocked client costs neither a KV read nor a hash.
 */
import { LruCache } from "../keys/cache.ts";

/** The binding's window (`simple.period` in wrangler.toml); Retry-After never exceeds it. */
export const FAILURE_WINDOW_S = 60;

export type LimitDecision = { limited: false } | { limited: true; retryAfterS: number };

export class FailureLimiter {
  readonly #binding: RateLimit | undefined;
  readonly #blocked: LruCache<number>;
  readonly #now: () => number;

  constructor(binding: RateLimit | undefined, options: { now?: () => number; blocked?: LruCache<number> } = {}) {
    this.#binding = binding;
    this.#now = options.now ?? Date.now;
    this.#blocked = options.blocked ?? isolateBlocked;
  }

  /** Whether `client` is blocked in this isolate right now. */
  check(client: string): LimitDecision {
    const now = this.#now();
    const until = this.#blocked.get(client, now);
    if (until === undefined) return { limited: false };
    return { limited: true, retryAfterS: Math.max(1, Math.ceil((until - now) / 1000)) };
  }

  /** Counts one failure for `client`; says whether it pushed the client past the limit. */
  async fail(client: string): Promise<LimitDecision> {
    if (this.#binding === undefined) return { limited: false };
    let success: boolean;
    try {
      ({ success } = await this.#binding.limit({ key: client }));
    } catch {
      // The limiter protects capacity, not identity: if it is down, answer the plain 401.
      return { limited: false };
    }
    if (success) return { limited: false };
    const until = this.#now() + FAILURE_WINDOW_S * 1000;
    this.#blocked.set(client, until, until);
    return { limited: true, retryAfterS: FAILURE_WINDOW_S };
  }
}

const isolateBlocked = new LruCache<number>(10_000);
