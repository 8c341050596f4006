/**
 * Blocking I/O per forwarded request: what a gateway waits on besides the engine. A fresh
 * instance of each gateway build (not the measured ones, so nothing here touches their
 * CPU figures) answers a stream of hot-key requests while every kind of I/O is counted:
 * KV reads (the KV host), Cache API lookups (the cache host), Durable Object calls (a
 * wrapper module around the bundle counts calls on the stubs of every Durable Object
 * binding) and outbound fetches (all of them go through a counting proxy, which passes the
 * engine's on to the origin and refuses any other).
 */
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Bundle } from "./bundle.ts";
import type { GatewayBindings } from "./bindings.ts";
import { bearer } from "./scenarios.ts";
import type { Stack } from "./stack.ts";
import { startWorkerd } from "./workerd.ts";

export interface IoCensus {
  label: string;
  requests: number;
  kvReads: number;
  cacheLookups: number;
  durableObjectCalls: number;
  engineRequests: number;
  /** Outbound fetches to anything but the engine, by host. */
  otherFetches: Record<string, number>;
}

const IO_PATH = "/__bench/io";

/** The wrapper main module: the bundle's own exports, its fetch given an env whose DO stubs count calls. */
function wrapperSource(durableObjectBindings: string[]): string {
  return `import gateway from "./gateway.js";
export * from "./gateway.js";
const BINDINGS = ${JSON.stringify(durableObjectBindings)};
let calls = 0;
const counted = (stub) => new Proxy(stub, {
  get(target, key) {
    const value = Reflect.get(target, key);
    if (typeof value !== "function" || key === "then") return value;
    return (...args) => { calls++; return Reflect.apply(value, target, args); };
  },
});
const namespace = (ns) => new Proxy(ns, {
  get(target, key) {
    const value = Reflect.get(target, key);
    if (typeof value !== "function") return value;
    if (key === "get" || key === "getByName") return (...args) => counted(Reflect.apply(value, target, args));
    return (...args) => Reflect.apply(value, target, args);
  },
});
const envs = new WeakMap();
function wrap(env) {
  let out = envs.get(env);
  if (out === undefined) {
    out = { ...env };
    for (const name of BINDINGS) out[name] = namespace(env[name]);
    envs.set(env, out);
  }
  return out;
}
export default {
  ...gateway,
  fetch(request, env, ctx) {
    if (new URL(request.url).pathname === ${JSON.stringify(IO_PATH)}) {
      const taken = calls;
      calls = 0;
      return Response.json({ durableObjectCalls: taken });
    }
    return gateway.fetch(request, wrap(env), ctx);
  },
};
`;
}

/** A bundle directory whose main module is the counting wrapper around `bundle`'s. */
function wrappedBundle(bundle: Bundle, bindings: GatewayBindings, dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const file of readdirSync(bundle.dir)) {
    if (file.endsWith(".js") || file.endsWith(".mjs"))
      copyFileSync(join(bundle.dir, file), join(dir, file === "index.js" ? "gateway.js" : file));
  }
  const doBindings = Object.entries(bindings.bindings)
    .filter(([, b]) => typeof b === "object" && "durableObject" in b)
    .map(([name]) => name);
  writeFileSync(join(dir, "index.js"), wrapperSource(doBindings));
  return dir;
}

/** A proxy for every outbound fetch: the engine's go on to the origin, others are counted and refused. */
async function startOutboundCounter(originUrl: string) {
  const origin = new URL(originUrl);
  const counts = { engine: 0, other: {} as Record<string, number> };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const host = req.headers.host ?? "?";
    if (host !== origin.host) {
      counts.other[host] = (counts.other[host] ?? 0) + 1;
      res.writeHead(502).end();
      return;
    }
    counts.engine++;
    const upstream = httpRequest(
      { host: origin.hostname, port: origin.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    take() {
      const taken = { engine: counts.engine, other: { ...counts.other } };
      counts.engine = 0;
      counts.other = {};
      return taken;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Counts the I/O of `requests` hot-key requests, after `warmup` that fill the isolate's caches. */
async function census(
  stack: Stack,
  label: string,
  build: { bundle: Bundle; bindings: GatewayBindings },
  dir: string,
  requests = 200,
  warmup = 20,
): Promise<IoCensus> {
  const outbound = await startOutboundCounter(stack.origin.url);
  const w = await startWorkerd({
    bundleDir: wrappedBundle(build.bundle, build.bindings, dir),
    bindings: build.bindings.bindings,
    kv: stack.kv,
    globalOutbound: outbound.address,
    logTo: join(stack.workDir, "io-census.log"),
  });
  const store = stack.kv.namespace("api-keys");
  const headers = { authorization: bearer(stack.keys.hot), "cf-connecting-ip": "203.0.113.7" };
  const send = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${w.url}/v1/agents/a1?limit=10`, { headers });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`I/O census (${label}): a hot-key request answered ${r.status}`);
    }
  };
  const ioCounts = async () => (await (await fetch(w.url + IO_PATH)).json()) as { durableObjectCalls: number };
  try {
    await send(warmup);
    // Background work of the warm-up (a last_used_at write, a refresh) lands before counting starts.
    await new Promise((resolve) => setTimeout(resolve, 300));
    store.takeCounts();
    w.cache.takeCounts();
    outbound.take();
    await ioCounts();
    await send(requests);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const out = outbound.take();
    return {
      label,
      requests,
      kvReads: store.takeCounts().reads,
      cacheLookups: w.cache.takeCounts().matches,
      durableObjectCalls: (await ioCounts()).durableObjectCalls,
      engineRequests: out.engine,
      otherFetches: out.other,
    };
  } finally {
    await w.stop();
    await outbound.close();
  }
}

/** The census of the working tree's gateway, and of the baseline's when there is one. */
export async function ioCensus(stack: Stack): Promise<IoCensus[]> {
  const out = [
    await census(
      stack,
      "working tree",
      { bundle: stack.bundle, bindings: stack.gateway },
      join(stack.workDir, "census-gateway"),
    ),
  ];
  if (stack.baseline && stack.baselineBindings)
    out.push(
      await census(
        stack,
        `baseline ${stack.baseline.ref}`,
        { bundle: stack.baseline.bundle, bindings: stack.baselineBindings },
        join(stack.workDir, "census-baseline"),
      ),
    );
  return out;
}
