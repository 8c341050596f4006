/**
 * Limits failed authentications per client address (SPEC §3) with the Workers Rate
 * Limiting binding. Only failures count and only failures are refused: every request is
 * checked, a valid key is served whatever else its address sent, and a failure past the
 * limit gets 429 instead of 401. The limit protects capacity, not secrets (none can be
 * guessed), and the capacity a failure costs is bounded without refusing anyone's valid key
 * (docs/SECURITY.md, "Rate limiting of failed authentication"). Once the binding says an
 * address is over, this isolate remembers it for the rest of the window and answers that
 * address's further failures without asking the binding again.
 */
import { LruCache } from "../lib/lru-cache.ts";

/** The binding's window (`simple.period` in wrangler.toml); Retry-After never exceeds it. */
export const FAILURE_WINDOW_S = 60;

/** The address failures are counted against; requests without one share a bucket. */
export function clientAddress(headers: Headers): string {
  return headers.get("cf-connecting-ip") ?? "unknown";
}

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

  /**
   * Counts one failure for `client` and says whether it is past the limit. Called only
   * after a request failed authentication: a success is never counted nor refused.
   */
  async fail(client: string): Promise<LimitDecision> {
    const now = this.#now();
    const until = this.#blocked.get(client, now);
    if (until !== undefined) return { limited: true, retryAfterS: Math.max(1, Math.ceil((until - now) / 1000)) };
    if (this.#binding === undefined) return { limited: false };
    let success: boolean;
    try {
      ({ success } = await this.#binding.limit({ key: client }));
    } catch {
      // The limiter protects capacity, not identity: if it is down, answer the plain 401.
      return { limited: false };
    }
    if (success) return { limited: false };
    const blockedUntil = this.#now() + FAILURE_WINDOW_S * 1000;
    this.#blocked.set(client, blockedUntil, blockedUntil);
    return { limited: true, retryAfterS: FAILURE_WINDOW_S };
  }
}

const isolateBlocked = new LruCache<number>(10_000);
