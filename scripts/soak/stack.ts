/**
 * The soak's stack, on the benchmark's harness: the gateway bundled as wrangler would
 * upload it (or a given bundle), run in workerd directly with its inspector open for the
 * heap probe, KV served by the counting local KV host, the loopback origin as the engine.
 * It answers a few sanity requests before any load, so a broken stack fails fast.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  type BenchKey,
  benchSigningKeys,
  bundleGateway,
  freePort,
  gatewayBindings,
  type KvNamespaceStore,
  type KvServer,
  kvStoreName,
  type Origin,
  REPO_ROOT,
  startKvServer,
  startOrigin,
  startWorkerd,
  type Workerd,
} from "../bench/lib.ts";
import { bearer, type SoakKeys, seedSoakKeys } from "./keys.ts";
import { readRss } from "./memory.ts";
import type { SoakSettings } from "./settings.ts";

export const say = (line = "") => process.stdout.write(`${line}\n`);
export const mb = (kb: number) => kb / 1024;
export const f0 = (n: number) => Math.round(n).toLocaleString("en-US");
export const f1 = (n: number) => n.toFixed(1);

/** Registers something to undo when the soak ends (or is interrupted). */
export type Defer = (undo: () => Promise<void> | void) => void;

export interface SoakStack {
  work: string;
  origin: Origin;
  kv: KvServer;
  store: KvNamespaceStore;
  keys: SoakKeys;
  gw: Workerd;
  inspectorPort: number;
  /** workerd's RSS before any load. */
  idleRssKb: number;
}

/** The bundle directory: the one given, or the working tree bundled now. */
async function bundle(settings: SoakSettings, work: string): Promise<string> {
  if (settings.bundleDir !== undefined) {
    say(`  using the bundle in ${resolve(settings.bundleDir)}`);
    return resolve(settings.bundleDir);
  }
  const t = performance.now();
  const built = await bundleGateway(join(work, "bundle"));
  say(`  bundled the gateway (wrangler deploy --dry-run) in ${f0(performance.now() - t)} ms: ${f0(built.bytes)} bytes`);
  return built.dir;
}

/** Fails unless `path` answers `status` (with `key` as the caller, or none). */
async function probe(gw: Workerd, path: string, key: BenchKey | null, status: number): Promise<void> {
  const headers: Record<string, string> = { "cf-connecting-ip": "203.0.113.99" };
  if (key !== null) headers.authorization = bearer(key);
  const res = await fetch(`${gw.url}${path}`, { headers });
  await res.arrayBuffer();
  if (res.status !== status) throw new Error(`sanity check: ${path} answered ${res.status}, expected ${status}`);
}

export async function startSoakStack(settings: SoakSettings, defer: Defer): Promise<SoakStack> {
  const work = mkdtempSync(join(tmpdir(), "nixflex-soak-"));
  defer(() => rmSync(work, { recursive: true, force: true }));
  const bundleDir = await bundle(settings, work);

  const origin = await startOrigin();
  defer(() => origin.close());
  const kv = startKvServer();
  defer(() => kv.close());
  const store = kv.namespace(kvStoreName("API_KEYS"));
  const keys = await seedSoakKeys(store);

  // The working tree's wrangler.toml bindings, with the failure limit this soak checks.
  const { bindings } = await gatewayBindings(REPO_ROOT, join(bundleDir, "index.js"), {
    engineUrl: origin.url,
    signingKeys: benchSigningKeys(),
  });
  bindings.AUTH_FAILURE_LIMITER = { ratelimit: { limit: settings.failureLimit, period: settings.failurePeriodS } };
  const inspectorPort = await freePort();
  const gw = await startWorkerd({
    bundleDir,
    kv,
    inspectorPort,
    bindings,
    // Every request logs a JSON line: ~1 MB/s at saturation. Kept only when asked.
    logTo: settings.workerdLog === undefined ? "/dev/null" : resolve(settings.workerdLog),
  });
  defer(() => gw.stop());
  const idleRssKb = readRss(gw.pid).rssKb;
  say(`  workerd pid ${gw.pid} listening after ${f0(gw.listeningMs)} ms; RSS ${f1(mb(idleRssKb))} MB idle`);

  await probe(gw, "/healthz", null, 200);
  await probe(gw, "/v1/agents/sanity", keys.valid[0]!, 200);
  await probe(gw, "/v1/keys?limit=1", keys.valid[0]!, 200);
  await probe(gw, "/v1/agents/sanity", keys.revoked[0]!, 401);
  await probe(gw, "/v1/agents/sanity", keys.expired[0]!, 401);
  store.takeCounts();
  origin.takeCount();
  return { work, origin, kv, store, keys, gw, inspectorPort, idleRssKb };
}
