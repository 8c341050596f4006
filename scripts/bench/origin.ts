/**
 * A fast loopback origin: the "engine" the benchmark forwards to. It drains every request
 * body and answers a small JSON body, or `?bytes=N` bytes when asked (the streamed-body
 * scenario). It runs in the calling Node process with keep-alive, so the per-request
 * cost it adds is the same for the passthrough Worker and the gateway.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface OriginRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
}

export interface Origin {
  /** `http://127.0.0.1:<port>` — what ENGINE_URL points at. */
  url: string;
  port: number;
  /** Requests answered since the last `takeCount()`. */
  takeCount(): number;
  /** Resolves with the next request the origin finishes reading (for sanity checks). */
  nextRequest(): Promise<OriginRequest>;
  close(): Promise<void>;
}

const SMALL = Buffer.from('{"ok":true}');
const MAX_BYTES = 64 * 1024 * 1024;

/** Starts the origin on `port` (0: any free port) on 127.0.0.1. */
export async function startOrigin(options: { port?: number } = {}): Promise<Origin> {
  let count = 0;
  let waiters: Array<(request: OriginRequest) => void> = [];
  const bodies = new Map<number, Buffer>();
  const bodyOf = (n: number): Buffer => {
    let body = bodies.get(n);
    if (body === undefined) {
      body = Buffer.alloc(n, 0x61);
      bodies.set(n, body);
    }
    return body;
  };

  const server: Server = createServer((req, res) => {
    let bodyBytes = 0;
    req.on("data", (chunk: Buffer) => {
      bodyBytes += chunk.length;
    });
    req.on("end", () => {
      count++;
      const url = req.url ?? "/";
      const query = url.indexOf("?bytes=");
      const size = query === -1 ? -1 : Math.min(MAX_BYTES, Number.parseInt(url.slice(query + 7), 10) || 0);
      const body = size < 0 ? SMALL : bodyOf(size);
      res.writeHead(200, {
        "content-type": size < 0 ? "application/json" : "application/octet-stream",
        "content-length": String(body.length),
      });
      res.end(body);
      if (waiters.length > 0) {
        const current = waiters;
        waiters = [];
        for (const resolve of current) resolve({ method: req.method ?? "", url, headers: req.headers, bodyBytes });
      }
    });
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    takeCount() {
      const n = count;
      count = 0;
      return n;
    },
    nextRequest: () => new Promise((resolve) => waiters.push(resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
