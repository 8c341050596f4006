/**
 * Faults, end to end (issue "Hostile world", item 4): the real local gateway (`wrangler dev`)
 * in front of a real HTTP engine on loopback that misbehaves on request. Each failure must
 * map to its SPEC §4 status, never leak, and leave the gateway serving.
 */
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startStack, type CreatedKey, type Stack } from "../support/stack.ts";

const MB = 1024 * 1024;
const BIG = 100 * MB;
const CHUNK = 256 * 1024;
/** The most workerd's resident memory may grow while 100 MB streams through it. */
const RSS_BOUND_MB = 48;

/** Deterministic pseudo-random chunk `i` (the same bytes on both sides, nothing held whole). */
function chunk(i: number): Uint8Array {
  const out = new Uint8Array(CHUNK);
  let x = (i + 1) * 2654435761;
  for (let j = 0; j < CHUNK; j += 4) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[j] = x & 0xff;
    out[j + 1] = (x >>> 8) & 0xff;
    out[j + 2] = (x >>> 16) & 0xff;
    out[j + 3] = x >>> 24;
  }
  return out;
}

function expectedHash(bytes: number): string {
  const hash = createHash("sha256");
  for (let i = 0; i * CHUNK < bytes; i++) hash.update(chunk(i));
  return hash.digest("hex");
}

/** A body stream of `bytes` bytes made of `chunk(i)`. */
function bodyStream(bytes: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i * CHUNK >= bytes) return controller.close();
      controller.enqueue(chunk(i++));
    },
  });
}

let engineCalls = 0;
/** When the gateway closed its connection for the last /hang request. */
let hangClosedAt: number | null = null;

/** The misbehaving engine: the path says how. */
function faultyEngine(req: IncomingMessage, res: ServerResponse): void {
  engineCalls++;
  const url = new URL(req.url ?? "/", "http://engine");
  switch (url.pathname) {
    case "/hang":
      hangClosedAt = null;
      req.socket.once("close", () => {
        hangClosedAt = Date.now();
      });
      return; // accepts, never answers
    case "/reset":
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(10 * MB) });
      res.write(chunk(0));
      setTimeout(() => req.socket.destroy(), 50);
      return;
    case "/redirect":
      req.resume();
      res.writeHead(302, { location: `http://127.0.0.1:${req.socket.localPort}/moved?x=1` });
      res.end();
      return;
    case "/engine-error":
      res.writeHead(503, { "content-type": "application/json", "x-engine": "yes" });
      res.end(JSON.stringify({ engine: "overloaded" }));
      return;
    case "/upload": {
      const hash = createHash("sha256");
      let bytes = 0;
      req.on("data", (part: Buffer) => {
        bytes += part.length;
        hash.update(part);
      });
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ bytes, sha256: hash.digest("hex") }));
      });
      return;
    }
    case "/download": {
      const bytes = Number(url.searchParams.get("bytes"));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(bytes) });
      let i = 0;
      const write = () => {
        while (i * CHUNK < bytes) {
          if (!res.write(chunk(i++))) return void res.once("drain", write);
        }
        res.end();
      };
      write();
      return;
    }
    default:
      req.resume();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: true, path: url.pathname }));
  }
}

/** The workerd processes of a stack: in the process group of the `wrangler dev` run on its state dir. */
function workerdPids(stack: Stack): number[] {
  const procs = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  const stat = (pid: string) => readFileSync(`/proc/${pid}/stat`, "utf8");
  const groupOf = (pid: string) =>
    Number(
      stat(pid)
        .slice(stat(pid).lastIndexOf(")") + 2)
        .split(" ")[2],
    );
  let group: number | undefined;
  for (const pid of procs) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(stack.persistDir)) group = groupOf(pid);
    } catch {
      // process ended while we looked
    }
    if (group !== undefined) break;
  }
  const pids: number[] = [];
  for (const pid of procs) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "workerd" && groupOf(pid) === group)
        pids.push(Number(pid));
    } catch {
      // gone
    }
  }
  return pids;
}

function rssMb(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    kb += Number(match?.[1] ?? 0);
  }
  return kb / 1024;
}

/** Runs `work` while sampling RSS every 100 ms; returns the baseline and the peak. */
async function sampleRss<T>(
  pids: number[],
  work: () => Promise<T>,
): Promise<{ result: T; baseline: number; peak: number }> {
  const baseline = rssMb(pids);
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pids));
  }, 100);
  try {
    const result = await work();
    peak = Math.max(peak, rssMb(pids));
    return { result, baseline, peak };
  } finally {
    clearInterval(timer);
  }
}

function expectEnvelope(body: string, type: string, code: string): void {
  const parsed = JSON.parse(body);
  expect(parsed).toEqual({ error: { type, code, message: expect.any(String) } });
  expect(body).not.toMatch(/127\.0\.0\.1|localhost|Error:|at \w+ \(/);
}

describe("faults: a misbehaving engine behind the real gateway", () => {
  let stack: Stack;
  let key: CreatedKey;
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${stack.gatewayUrl}${path}`, { ...init, headers: { authorization: key.authorization, ...init.headers } });

  beforeAll(async () => {
    stack = await startStack({ engine: faultyEngine, env: { ENGINE_TIMEOUT_MS: "2000" } });
    key = await stack.createKey("acct_faults");
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("answers 504 gateway_timeout when the engine accepts but never answers", async () => {
    const started = Date.now();
    const res = await call("/hang");
    const elapsed = Date.now() - started;
    expect(res.status).toBe(504);
    expectEnvelope(await res.text(), "api_error", "gateway_timeout");
    expect(res.headers.get("x-request-id")).toBeTruthy();
    expect(elapsed).toBeGreaterThanOrEqual(1_900);
    expect(elapsed).toBeLessThan(15_000);
    // The gateway does not leave the engine request hanging: its connection closes with the 504.
    await expect.poll(() => hangClosedAt, { timeout: 5_000 }).not.toBeNull();
    expect(hangClosedAt! - (started + elapsed)).toBeLessThan(2_000);
  });

  it("passes an engine redirect to the client with Location on the public host, without following it", async () => {
    const before = engineCalls;
    const res = await call("/redirect", { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe(`${stack.gatewayUrl}/moved?x=1`);
    expect(engineCalls - before).toBe(1);
  });

  it("passes an engine 5xx through as the engine's own answer", async () => {
    const res = await call("/engine-error");
    expect(res.status).toBe(503);
    expect(res.headers.get("x-engine")).toBe("yes");
    expect(await res.json()).toEqual({ engine: "overloaded" });
  });

  it("breaks the client's response when the engine resets mid-body, logs it, and keeps serving", async () => {
    const res = await call("/reset");
    expect(res.status).toBe(200);
    let received = 0;
    let broken = false;
    try {
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
      }
    } catch {
      broken = true;
    }
    // Either the stream errors or it ends short of the declared length: never a silent "complete".
    expect(broken || received < 10 * MB).toBe(true);
    await expect.poll(() => stack.gatewayLog(), { timeout: 10_000 }).toMatch(/response_stream_aborted/);
    const next = await call("/after-reset");
    expect(next.status).toBe(200);
    expect(await next.json()).toEqual({ ok: true, path: "/after-reset" });
  });

  it(`streams a 100 MB request body byte-identical with workerd RSS growing < ${RSS_BOUND_MB} MB`, async () => {
    const pids = workerdPids(stack);
    expect(pids.length).toBeGreaterThan(0);
    const { result, baseline, peak } = await sampleRss(pids, async () => {
      const res = await call("/upload", { method: "POST", body: bodyStream(BIG), duplex: "half" } as RequestInit);
      return { status: res.status, body: (await res.json()) as { bytes: number; sha256: string } };
    });
    console.log(JSON.stringify({ event: "rss_upload", baseline_mb: baseline.toFixed(1), peak_mb: peak.toFixed(1) }));
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ bytes: BIG, sha256: expectedHash(BIG) });
    expect(peak - baseline).toBeLessThan(RSS_BOUND_MB);
  });

  it(`streams a 100 MB response body byte-identical with workerd RSS growing < ${RSS_BOUND_MB} MB`, async () => {
    const pids = workerdPids(stack);
    const { result, baseline, peak } = await sampleRss(pids, async () => {
      const res = await call(`/download?bytes=${BIG}`);
      const hash = createHash("sha256");
      let bytes = 0;
      for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += part.length;
        hash.update(part);
      }
      return { status: res.status, bytes, sha256: hash.digest("hex") };
    });
    console.log(JSON.stringify({ event: "rss_download", baseline_mb: baseline.toFixed(1), peak_mb: peak.toFixed(1) }));
    expect(result).toEqual({ status: 200, bytes: BIG, sha256: expectedHash(BIG) });
    expect(peak - baseline).toBeLessThan(RSS_BOUND_MB);
  });

  it("never leaks a secret, Authorization value or JWT into the gateway's log", () => {
    const log = stack.gatewayLog();
    expect(log).not.toContain(key.secret);
    expect(log).not.toMatch(/nxfs_[0-9A-Za-z]{64}/);
    expect(log).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    expect(log).not.toMatch(/bearer\s+nxf_/i);
  });
});

describe("faults: an engine that refuses connections", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ engine: faultyEngine, env: { ENGINE_URL: `http://127.0.0.1:${await freePort()}` } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("answers 502 bad_gateway without naming the engine", async () => {
    const key = await stack.createKey("acct_refused");
    const res = await fetch(`${stack.gatewayUrl}/v1/agents`, { headers: { authorization: key.authorization } });
    expect(res.status).toBe(502);
    expectEnvelope(await res.text(), "api_error", "bad_gateway");
    const again = await fetch(`${stack.gatewayUrl}/healthz`);
    expect(again.status).toBe(200);
  });
});

describe("faults: a gateway with a malformed setting", () => {
  let stack: Stack;
  beforeAll(async () => {
    engineCalls = 0;
    stack = await startStack({
      engine: faultyEngine,
      env: { IDENTITY_SIGNING_KEYS: '{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"x"}]}' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("fails closed with 500 configuration_error on every path and never forwards", async () => {
    // Seeded into KV directly: this gateway answers the operator API with the same 500.
    const key = await stack.seedKey("acct_config");
    for (const path of ["/healthz", "/.well-known/jwks.json", "/v1/agents", "/v1/keys"]) {
      const res = await fetch(`${stack.gatewayUrl}${path}`, { headers: { authorization: key.authorization } });
      expect(res.status).toBe(500);
      expectEnvelope(await res.text(), "api_error", "configuration_error");
    }
    expect(engineCalls).toBe(0);
    await expect.poll(() => stack.gatewayLog(), { timeout: 10_000 }).toMatch(/IDENTITY_SIGNING_KEYS/);
  });
});
