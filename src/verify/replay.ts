/**
 * The `jti` replay guard (SPEC §9): a token the gateway signed is good for one request. Without
 * it a captured identity header replays on the same method and path until it expires.
 */

/**
 * Where used `jti`s are remembered. `claim` records a first use and answers `true`, or answers
 * `false` when the `jti` is already recorded and not yet past `expiresAtMs`. An engine with many
 * instances passes one shared store, so a header replayed at another instance is refused too:
 *
 * ```ts
 * // Redis (node-redis v4+): SET … NX stores only when absent; PXAT drops it when the token is dead.
 * const store: ReplayStore = {
 *   claim: async (jti, expiresAtMs) =>
 *     (await redis.set(`nixflex:jti:${jti}`, "1", { NX: true, PXAT: expiresAtMs })) === "OK",
 * };
 * ```
 *
 * A store that throws (or rejects) makes the verifier answer `ERR_IDENTITY_REPLAY_STORE_UNAVAILABLE`
 * (503): failing open would accept replays whenever the store is down.
 */
export interface ReplayStore {
  claim(jti: string, expiresAtMs: number): Promise<boolean> | boolean;
}

export interface MemoryReplayStoreOptions {
  /**
   * Most `jti`s kept at once. When full, the oldest entry is dropped, so memory stays
   * bounded under any traffic; size it above (requests per second × 65) per instance. Default 100 000.
   */
  maxEntries?: number;
  /** The clock, in ms since the epoch (tests). Default `Date.now`. */
  now?: () => number;
}

/** An in-memory {@link ReplayStore} with a `size` and an `evicted` count for monitoring. */
export interface MemoryReplayStore extends ReplayStore {
  readonly size: number;
  /** How many live entries were dropped to stay within `maxEntries`: each is a replay window. */
  readonly evicted: number;
}

/**
 * The default store: one instance's memory. Entries live until the token's own expiry (plus the
 * clock skew the verifier allows), so a token is remembered for as long as it could verify.
 */
export function createMemoryReplayStore(options: MemoryReplayStoreOptions = {}): MemoryReplayStore {
  const maxEntries = options.maxEntries ?? 100_000;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new TypeError("maxEntries must be a positive integer");
  const now = options.now ?? Date.now;
  // Insertion order is close to expiry order (every token lives the same 60 s), so expired
  // entries are found at the front of the Map and the sweep stops at the first live one.
  const seen = new Map<string, number>();
  let evicted = 0;

  function sweep(at: number): void {
    for (const [jti, expiresAtMs] of seen) {
      if (expiresAtMs > at) return;
      seen.delete(jti);
    }
  }

  return {
    claim(jti, expiresAtMs) {
      const at = now();
      sweep(at);
      const known = seen.get(jti);
      if (known !== undefined && known > at) return false;
      seen.delete(jti);
      while (seen.size >= maxEntries) {
        const oldest = seen.keys().next().value as string;
        seen.delete(oldest);
        evicted++;
      }
      seen.set(jti, expiresAtMs);
      return true;
    },
    get size() {
      return seen.size;
    },
    get evicted() {
      return evicted;
    },
  };
}
