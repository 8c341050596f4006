/**
 * A local Workers KV for workerd run directly: an HTTP server that speaks the protocol
 * workerd's `kvNamespace` binding uses towards its backing service (the same one
 * Miniflare's KV worker answers), keeps values in memory, optionally persists them to a
 * directory, and counts every operation. It runs in the calling Node process, so the
 * CPU of serving KV never lands on the measured workerd process — as in production,
 * where KV is a remote service and only the Worker's side of a read costs its CPU.
 *
 * Protocol (each namespace on its own loopback port; keys URL-encoded in the path):
 *   GET    /<key>?urlencoded=true[&cache_ttl=N]   200 value (+ CF-Expiration, CF-KV-Metadata) | 404
 *   POST   /bulk/get  {"keys":[…],"type":"text"|"json","withMetadata"?:bool}   200 {key: value|null}
 *   PUT    /<key>?urlencoded=true[&expiration=S|&expiration_ttl=S]   body = value, CF-KV-Metadata
 *   DELETE /<key>?urlencoded=true
 *   GET    /?prefix=&key_count_limit=&cursor=   200 {keys:[{name,expiration?,metadata?}], list_complete, cursor?}
 */
import { appendFileSync, mkdirSync, readFileSync, existsSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

interface Entry {
  value: Buffer;
  /** Seconds since the epoch. */
  expiration?: number;
  /** JSON text. */
  metadata?: string;
}

/** Operation counts of one namespace; `reads` is what a KV bill (and the targets) count. */
export interface KvCounts {
  /** Single-key GETs (hits and misses). */
  get: number;
  /** Single-key GETs that asked for an edge cache TTL (`cacheTtl`). */
  getWithCacheTtl: number;
  /** Keys read through bulk GETs. */
  bulkGetKeys: number;
  list: number;
  put: number;
  delete: number;
  /** get + bulkGetKeys + list. */
  reads: number;
  /** Single-key GETs by key prefix (text up to and including the first ':'). */
  getByPrefix: Record<string, number>;
}

const emptyCounts = (): KvCounts => ({
  get: 0,
  getWithCacheTtl: 0,
  bulkGetKeys: 0,
  list: 0,
  put: 0,
  delete: 0,
  reads: 0,
  getByPrefix: {},
});

/** One KV namespace: a sorted-on-demand map with optional append-only persistence. */
export class KvNamespaceStore {
  readonly name: string;
  readonly #entries = new Map<string, Entry>();
  readonly #logFile: string | undefined;
  counts: KvCounts = emptyCounts();
  /** Added to every answer, to stand in for a remote KV (0: answer at once). */
  latencyMs = 0;
  /** When set, every operation answers 500 (KV unavailable). */
  failing = false;

  constructor(name: string, persistDir?: string) {
    this.name = name;
    if (persistDir !== undefined) {
      mkdirSync(persistDir, { recursive: true });
      this.#logFile = join(persistDir, `${encodeURIComponent(name)}.jsonl`);
      if (existsSync(this.#logFile)) this.#replay(readFileSync(this.#logFile, "utf8"));
    }
  }

  #replay(text: string): void {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const op = JSON.parse(line) as {
        op: "put" | "delete";
        key: string;
        value?: string;
        expiration?: number;
        metadata?: string;
      };
      if (op.op === "delete") this.#entries.delete(op.key);
      else
        this.#entries.set(op.key, {
          value: Buffer.from(op.value ?? "", "base64"),
          expiration: op.expiration,
          metadata: op.metadata,
        });
    }
  }

  #persist(op: object): void {
    if (this.#logFile !== undefined) appendFileSync(this.#logFile, `${JSON.stringify(op)}\n`);
  }

  /** Reads without counting (for the harness itself). */
  peek(key: string): Buffer | null {
    return this.#live(key)?.value ?? null;
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry?.expiration !== undefined && entry.expiration * 1000 <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Writes without counting (seeding). */
  put(key: string, value: string | Buffer, options: { expiration?: number; metadata?: string } = {}): void {
    const buffer = typeof value === "string" ? Buffer.from(value) : value;
    this.#entries.set(key, { value: buffer, ...options });
    this.#persist({ op: "put", key, value: buffer.toString("base64"), ...options });
  }

  delete(key: string): void {
    this.#entries.delete(key);
    this.#persist({ op: "delete", key });
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Returns the counts so far and starts new ones. */
  takeCounts(): KvCounts {
    const counts = this.counts;
    this.counts = emptyCounts();
    return counts;
  }

  // --- counted operations, as the binding performs them ---

  /** Single-key GETs of one key since the store started (not reset by `takeCounts`). */
  readsOf(key: string): number {
    return this.#readsByKey.get(key) ?? 0;
  }

  readonly #readsByKey = new Map<string, number>();

  countedGet(key: string, withCacheTtl: boolean): Entry | undefined {
    this.#readsByKey.set(key, (this.#readsByKey.get(key) ?? 0) + 1);
    this.counts.get++;
    this.counts.reads++;
    if (withCacheTtl) this.counts.getWithCacheTtl++;
    const colon = key.indexOf(":");
    const prefix = colon === -1 ? "" : key.slice(0, colon + 1);
    this.counts.getByPrefix[prefix] = (this.counts.getByPrefix[prefix] ?? 0) + 1;
    return this.#live(key);
  }

  countedBulkGet(keys: string[]): Array<Entry | undefined> {
    this.counts.bulkGetKeys += keys.length;
    this.counts.reads += keys.length;
    return keys.map((key) => this.#live(key));
  }

  countedList(prefix: string, limit: number, cursor: string | undefined) {
    this.counts.list++;
    this.counts.reads++;
    const names = [...this.#entries.keys()].filter((k) => k.startsWith(prefix) && this.#live(k) !== undefined).sort();
    const start = cursor === undefined ? 0 : Number(Buffer.from(cursor, "base64url").toString());
    const page = names.slice(start, start + limit);
    const next = start + page.length;
    const keys = page.map((name) => {
      const entry = this.#entries.get(name)!;
      return { name, expiration: entry.expiration, metadata: entry.metadata };
    });
    return next < names.length
      ? { keys, list_complete: false, cursor: Buffer.from(String(next)).toString("base64url"), cacheStatus: null }
      : { keys, list_complete: true, cacheStatus: null };
  }

  countedPut(key: string, value: Buffer, options: { expiration?: number; metadata?: string }): void {
    this.counts.put++;
    this.put(key, value, options);
  }

  countedDelete(key: string): void {
    this.counts.delete++;
    this.delete(key);
  }
}

export interface KvServer {
  /** The store of a namespace (created on first use). */
  namespace(name: string): KvNamespaceStore;
  /**
   * Serves a namespace on its own loopback port (workerd's binding sends the bare key as
   * the path, so namespaces are told apart by port) and returns its `host:port`.
   */
  serve(name: string): Promise<string>;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer = "",
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-length": String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

async function handle(store: KvNamespaceStore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://kv");
  if (store.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, store.latencyMs));
  if (store.failing) return send(res, 500, "KV unavailable (simulated)");
  const rawKey = url.pathname.slice(1);
  const key = url.searchParams.get("urlencoded")?.toLowerCase() === "true" ? decodeURIComponent(rawKey) : rawKey;

  if (req.method === "GET" && url.pathname === "/") {
    const limit = Number(url.searchParams.get("key_count_limit") ?? 1000);
    const result = store.countedList(
      url.searchParams.get("prefix") ?? "",
      limit,
      url.searchParams.get("cursor") ?? undefined,
    );
    return send(res, 200, JSON.stringify(result), { "content-type": "application/json" });
  }
  if (req.method === "POST" && url.pathname === "/bulk/get") {
    const body = JSON.parse((await readBody(req)).toString()) as {
      keys: string[];
      type?: string;
      withMetadata?: boolean;
    };
    const out: Record<string, unknown> = {};
    const entries = store.countedBulkGet(body.keys);
    body.keys.forEach((k, i) => {
      const entry = entries[i];
      let value: unknown = null;
      if (entry !== undefined)
        value = body.type === "json" ? JSON.parse(entry.value.toString()) : entry.value.toString();
      out[k] =
        body.withMetadata && value !== null
          ? { value, metadata: entry?.metadata ? JSON.parse(entry.metadata) : null }
          : value;
    });
    return send(res, 200, JSON.stringify(out), { "content-type": "application/json" });
  }
  if (req.method === "GET") {
    const entry = store.countedGet(key, url.searchParams.has("cache_ttl"));
    if (entry === undefined) return send(res, 404, "Not Found");
    const headers: Record<string, string> = {};
    if (entry.expiration !== undefined) headers["CF-Expiration"] = String(entry.expiration);
    if (entry.metadata !== undefined) headers["CF-KV-Metadata"] = entry.metadata;
    return send(res, 200, entry.value, headers);
  }
  if (req.method === "PUT") {
    const value = await readBody(req);
    const ttl = url.searchParams.get("expiration_ttl");
    const at = url.searchParams.get("expiration");
    const expiration =
      ttl !== null ? Math.floor(Date.now() / 1000) + Number(ttl) : at !== null ? Number(at) : undefined;
    const metadata = req.headers["cf-kv-metadata"];
    store.countedPut(key, value, { expiration, metadata: typeof metadata === "string" ? metadata : undefined });
    return send(res, 200);
  }
  if (req.method === "DELETE") {
    store.countedDelete(key);
    return send(res, 200);
  }
  send(res, 405, "Method Not Allowed");
}

/** Starts a KV host; `persistDir` keeps every namespace's writes across restarts. */
export function startKvServer(options: { persistDir?: string } = {}): KvServer {
  const namespaces = new Map<string, KvNamespaceStore>();
  const servers: Server[] = [];
  const namespace = (name: string): KvNamespaceStore => {
    let store = namespaces.get(name);
    if (store === undefined) {
      store = new KvNamespaceStore(name, options.persistDir);
      namespaces.set(name, store);
    }
    return store;
  };
  return {
    namespace,
    async serve(name) {
      const store = namespace(name);
      const server = createServer((req, res) => {
        handle(store, req, res).catch((error: unknown) =>
          send(res, 500, error instanceof Error ? error.message : "error"),
        );
      });
      server.keepAliveTimeout = 60_000;
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return `127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    async close() {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections();
              server.close(() => resolve());
            }),
        ),
      );
    },
  };
}
