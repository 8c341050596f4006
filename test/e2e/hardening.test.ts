/**
 * Odd requests over real HTTP (SPEC §4, §6): hop-by-hop and override headers, a GET with a
 * body, a WebSocket upgrade, a path at and over the length limit, and the cache bypass of
 * the engine subrequest. Requests are written byte by byte on a socket, because `fetch`
 * refuses to send most of these headers; the engine is a node:http server with Node's
 * default limits that records what it received.
 */
import type { IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CreatedKey, type Stack, startStack } from "../support/stack.ts";

/** `PATH_MAX_BYTES` of src/proxy/forward.ts, spelled out: that module needs the Workers runtime's globals. */
const PATH_MAX_BYTES = 4096;

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let stack: Stack;
let key: CreatedKey;
const received: Received[] = [];

beforeAll(async () => {
  stack = await startStack({
    engine: (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        received.push({
          method: req.method ?? "",
          url: req.url ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        // Hop-by-hop headers on the way back, and one the engine names in Connection.
        res.writeHead(200, {
          "content-type": "text/plain",
          connection: "keep-alive, x-engine-hop",
          "keep-alive": "timeout=5",
          "x-engine-hop": "1",
          "proxy-authenticate": "Basic",
        });
        res.end("engine ok");
      });
    },
  });
  key = await stack.createKey("acct_hardening");
});

afterAll(async () => {
  await stack?.stop();
});

interface RawAnswer {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** Sends `head` (request line and headers, without the blank line) and `body` on a fresh connection. */
function rawRequest(head: string[], body = ""): Promise<RawAnswer> {
  const url = new URL(stack.gatewayUrl);
  const text = `${[...head, `Host: ${url.host}`, "Connection: close"].join("\r\n")}\r\n\r\n${body}`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.setTimeout(30_000, () => socket.destroy(new Error("no answer within 30 s")));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const all = Buffer.concat(chunks).toString();
      const split = all.indexOf("\r\n\r\n");
      const [statusLine, ...lines] = all.slice(0, split).split("\r\n");
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(":");
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      resolve({ status: Number(statusLine!.split(" ")[1]), headers, body: all.slice(split + 4) });
    });
  });
}

/** Sends an authenticated request and returns the answer and what the engine received for it, if anything. */
async function send(method: string, path: string, headers: string[] = [], body = "") {
  const before = received.length;
  const answer = await rawRequest(
    [`${method} ${path} HTTP/1.1`, `Authorization: ${key.authorization}`, ...headers],
    body,
  );
  return { answer, engine: received.slice(before) };
}

function expectEnvelope(answer: RawAnswer, status: number, code: string) {
  expect(answer.status).toBe(status);
  expect(answer.headers.get("content-type")).toBe("application/json");
  expect(answer.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  if (answer.body !== "") expect(JSON.parse(answer.body).error).toMatchObject({ type: "invalid_request_error", code });
}

describe("hop-by-hop headers over real HTTP", () => {
  it("drops the well-known hop-by-hop request headers before the engine", async () => {
    const { answer, engine } = await send("GET", "/v1/hop", [
      "Keep-Alive: timeout=5",
      "TE: trailers",
      "Trailer: X-Checksum",
      "Proxy-Connection: keep-alive",
      "Proxy-Authorization: Basic dXNlcjpwYXNz",
    ]);
    expect(answer.status).toBe(200);
    expect(engine).toHaveLength(1);
    for (const name of ["keep-alive", "te", "trailer", "proxy-connection", "proxy-authorization"]) {
      expect(engine[0]!.headers[name], name).toBeUndefined();
    }
  });

  it("passes a header the client names in Connection: the runtime consumes Connection before the gateway sees it", async () => {
    // What really happens, pinned so a runtime change shows up here (README, "Behaviour where the spec is silent").
    const { engine } = await send("GET", "/v1/hop", ["Connection: x-client-hop", "X-Client-Hop: 1"]);
    expect(engine[0]!.headers.connection).toBeUndefined();
    expect(engine[0]!.headers["x-client-hop"]).toBe("1");
  });

  it("drops the engine's hop-by-hop response headers, and those it names in Connection", async () => {
    const { answer } = await send("GET", "/v1/hop");
    expect(answer.status).toBe(200);
    expect(answer.headers.get("keep-alive")).toBeUndefined();
    expect(answer.headers.get("proxy-authenticate")).toBeUndefined();
    expect(answer.headers.get("x-engine-hop")).toBeUndefined();
  });
});

describe("method and URL overrides", () => {
  it("never reach the engine", async () => {
    const { answer, engine } = await send("POST", "/v1/items", [
      "X-HTTP-Method-Override: DELETE",
      "X-Method-Override: DELETE",
      "X-HTTP-Method: DELETE",
      "X-Original-URL: /v1/admin",
      "X-Rewrite-URL: /v1/admin",
      "X-Forwarded-Prefix: /admin",
      "Content-Length: 0",
    ]);
    expect(answer.status).toBe(200);
    expect(engine[0]!.method).toBe("POST");
    expect(engine[0]!.url).toBe("/v1/items");
    const names = Object.keys(engine[0]!.headers);
    for (const name of [
      "x-http-method-override",
      "x-method-override",
      "x-http-method",
      "x-original-url",
      "x-rewrite-url",
      "x-forwarded-prefix",
    ]) {
      expect(names).not.toContain(name);
    }
  });
});

describe("requests the gateway answers itself", () => {
  it("answers a GET with a body 400 body_not_allowed, without contacting the engine", async () => {
    const { answer, engine } = await send("GET", "/v1/search", ["Content-Length: 5"], "hello");
    expectEnvelope(answer, 400, "body_not_allowed");
    expect(engine).toHaveLength(0);
  });

  it("answers a HEAD with a body 400, without a body of its own", async () => {
    const { answer, engine } = await send("HEAD", "/v1/search", ["Content-Length: 5"], "hello");
    expectEnvelope(answer, 400, "body_not_allowed");
    expect(answer.body).toBe("");
    expect(engine).toHaveLength(0);
  });

  it("cannot see a chunked GET body: the runtime discards it, and the engine gets a GET without one", async () => {
    // What really happens, pinned (README, "Behaviour where the spec is silent"): the Worker
    // sees neither a body nor Transfer-Encoding, so there is nothing to refuse.
    const { answer, engine } = await send(
      "GET",
      "/v1/search",
      ["Transfer-Encoding: chunked"],
      "5\r\nhello\r\n0\r\n\r\n",
    );
    expect(answer.status).toBe(200);
    expect(engine[0]!.body).toBe("");
  });

  it("forwards a GET with Content-Length: 0 (no body to lose)", async () => {
    const { answer, engine } = await send("GET", "/v1/search", ["Content-Length: 0"]);
    expect(answer.status).toBe(200);
    expect(engine).toHaveLength(1);
  });

  it("answers a WebSocket upgrade 400 upgrade_not_supported, without contacting the engine", async () => {
    const { answer, engine } = await send("GET", "/v1/stream", [
      "Upgrade: websocket",
      "Sec-WebSocket-Version: 13",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ]);
    expectEnvelope(answer, 400, "upgrade_not_supported");
    expect(engine).toHaveLength(0);
  });

  it(`forwards a path of ${PATH_MAX_BYTES} bytes to an engine with Node's default header limit`, async () => {
    const path = `/v1/${"p".repeat(PATH_MAX_BYTES - 4)}`;
    // With 4 KiB of the client's own headers: docs/engine-integration.md, "Header size", leaves it 5 KiB.
    const { answer, engine } = await send("GET", path, [
      "User-Agent: nixflex-e2e/1.0",
      "Accept: application/json",
      `X-Client-Data: ${"d".repeat(4096)}`,
    ]);
    expect(answer.status).toBe(200);
    expect(engine[0]!.url).toBe(path);
  });

  it("answers a longer path 414 uri_too_long, without contacting the engine", async () => {
    const { answer, engine } = await send("GET", `/v1/${"p".repeat(PATH_MAX_BYTES - 3)}`);
    expectEnvelope(answer, 414, "uri_too_long");
    expect(engine).toHaveLength(0);
  });
});

describe("the engine subrequest bypasses Cloudflare's cache", () => {
  it("is sent with cache: no-store, which the runtime marks with Pragma/Cache-Control: no-cache", async () => {
    const { engine } = await send("GET", "/v1/exports/report.csv");
    expect(engine[0]!.headers.pragma).toBe("no-cache");
    expect(engine[0]!.headers["cache-control"]).toBe("no-cache");
  });
});
