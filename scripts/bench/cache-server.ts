/**
 * A counting local host for the Workers Cache API (`caches.default`, `caches.open`), the
 * service workerd sends cache operations to (`cacheApiOutbound`): `match` is a GET with
 * the cache key's URL, `put` a PUT whose body is the serialised HTTP response, `delete`
 * a PURGE. It keeps entries in memory for their `s-maxage`/`max-age` and counts every
 * operation, so the bench can report the cache lookups a request makes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface CacheCounts {
  matches: number;
  hits: number;
  puts: number;
  deletes: number;
}

export interface CacheServer {
  /** `host:port` for workerd's external service. */
  address: string;
  /** The counts since the last call, then zeroed. */
  takeCounts(): CacheCounts;
  close(): Promise<void>;
}

interface Entry {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  expiresAt: number;
}

const zero = (): CacheCounts => ({ matches: 0, hits: 0, puts: 0, deletes: 0 });

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Decodes a chunked HTTP/1.1 body. */
function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf("\r\n", at);
    if (eol === -1) break;
    const size = Number.parseInt(data.subarray(at, eol).toString(), 16);
    if (!(size > 0)) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Parses the serialised response workerd puts: status line, headers, blank line, body. */
function parseStored(data: Buffer): Omit<Entry, "expiresAt"> {
  const end = data.indexOf("\r\n\r\n");
  const [statusLine, ...headerLines] = data.subarray(0, end).toString("latin1").split("\r\n");
  const headers = headerLines.map((line): [string, string] => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
  });
  const raw = data.subarray(end + 4);
  const chunked = headers.some(([k, v]) => k === "transfer-encoding" && v.toLowerCase().includes("chunked"));
  return {
    status: Number(statusLine!.split(" ")[1]),
    headers: headers.filter(([k]) => k !== "transfer-encoding" && k !== "content-length"),
    body: chunked ? dechunk(raw) : raw,
  };
}

/** Seconds the response may be kept, from `s-maxage` or `max-age`; 0 when it may not. */
function freshForS(headers: Array<[string, string]>): number {
  const control = headers.find(([k]) => k === "cache-control")?.[1] ?? "";
  if (/\b(no-store|private)\b/i.test(control)) return 0;
  const age = /\bs-maxage=(\d+)/i.exec(control) ?? /\bmax-age=(\d+)/i.exec(control);
  return age === null ? 0 : Number(age[1]);
}

export async function startCacheServer(): Promise<CacheServer> {
  const entries = new Map<string, Entry>();
  let counts = zero();
  const keyOf = (req: IncomingMessage) => `${req.headers["cf-cache-namespaces"] ?? ""} ${req.url}`;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const key = keyOf(req);
    if (req.method === "GET") {
      counts.matches++;
      const entry = entries.get(key);
      if (entry === undefined || entry.expiresAt <= Date.now()) {
        entries.delete(key);
        res.writeHead(504, { "cf-cache-status": "MISS" }).end();
        return;
      }
      counts.hits++;
      res.writeHead(entry.status, [...entry.headers.flat(), "cf-cache-status", "HIT"]).end(entry.body);
      return;
    }
    if (req.method === "PUT") {
      counts.puts++;
      const stored = parseStored(await readBody(req));
      const ttlS = freshForS(stored.headers);
      if (ttlS > 0) entries.set(key, { ...stored, expiresAt: Date.now() + ttlS * 1000 });
      res.writeHead(204).end();
      return;
    }
    if (req.method === "PURGE") {
      counts.deletes++;
      res.writeHead(entries.delete(key) ? 200 : 404).end();
      return;
    }
    res.writeHead(405).end();
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.writeHead(500).end());
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    takeCounts() {
      const taken = counts;
      counts = zero();
      return taken;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
