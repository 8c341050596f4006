/**
 * How an isolate follows the key change log (src/keys/change-log.ts): each isolate keeps a
 * view of the log's recent changes, which `KeyStore.lookup` lays over what KV gives it, so
 * a key changed anywhere is judged by its new record here within `KEY_CHANGE_BOUND_S`.
 *
 * - A view younger than the sync interval is used as it is: no I/O at all.
 * - An older one is still used while one request refreshes it in the background
 *   (`waitUntil`); the refresh writes the module-level view when it lands, so no request
 *   ever awaits another request's promise (the I/O-context rule of src/keys/store.ts).
 * - A view older than `STALE_CAP_MS` (a fresh isolate, or one that sat idle) makes the
 *   request wait for a refresh, up to `REFRESH_WAIT_MS`. If none arrives the request is
 *   judged by what the isolate knows (its last view, then KV): a log outage costs the
 *   bound, never authentication.
 *
 * A refresh reads the location's cached copy first (Cache API, shared by every isolate of
 * the location) and asks the log only when that copy is older than the interval, so about
 * one request per location per interval reaches the Durable Object.
 */
import { log } from "../log.ts";
import type { ChangeEntry, ChangeLogApi, RecentChanges } from "./change-log.ts";

/**
 * The bound, in seconds, from a change stored in the log to every isolate of every
 * location judging the key by it. A request never uses a view older than this without
 * first trying to refresh it.
 */
export const KEY_CHANGE_BOUND_S = 5;
/** A view older than this makes the request wait for a refresh. */
export const STALE_CAP_MS = KEY_CHANGE_BOUND_S * 1000;
/** The longest a request waits for a refresh of a view older than the cap. */
export const REFRESH_WAIT_MS = 1_000;
/** Time left between the longest interval and the cap, for a background refresh to land. */
export const REFRESH_SLACK_MS = 1_000;
export const DEFAULT_SYNC_INTERVAL_MS = 2_000;
export const MIN_SYNC_INTERVAL_MS = 500;
/** The interval plus the time a background refresh takes must stay below the cap. */
export const MAX_SYNC_INTERVAL_MS = STALE_CAP_MS - REFRESH_SLACK_MS;
/** A log call slower than this counts as the log being unreachable. */
export const LOG_TIMEOUT_MS = 2_000;
/** At most one "log unreachable" warn line per isolate in this window. */
export const WARN_EVERY_MS = 60_000;
/** The location cache's key for the shared view. Never a public URL: the cache is a named, internal one. */
export const VIEW_CACHE_URL = "https://key-changes.nixflex.internal/recent";
const POLL_MS = 5;

/** What an isolate knows of the log; module scope in production, one per simulated isolate in tests. */
export interface SyncView {
  /** This isolate's clock just before the log was read for this view (ms); -Infinity before the first read. */
  asOf: number;
  seq: number;
  entries: ReadonlyMap<string, ChangeEntry>;
  /** Only the revokes of `entries` are left (the view outlived `trustMs`). */
  revokesOnly: boolean;
  /** A refresh is running until this time (a mark that lapses, never a shared promise). */
  refreshingUntil: number;
  /** When a refresh last failed: for one interval after it no request waits for another. */
  failedAt: number;
  lastWarnAt: number;
}

export function createSyncView(): SyncView {
  return {
    asOf: Number.NEGATIVE_INFINITY,
    seq: 0,
    entries: new Map(),
    revokesOnly: false,
    refreshingUntil: Number.NEGATIVE_INFINITY,
    failedAt: Number.NEGATIVE_INFINITY,
    lastWarnAt: Number.NEGATIVE_INFINITY,
  };
}

const isolateView = createSyncView();

export interface KeySyncOptions {
  log: ChangeLogApi;
  /** The location's shared cache. */
  locationCache: () => Promise<Cache>;
  intervalMs?: number;
  /**
   * How long a view's entries may override KV: KV's own bound (`KV_BOUND_S`). Once a view is
   * that old, KV shows every change in it or a later one, so only its revokes are kept.
   */
  trustMs: number;
  view?: SyncView;
  now?: () => number;
}

/** The copy of the log's answer stored in the location cache. */
interface CachedView extends RecentChanges {
  asOf: number;
}

/** Rejects when `promise` takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

const errorName = (error: unknown) => (error instanceof Error ? error.name : "unknown");

/** One isolate's follower of the change log, and the write path's door to it. */
export class KeySync {
  readonly #log: ChangeLogApi;
  readonly #locationCache: () => Promise<Cache>;
  readonly #intervalMs: number;
  readonly #trustMs: number;
  readonly #view: SyncView;
  readonly #now: () => number;

  constructor(options: KeySyncOptions) {
    this.#log = options.log;
    this.#locationCache = options.locationCache;
    this.#intervalMs = options.intervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
    this.#trustMs = options.trustMs;
    this.#view = options.view ?? isolateView;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The changes to lay over KV for this request. Synchronous while the view is younger
   * than the cap (a refresh may start in the background); a promise only when the
   * request has to wait for one.
   */
  changes(
    waitUntil?: (promise: Promise<unknown>) => void,
  ): ReadonlyMap<string, ChangeEntry> | Promise<ReadonlyMap<string, ChangeEntry>> {
    const view = this.#view;
    const now = this.#now();
    const age = now - view.asOf;
    if (age < this.#intervalMs) return view.entries;
    // A refresh failed within the interval: requests go on with what the isolate knows (its
    // last view, then KV) instead of each trying again; one tries after the interval.
    if (now - view.failedAt < this.#intervalMs) return this.#trusted(age);
    if (age < STALE_CAP_MS) {
      if (waitUntil !== undefined && view.refreshingUntil <= now) waitUntil(this.#refresh());
      return view.entries;
    }
    return this.#awaitFresh(now);
  }

  /** Waits for a fresher view: another request's refresh landing, or one made here. */
  async #awaitFresh(now: number): Promise<ReadonlyMap<string, ChangeEntry>> {
    const view = this.#view;
    const before = view.asOf;
    if (view.refreshingUntil > now) {
      for (let waited = 0; waited < REFRESH_WAIT_MS && view.asOf === before; waited += POLL_MS) {
        await scheduler.wait(POLL_MS);
      }
    } else {
      await within(this.#refresh(), REFRESH_WAIT_MS, "the key change log").catch(() => undefined);
    }
    if (view.asOf === before) {
      view.failedAt = this.#now();
      this.#warn("key_sync_stale", "refresh did not arrive in time");
    }
    return this.#trusted(this.#now() - view.asOf);
  }

  /**
   * The entries of a view that could not be refreshed. Past `trustMs` a non-revoke entry could
   * hide a later change that reached KV but not the log, so only revokes stay: a key this
   * isolate knows to be revoked is never let through.
   */
  #trusted(age: number): ReadonlyMap<string, ChangeEntry> {
    const view = this.#view;
    if (age >= this.#trustMs && !view.revokesOnly) {
      view.entries = new Map([...view.entries].filter(([, entry]) => entry.record.revoked_at !== null));
      view.revokesOnly = true;
    }
    return view.entries;
  }

  /** Refreshes the view from the location cache, or from the log when the cached copy is old. Never throws. */
  async #refresh(): Promise<void> {
    const view = this.#view;
    const started = this.#now();
    view.refreshingUntil = started + LOG_TIMEOUT_MS + REFRESH_WAIT_MS;
    try {
      // Without a usable location cache the isolate reads the log itself: the cache saves requests, it is not needed.
      const cache = await Promise.resolve()
        .then(this.#locationCache)
        .catch(() => null);
      const shared = cache === null ? null : await this.#readCached(cache, started);
      if (shared !== null) {
        this.#apply(shared);
        return;
      }
      const recent = await within(this.#log.recent(), LOG_TIMEOUT_MS, "the key change log");
      const fresh: CachedView = { asOf: started, seq: recent.seq, entries: recent.entries };
      this.#apply(fresh);
      if (cache !== null) {
        const maxAge = Math.max(1, Math.floor(this.#intervalMs / 1000));
        const body = new Response(JSON.stringify(fresh), {
          headers: { "content-type": "application/json", "cache-control": `max-age=${maxAge}` },
        });
        await cache.put(VIEW_CACHE_URL, body).catch(() => undefined);
      }
    } catch (error) {
      view.failedAt = this.#now();
      this.#warn("key_sync_failed", errorName(error));
    } finally {
      view.refreshingUntil = Number.NEGATIVE_INFINITY;
    }
  }

  /** The location's copy if it is younger than the interval by this isolate's clock (the cache's own expiry is not trusted). */
  async #readCached(cache: Cache, now: number): Promise<CachedView | null> {
    try {
      const hit = await within(cache.match(VIEW_CACHE_URL), LOG_TIMEOUT_MS, "the location cache");
      if (hit === undefined) return null;
      const copy = (await hit.json()) as CachedView;
      const age = now - copy.asOf;
      if (!(age >= 0 && age < this.#intervalMs) || !Array.isArray(copy.entries)) return null;
      return copy;
    } catch {
      return null;
    }
  }

  #apply(copy: CachedView): void {
    const view = this.#view;
    if (copy.asOf <= view.asOf) return;
    view.asOf = copy.asOf;
    view.seq = copy.seq;
    view.entries = new Map(copy.entries.map((entry) => [entry.key_id, entry]));
    view.revokesOnly = false;
  }

  /**
   * Records a stored change in the log. Returns its sequence number, or null when the log
   * could not take it: the change stands (KV has it) and the KV bound is in force for it.
   */
  async append(record: ChangeEntry["record"]): Promise<number | null> {
    try {
      const { seq } = await within(this.#log.append(record), LOG_TIMEOUT_MS, "the key change log");
      if (seq === null) throw new TypeError("the log refused the record");
      return seq;
    } catch (error) {
      // Every change that misses the log is worth its own line: its bound is KV's.
      log("warn", "key_change_not_logged", { key_id: record.key_id, reason: errorName(error), bound: "kv" });
      return null;
    }
  }

  /**
   * The key's latest change in the log (strongly consistent), null when the log has none,
   * undefined when the log is unreachable (the caller falls back to KV).
   */
  async latest(keyId: string): Promise<ChangeEntry | null | undefined> {
    try {
      return await within(this.#log.latest(keyId), LOG_TIMEOUT_MS, "the key change log");
    } catch (error) {
      log("warn", "key_change_log_unreachable", { key_id: keyId, reason: errorName(error), read_from: "kv" });
      return undefined;
    }
  }

  /** At most one line per isolate per `WARN_EVERY_MS`: a log outage must not flood the logs with every request. */
  #warn(event: string, reason: string): void {
    const now = this.#now();
    if (now - this.#view.lastWarnAt < WARN_EVERY_MS) return;
    this.#view.lastWarnAt = now;
    log("warn", event, { reason, bound: "kv" });
  }
}
