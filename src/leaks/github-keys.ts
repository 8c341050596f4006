/**
 * GitHub's secret-scanning signing keys (the keys document at
 * `GITHUB_SECRET_SCANNING_KEYS_URL`: `{"public_keys":[{"key_identifier","key","is_current"}]}`,
 * each key a PEM SPKI ECDSA P-256 public key), cached per isolate. An unknown identifier
 * fetches the document again, at most once per `REFETCH_INTERVAL_MS` (GitHub rate-limits the
 * URL), and the whole set is refreshed after `KEYS_TTL_MS` so a key GitHub withdraws stops
 * verifying. A fetch is never shared between requests (workerd ties I/O to the request that
 * started it, src/keys/store.ts): a request that finds another one fetching waits for the
 * result to land in the cache instead.
 */
import { fromBase64 } from "../lib/base64.ts";
import { log } from "../log.ts";

/** The fewest milliseconds between two fetches of the keys document. */
export const REFETCH_INTERVAL_MS = 5_000;
/** How long a fetched document is trusted before the next request refreshes it. */
export const KEYS_TTL_MS = 60 * 60 * 1000;
/** A keys fetch slower than this counts as failed. */
export const KEYS_FETCH_TIMEOUT_MS = 3_000;
const WAIT_POLL_MS = 10;

/** A key to verify with, or why there is none. */
export type SigningKeyLookup = { ok: true; key: CryptoKey } | { ok: false; reason: "unknown_key" | "keys_unavailable" };

/** Decodes a PEM `PUBLIC KEY` block to its DER bytes, or null. */
function pemToDer(pem: string): Uint8Array<ArrayBuffer> | null {
  const match = /^-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----\s*$/.exec(pem.trim());
  return match === null ? null : fromBase64(match[1]!.replace(/\s+/g, ""));
}

/** Imports every usable key of a keys document; entries that are not P-256 keys are skipped. */
async function importDocument(doc: unknown): Promise<Map<string, CryptoKey>> {
  const list = (doc as { public_keys?: unknown } | null)?.public_keys;
  if (!Array.isArray(list)) throw new Error("keys document has no public_keys array");
  const keys = new Map<string, CryptoKey>();
  for (const entry of list as unknown[]) {
    const { key_identifier: id, key: pem } = (entry ?? {}) as Record<string, unknown>;
    if (typeof id !== "string" || id === "" || typeof pem !== "string") continue;
    const der = pemToDer(pem);
    if (der === null) continue;
    try {
      keys.set(
        id,
        await crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]),
      );
    } catch {
      // Not a P-256 key: it can verify nothing of ours, and the other keys stay usable.
    }
  }
  return keys;
}

/** GitHub's signing keys for one keys-document URL, per isolate (see the module comment). */
export class GitHubKeys {
  readonly #url: string;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  #keys = new Map<string, CryptoKey>();
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #lastAttempt = Number.NEGATIVE_INFINITY;
  #fetching = false;

  constructor(url: string, fetcher: typeof fetch, now: () => number = Date.now) {
    this.#url = url;
    this.#fetch = fetcher;
    this.#now = now;
  }

  /** The key named `identifier`, fetching the document when it is unknown or stale (rate-limited). */
  async key(identifier: string): Promise<SigningKeyLookup> {
    const now = this.#now();
    const cached = this.#keys.get(identifier);
    const fresh = now - this.#fetchedAt < KEYS_TTL_MS;
    if (cached !== undefined && fresh) return { ok: true, key: cached };
    if (this.#fetching) await this.#awaitOtherFetch();
    else if (now - this.#lastAttempt >= REFETCH_INTERVAL_MS) await this.#refresh();
    const found = this.#keys.get(identifier);
    if (found !== undefined) return { ok: true, key: found };
    return { ok: false, reason: this.#fetchedAt === Number.NEGATIVE_INFINITY ? "keys_unavailable" : "unknown_key" };
  }

  async #awaitOtherFetch(): Promise<void> {
    for (let waited = 0; this.#fetching && waited < KEYS_FETCH_TIMEOUT_MS; waited += WAIT_POLL_MS) {
      await scheduler.wait(WAIT_POLL_MS);
    }
  }

  async #refresh(): Promise<void> {
    this.#lastAttempt = this.#now();
    this.#fetching = true;
    try {
      const response = await this.#fetch(this.#url, {
        headers: { Accept: "application/json", "User-Agent": "nixflex-gateway" },
        signal: AbortSignal.timeout(KEYS_FETCH_TIMEOUT_MS),
      });
      if (!response.ok) throw new Error(`keys document answered ${response.status}`);
      const keys = await importDocument(await response.json());
      this.#keys = keys;
      this.#fetchedAt = this.#now();
    } catch (error) {
      // The cached keys stay in use: a GitHub outage must not stop reports signed with a known key.
      log("warn", "github_keys_fetch_failed", {
        detail: error instanceof Error ? error.message.slice(0, 200) : "unknown",
      });
    } finally {
      this.#fetching = false;
    }
  }
}
