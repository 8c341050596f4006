/**
 * The key store: every KV read and write of key records goes through here, for the
 * routes and the CLI alike (docs/kv-schema.md lists the prefixes).
 *
 * Reads on the authentication path are cached per isolate (positive and negative,
 * TTL + LRU bound). A cached entry is read again shortly before it expires by one request
 * while every other request keeps using it, so a key in use is read about once per TTL and
 * never drops out of the cache under traffic. A pending read is never shared between
 * requests: in workerd, another request continuing on it runs in the reading request's I/O
 * context, where its own body stream is refused (a 502) or it is cancelled when the
 * reading request ends (a hang) — `npm run bench` saw both under load. Requests that miss a
 * key another request is reading wait for that read to land in the cache instead, in their
 * own context, and read it themselves only if it does not come. A write made in
 * this isolate is pinned in memory for longer than any KV cache can be stale, so a revoke
 * takes effect here on the very next request and no later read can re-cache the old record.
 *
 * Every change is also appended to the key change log (src/keys/change-log.ts) after KV
 * has it, and every lookup lays the log's recent changes over KV (src/keys/sync.ts), so
 * other isolates and locations judge a changed key by its new record within
 * `KEY_CHANGE_BOUND_S` instead of KV's `KV_BOUND_S`. The log is optional here: a store
 * without one (seeding before a gateway starts, the bench and the soak) is bound by KV alone.
 */
import { GatewayError } from "../errors.ts";
import { LruCache } from "../lib/lru-cache.ts";
import { auditChange, type ChangeContext, type KeyAction, SYSTEM_CHANGE } from "./changes.ts";
import type { ChangeEntry } from "./change-log.ts";
import { generateKeyId, generateSecret, isWellFormedKeyId } from "./format.ts";
import { decodeStoredHash, digestSecret, HASH_SCHEME, hashSecret, timingSafeEqual, toHex } from "./hash.ts";
import { isKeyRecord, kvKeys, toKeyObject, type KeyObject, type KeyRecord } from "./record.ts";
import { KEY_CHANGE_BOUND_S, type KeySync } from "./sync.ts";

/** How long a KV edge cache may serve a record (KV's `cacheTtl`, its minimum is 30 s). */
export const KV_CACHE_TTL_S = 60;
/** How long this isolate trusts a record it read. */
export const RECORD_TTL_MS = 30_000;
/** How long this isolate remembers that a key_id does not exist. */
export const NEGATIVE_TTL_MS = 30_000;
/** A cached record this close to expiry is read again by the next request that uses it. */
export const REFRESH_AHEAD_MS = 2_000;
/** How long a request that misses waits for another request's read of the same key. */
export const JOIN_WAIT_MS = 1_000;
const JOIN_POLL_MS = 2;
/** A record written here overrides KV reads for this long (> KV cacheTtl + the record TTL, with room). */
export const PIN_MS = (KV_CACHE_TTL_S + 60) * 1000 + RECORD_TTL_MS;
/** `last_used_at` is written at most once per key per isolate in this window. */
export const LAST_USED_PRECISION_MS = 60_000;
/**
 * Worst case, in seconds, between a change KV alone carries (the log did not take it, or
 * the store has none) and every isolate judging the key by it: a location sees a KV write
 * when its cached copy expires (`cacheTtl`; KV's propagation is that same mechanism), and
 * an isolate keeps what it read for its record TTL.
 */
export const KV_BOUND_S = KV_CACHE_TTL_S + RECORD_TTL_MS / 1000;

/** How the Workers runtime words a KV operation the KV service refused as a bad request. */
const KV_BAD_REQUEST = /\bKV \w+ failed: 400\b/i;

/** A record prepared for verification: stored hashes decoded once, times parsed once. */
export interface KeyLookup {
  record: KeyRecord;
  current: Uint8Array | null;
  previous: Uint8Array | null;
  previousUntilMs: number;
  expiresAtMs: number;
  revokedAtMs: number;
  /** The change log's sequence number of this record; undefined when not known (read from KV, or a pin the log has not numbered). */
  seq?: number;
}

function prepare(record: KeyRecord): KeyLookup {
  const time = (iso: string | null) => (iso === null ? Number.POSITIVE_INFINITY : Date.parse(iso));
  return {
    record,
    current: decodeStoredHash(record.secret_hash),
    previous: record.previous_secret_hash === null ? null : decodeStoredHash(record.previous_secret_hash),
    previousUntilMs: record.previous_secret_expires_at === null ? 0 : Date.parse(record.previous_secret_expires_at),
    expiresAtMs: time(record.expires_at),
    revokedAtMs: time(record.revoked_at),
  };
}

/**
 * Which of the records known for a key judges it. A revoke is final (a key never comes
 * back), so any source that shows one wins; otherwise this isolate's own write, unless the
 * log holds a later change; then the log; then what KV gave.
 */
function newest(pinned?: KeyLookup, logged?: KeyLookup, cached?: KeyLookup): KeyLookup | undefined {
  for (const known of [pinned, logged, cached])
    if (known !== undefined && known.record.revoked_at !== null) return known;
  if (pinned !== undefined && (logged === undefined || pinned.seq === undefined || pinned.seq >= logged.seq!)) {
    return pinned;
  }
  return logged ?? cached;
}

/** Per-isolate caches. Module scope: they outlive a request; tests pass their own. */
export interface StoreCaches {
  records: LruCache<KeyLookup | null>;
  pinned: LruCache<KeyLookup>;
  lastUsedWrites: LruCache<true>;
  /** Keys a request is reading from KV right now (a mark, never a shared promise). */
  reading: LruCache<true>;
}

export function createStoreCaches(maxEntries = 10_000): StoreCaches {
  return {
    records: new LruCache(maxEntries),
    pinned: new LruCache(maxEntries),
    lastUsedWrites: new LruCache(maxEntries),
    reading: new LruCache(maxEntries),
  };
}

const isolateCaches = createStoreCaches();

export interface KeyStoreOptions {
  /** Milliseconds since the epoch. */
  now?: () => number;
  caches?: StoreCaches;
  /** A KV operation slower than this counts as KV being unavailable. */
  timeoutMs?: number;
  /** The key change log and this isolate's view of it; without it, changes are bound by KV alone. */
  sync?: KeySync;
}

/** What `create` and `roll` hand back: the object plus the secret, shown once. */
export interface KeyWithSecret {
  key: KeyObject;
  secret: string;
}

export interface KeyPage {
  data: KeyObject[];
  has_more: boolean;
  next_cursor: string | null;
}

/** A settled outcome of a management call on one key. */
export type KeyChange =
  | {
      ok: true;
      key: KeyObject;
      secret?: string;
      /** The bound in force for this change, in seconds: `KEY_CHANGE_BOUND_S` when logged, else `KV_BOUND_S`. */
      propagationSeconds?: number;
    }
  | { ok: false; code: "key_not_found" | "key_revoked" | "key_expired" };

export class KeyStore {
  readonly #kv: KVNamespace;
  readonly #now: () => number;
  readonly #caches: StoreCaches;
  readonly #timeoutMs: number;
  readonly #sync: KeySync | undefined;
  /** Log entries prepared once each (the view hands out the same entry objects until it changes). */
  readonly #preparedEntries = new WeakMap<ChangeEntry, KeyLookup | null>();

  constructor(kv: KVNamespace, options: KeyStoreOptions = {}) {
    this.#kv = kv;
    this.#now = options.now ?? Date.now;
    this.#caches = options.caches ?? isolateCaches;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#sync = options.sync;
  }

  /** The current time of this store's clock, in ms. */
  now(): number {
    return this.#now();
  }

  /**
   * The verification view of a key_id, from memory when possible; null when no such key.
   * Throws `service_unavailable` when KV fails: a KV error is never cached. An entry close
   * to expiry is still answered from memory while one request reads it again, in the
   * background when the caller passes its `waitUntil`.
   */
  async lookup(keyId: string, waitUntil?: (promise: Promise<unknown>) => void): Promise<KeyLookup | null> {
    // Synchronous while the view is fresh: only a view older than the bound makes the request wait.
    const changes = this.#sync?.changes(waitUntil);
    const entry = changes === undefined ? undefined : (changes instanceof Promise ? await changes : changes).get(keyId);
    const now = this.#now();
    const pinned = this.#caches.pinned.get(keyId, now);
    const logged = entry === undefined ? undefined : this.#fromLog(entry);
    if (pinned !== undefined || logged !== undefined) {
      // A known key changed recently: judged without KV (the log is newer than any KV read).
      return newest(pinned, logged, this.#caches.records.get(keyId, now) ?? undefined)!;
    }
    const cached = this.#caches.records.get(keyId, now);
    if (cached === undefined) return this.#miss(keyId);
    // Only known keys are refreshed ahead; a flood of unknown key_ids costs one read per negative TTL.
    if (cached === null || this.#caches.records.expiresAt(keyId)! - now > REFRESH_AHEAD_MS) return cached;
    if (this.#caches.reading.get(keyId, now) !== undefined) return cached;
    const refresh = this.#markedRead(keyId);
    if (waitUntil === undefined) return refresh.catch(() => cached);
    // A failed refresh keeps nothing: the entry stays valid until it expires, and the next
    // request in the window tries again.
    waitUntil(refresh.catch(() => undefined));
    return cached;
  }

  /** A log entry as a lookup, prepared once; undefined for anything that is not a record. */
  #fromLog(entry: ChangeEntry): KeyLookup | undefined {
    let found = this.#preparedEntries.get(entry);
    if (found === undefined) {
      found =
        isKeyRecord(entry.record) && entry.record.key_id === entry.key_id
          ? { ...prepare(entry.record), seq: entry.seq }
          : null;
      this.#preparedEntries.set(entry, found);
    }
    return found ?? undefined;
  }

  /** A key not in memory: wait for another request's read of it, or read it here. */
  async #miss(keyId: string): Promise<KeyLookup | null> {
    for (
      let waited = 0;
      waited < JOIN_WAIT_MS && this.#caches.reading.get(keyId, this.#now()) !== undefined;
      waited += JOIN_POLL_MS
    ) {
      await scheduler.wait(JOIN_POLL_MS);
      const now = this.#now();
      const found = this.#caches.pinned.get(keyId, now) ?? this.#caches.records.get(keyId, now);
      if (found !== undefined) return found;
    }
    return this.#markedRead(keyId);
  }

  /** Reads for a lookup with the key marked as being read; the mark lapses after the KV timeout. */
  async #markedRead(keyId: string): Promise<KeyLookup | null> {
    this.#caches.reading.set(keyId, true, this.#now() + this.#timeoutMs);
    try {
      return await this.#readForLookup(keyId);
    } finally {
      this.#caches.reading.delete(keyId);
    }
  }

  async #readForLookup(keyId: string): Promise<KeyLookup | null> {
    const value = await this.#guard(this.#kv.get(kvKeys.record(keyId), { type: "json", cacheTtl: KV_CACHE_TTL_S }));
    const lookup = isKeyRecord(value) && value.key_id === keyId ? prepare(value) : null;
    const now = this.#now();
    // A write made here while the read was in flight wins over what the read saw.
    const pinned = this.#caches.pinned.get(keyId, now);
    if (pinned !== undefined) return pinned;
    this.#caches.records.set(keyId, lookup, now + (lookup === null ? NEGATIVE_TTL_MS : RECORD_TTL_MS));
    return lookup;
  }

  /**
   * Records that the key was used now, at most once per `LAST_USED_PRECISION_MS` per
   * isolate. Returns the write to hand to `waitUntil`, or null when none is due.
   * Kept under its own KV key so it can never overwrite a concurrent revoke.
   */
  recordUse(keyId: string): Promise<void> | null {
    const now = this.#now();
    if (this.#caches.lastUsedWrites.get(keyId, now) !== undefined) return null;
    this.#caches.lastUsedWrites.set(keyId, true, now + LAST_USED_PRECISION_MS);
    return this.#guard(this.#kv.put(kvKeys.lastUsed(keyId), new Date(now).toISOString()));
  }

  /** Creates a key in `accountId`; the only time its secret exists in clear. */
  async create(
    accountId: string,
    input: { name: string; expiresAt: string | null },
    by: ChangeContext = SYSTEM_CHANGE,
  ): Promise<KeyWithSecret> {
    const now = this.#now();
    const keyId = generateKeyId();
    const secret = generateSecret();
    const record: KeyRecord = {
      v: 1,
      key_id: keyId,
      account_id: accountId,
      name: input.name,
      secret_hash: await hashSecret(secret),
      previous_secret_hash: null,
      previous_secret_expires_at: null,
      created_at: new Date(now).toISOString(),
      expires_at: input.expiresAt,
      revoked_at: null,
    };
    // The record first: an index entry without a record is skipped by list; the reverse would hide a live key.
    await this.#commit(record, "create", by, () =>
      Promise.all([
        this.#guard(this.#kv.put(kvKeys.accountEntry(accountId, now, keyId), keyId)),
        this.#indexSecret(record),
      ]),
    );
    return { key: toKeyObject(record, null), secret };
  }

  /** The key object, or null when the key does not exist in `accountId`. */
  async get(accountId: string, keyId: string): Promise<KeyObject | null> {
    const record = await this.#readOwned(accountId, keyId);
    if (record === null) return null;
    return toKeyObject(record, await this.#lastUsed(keyId));
  }

  /** One page of the account's keys, newest first, from the per-account index. */
  async list(accountId: string, options: { limit: number; cursor?: string | null }): Promise<KeyPage> {
    const cursor = options.cursor ?? undefined;
    const page = await this.#guard(
      this.#kv.list({ prefix: kvKeys.accountPrefix(accountId), limit: options.limit, cursor }).catch((error) => {
        // KV answers a cursor it did not issue with a 400 (workerd: "KV GET failed: 400 …"): the caller's mistake, not an outage.
        if (cursor !== undefined && error instanceof Error && KV_BAD_REQUEST.test(error.message)) {
          throw new GatewayError("invalid_cursor", { detail: "KV refused the list cursor" });
        }
        throw error;
      }),
    );
    const ids = page.keys.map((entry) => entry.name.slice(entry.name.lastIndexOf(":") + 1));
    const data: KeyObject[] = [];
    if (ids.length > 0) {
      const [records, used] = await Promise.all([
        this.#bulkGet(ids.map(kvKeys.record), "json"),
        this.#bulkGet(ids.map(kvKeys.lastUsed), "text"),
      ]);
      const now = this.#now();
      for (const id of ids) {
        const record = this.#caches.pinned.get(id, now)?.record ?? records.get(kvKeys.record(id));
        if (isKeyRecord(record) && record.account_id === accountId && record.key_id === id) {
          data.push(toKeyObject(record, (used.get(kvKeys.lastUsed(id)) as string | null | undefined) ?? null));
        }
      }
    }
    const hasMore = !page.list_complete;
    return { data, has_more: hasMore, next_cursor: hasMore ? (page as { cursor: string }).cursor : null };
  }

  /** Revokes a key of `accountId`. Idempotent: a second revoke keeps the first time. */
  async revoke(accountId: string, keyId: string, by: ChangeContext = SYSTEM_CHANGE): Promise<KeyChange> {
    const record = await this.#readOwned(accountId, keyId);
    if (record === null) return { ok: false, code: "key_not_found" };
    let propagationSeconds: number;
    if (record.revoked_at === null) {
      record.revoked_at = new Date(this.#now()).toISOString();
      propagationSeconds = await this.#commit(record, "revoke", by);
    } else {
      // KV has the revoke already; logging it again puts it in force everywhere in case the first log append failed.
      this.#pin(record);
      propagationSeconds = await this.#announce(record);
      auditChange(by, "revoke", { accountId, keyId }, this.#now());
    }
    return { ok: true, key: toKeyObject(record, await this.#lastUsed(keyId)), propagationSeconds };
  }

  /**
   * Gives the key a new secret. The old secret keeps working for `graceSeconds`
   * (0: stops at once). Only the secret replaced by this roll is kept: rolling twice
   * inside a grace period ends the older secret's grace.
   */
  async roll(
    accountId: string,
    keyId: string,
    graceSeconds: number,
    by: ChangeContext = SYSTEM_CHANGE,
  ): Promise<KeyChange> {
    const record = await this.#readOwned(accountId, keyId);
    if (record === null) return { ok: false, code: "key_not_found" };
    const now = this.#now();
    if (record.revoked_at !== null) return { ok: false, code: "key_revoked" };
    if (record.expires_at !== null && Date.parse(record.expires_at) <= now) return { ok: false, code: "key_expired" };
    const secret = generateSecret();
    const graceEnds = now + graceSeconds * 1000;
    record.previous_secret_hash = graceSeconds > 0 ? record.secret_hash : null;
    record.previous_secret_expires_at = graceSeconds > 0 ? new Date(graceEnds).toISOString() : null;
    record.secret_hash = await hashSecret(secret);
    const propagationSeconds = await this.#commit(record, "roll", by, () => this.#indexSecret(record));
    return { ok: true, key: toKeyObject(record, await this.#lastUsed(keyId)), secret, propagationSeconds };
  }

  /**
   * The record a management call acts on: this isolate's own write, the log's latest
   * change of the key (strongly consistent, so a roll here right after a revoke elsewhere
   * sees the revoke, which KV here may not show yet), and KV, judged by `newest`. When the
   * log is unreachable, KV alone.
   */
  async #readOwned(accountId: string, keyId: string): Promise<KeyRecord | null> {
    const pinned = this.#caches.pinned.get(keyId, this.#now());
    const [entry, value] = await Promise.all([
      this.#sync?.latest(keyId),
      pinned === undefined ? this.#guard(this.#kv.get(kvKeys.record(keyId), "json")) : undefined,
    ]);
    const stored = isKeyRecord(value) && value.key_id === keyId ? prepare(value) : undefined;
    const found = newest(pinned, entry == null ? undefined : this.#fromLog(entry), stored);
    if (found === undefined || found.record.account_id !== accountId) return null;
    return { ...found.record };
  }

  async #lastUsed(keyId: string): Promise<string | null> {
    return this.#guard(this.#kv.get(kvKeys.lastUsed(keyId), "text"));
  }

  /**
   * The one write path of a key change (SPEC §5): every create, roll and revoke, whoever
   * asks, ends here. It makes the change in force in this isolate at once (the pin),
   * stores the record in KV, appends it to the key change log (after KV: a change KV
   * refused is never logged, so nothing lives in the log alone), runs the change's own
   * extra writes (`alsoWrite`, e.g. the account index), and writes the audit line once all
   * of it is stored. Returns the bound in force for the change, in seconds.
   */
  async #commit(
    record: KeyRecord,
    action: KeyAction,
    by: ChangeContext,
    alsoWrite?: () => Promise<unknown>,
  ): Promise<number> {
    await this.#write(record);
    const bound = await this.#announce(record);
    if (alsoWrite !== undefined) await alsoWrite();
    auditChange(by, action, { accountId: record.account_id, keyId: record.key_id }, this.#now());
    return bound;
  }

  /**
   * Appends a stored record to the change log and numbers this isolate's pin with the
   * log's sequence, so a later change logged elsewhere wins over the pin. A log that
   * fails costs the bound (KV's), never the change. Returns the bound in force.
   */
  async #announce(record: KeyRecord): Promise<number> {
    const seq = this.#sync === undefined ? null : await this.#sync.append(record);
    if (seq === null) return KV_BOUND_S;
    const pinned = this.#caches.pinned.get(record.key_id, this.#now());
    if (pinned?.record === record) pinned.seq = seq;
    return KEY_CHANGE_BOUND_S;
  }

  async #write(record: KeyRecord): Promise<void> {
    this.#pin(record);
    try {
      await this.#guard(this.#kv.put(kvKeys.record(record.key_id), JSON.stringify(record)));
    } catch (error) {
      // A revoke stays in force here even when KV refused it (fail safe). Any other
      // change KV refused is dropped, so this isolate does not, say, accept only a
      // rolled secret that the caller never received.
      if (record.revoked_at === null) {
        this.#caches.pinned.delete(record.key_id);
        this.#caches.records.delete(record.key_id);
      }
      throw error;
    }
  }

  #pin(record: KeyRecord): void {
    const now = this.#now();
    const lookup = prepare(record);
    this.#caches.pinned.set(record.key_id, lookup, now + PIN_MS);
    this.#caches.records.delete(record.key_id);
  }

  /** Maps any KV failure or stall to `service_unavailable` (fail closed, SPEC §4). */
  async #guard<T>(operation: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new GatewayError("service_unavailable", { detail: `KV did not answer within ${this.#timeoutMs} ms` })),
        this.#timeoutMs,
      );
    });
    try {
      return await Promise.race([operation, timeout]);
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new GatewayError("service_unavailable", {
        detail: `KV failed: ${error instanceof Error ? error.name : "unknown"}`,
      });
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  // --- Leak reports (SPEC §10) -------------------------------------------------------------

  /** Writes the leak index entry of the record's current secret (docs/kv-schema.md, `secret:`). */
  #indexSecret(record: KeyRecord): Promise<void> {
    const digest = decodeStoredHash(record.secret_hash);
    if (digest === null) return Promise.resolve();
    return this.#guard(this.#kv.put(kvKeys.secretIndex(toHex(digest)), record.key_id));
  }

  /**
   * What each reported secret is, read fresh from KV (no edge cache: a key rolled a moment
   * ago must be found by its new secret). A candidate's key is the one the `secret:` index
   * names, else the key_id reported beside it (keys created before the index existed). Reads
   * are bulk (100 keys a call), so a 1,000-token report costs about 20 KV operations.
   */
  async matchLeaked(candidates: readonly LeakCandidate[]): Promise<LeakMatch[]> {
    const digests = await Promise.all(candidates.map((candidate) => digestSecret(candidate.secret)));
    const indexKeys = digests.map((digest) => kvKeys.secretIndex(toHex(digest)));
    const indexed = await this.#bulkGet(indexKeys, "text");
    const keyIds = candidates.map((candidate, i) => {
      const found = indexed.get(indexKeys[i]!);
      return typeof found === "string" && isWellFormedKeyId(found) ? found : candidate.keyId;
    });
    const recordKeys = [...new Set(keyIds.filter((id): id is string => id !== null))].map(kvKeys.record);
    const [stored, changes] = await Promise.all([this.#bulkGet(recordKeys, "json"), this.#sync?.changes()]);
    const now = this.#now();
    return candidates.map((_, i): LeakMatch => {
      const keyId = keyIds[i];
      if (keyId === null || keyId === undefined) return NOT_LIVE;
      // Judged as authentication judges it: a change logged elsewhere beats this location's KV copy.
      const value = stored.get(kvKeys.record(keyId));
      const entry = changes?.get(keyId);
      const key = newest(
        this.#caches.pinned.get(keyId, now),
        entry === undefined ? undefined : this.#fromLog(entry),
        isKeyRecord(value) && value.key_id === keyId ? prepare(value) : undefined,
      );
      if (key === undefined) return NOT_LIVE;
      if (now >= key.revokedAtMs || now >= key.expiresAtMs) return NOT_LIVE;
      const target = { accountId: key.record.account_id, keyId, secretHash: `${HASH_SCHEME}:${toHex(digests[i]!)}` };
      if (key.current !== null && timingSafeEqual(digests[i]!, key.current)) return { state: "live", ...target };
      if (key.previous !== null && now < key.previousUntilMs && timingSafeEqual(digests[i]!, key.previous)) {
        return { state: "grace", ...target };
      }
      return NOT_LIVE;
    });
  }

  /**
   * Kills a leaked secret through the one write path, the change attributed to the report
   * (its audit line names the source and URL, never the secret). A leaked current secret
   * revokes the key; a leaked previous secret still in its roll's grace period ends that
   * grace, so the secret the owner rolled to keeps working. Returns what was done, or null
   * when the key changed since `matchLeaked` and the secret no longer works anyway.
   */
  async revokeLeaked(
    match: LiveLeak,
    report: { source: string; url?: string },
    requestId: string,
  ): Promise<{ action: "revoked" | "grace_ended"; key: KeyObject } | null> {
    const by: ChangeContext = { actor: { type: "leak_report", source: report.source, url: report.url }, requestId };
    if (match.state === "live") {
      const change = await this.revoke(match.accountId, match.keyId, by);
      return change.ok ? { action: "revoked", key: change.key } : null;
    }
    const record = await this.#readOwned(match.accountId, match.keyId);
    if (record === null || record.previous_secret_hash !== match.secretHash) return null;
    record.previous_secret_hash = null;
    record.previous_secret_expires_at = null;
    await this.#commit(record, "end_grace", by);
    return { action: "grace_ended", key: toKeyObject(record, await this.#lastUsed(match.keyId)) };
  }

  /** KV's bulk `get`, 100 keys a call (its limit), as one map. */
  async #bulkGet(keys: readonly string[], type: "text" | "json"): Promise<Map<string, unknown>> {
    const chunks: string[][] = [];
    for (let i = 0; i < keys.length; i += KV_BULK_GET_MAX) chunks.push(keys.slice(i, i + KV_BULK_GET_MAX));
    const maps = await Promise.all(
      chunks.map((chunk) => this.#guard(this.#kv.get(chunk, type as "json") as Promise<Map<string, unknown>>)),
    );
    return new Map(maps.flatMap((map) => [...map]));
  }
}

/** KV's bulk read takes at most this many keys. */
const KV_BULK_GET_MAX = 100;

/** A reported secret: the secret, and the key_id when the report carried the pair. */
export interface LeakCandidate {
  secret: string;
  keyId: string | null;
}

/** A reported secret that works right now: its key's current secret, or its previous one in grace. */
export interface LiveLeak {
  state: "live" | "grace";
  accountId: string;
  keyId: string;
  /** The stored form of the matched secret, to find it again at write time. */
  secretHash: string;
}

/** What `matchLeaked` found for one candidate: nothing to do, or a working secret. */
export type LeakMatch = LiveLeak | { state: "not_live" };

const NOT_LIVE: LeakMatch = { state: "not_live" };
