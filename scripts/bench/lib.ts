/**
 * The reusable parts of the benchmark harness, for other load tools (e.g. a soak test):
 *
 *   import { bundleGateway, startKvServer, startOrigin, startWorkerd, seedKeys, runWrk } from "./bench/lib.ts";
 *
 *   const bundle = await bundleGateway("/tmp/gw");                  // wrangler deploy --dry-run
 *   const origin = await startOrigin();                              // loopback engine
 *   const gw = await startWorkerd({
 *     bundleDir: bundle.dir,
 *     kvPersistDir: "/tmp/soak-kv",                                  // or `kv: startKvServer()` to share one
 *     bindings: {
 *       API_KEYS: { kvNamespace: "api-keys" },
 *       ENGINE_URL: origin.url,
 *       IDENTITY_SIGNING_KEYS: benchSigningKeys(),
 *       AUTH_FAILURE_LIMITER: { ratelimit: { limit: 60, period: 60 } },
 *       KEY_CHANGES: { durableObject: { className: "KeyChangeLog" } },
 *     },
 *     cpus: "0",                                                     // taskset, optional
 *   });
 *   const [key] = await seedKeys(gw.kv.namespace("api-keys"), 1);
 *   gw.cpuTimeUs(); gw.kv.namespace("api-keys").takeCounts();        // CPU and KV counters
 *   gw.cache.takeCounts();                                           // Cache API lookups
 *   await gw.stop(); await origin.close();
 */
export { type BaselineBuild, buildBaseline } from "./baseline.ts";
export { bundleExports, type GatewayBindings, gatewayBindings, kvStoreName } from "./bindings.ts";
export { type Bundle, bundleGateway, bundleWorker } from "./bundle.ts";
export { type CacheCounts, type CacheServer, startCacheServer } from "./cache-server.ts";
export { benchSigningKeys, garbageAuthorizations, kvAdapter, seedKeys, unknownKeys, type BenchKey } from "./keys.ts";
export { type KvCounts, KvNamespaceStore, type KvServer, startKvServer } from "./kv-server.ts";
export { type Origin, type OriginRequest, startOrigin } from "./origin.ts";
export { recordCpuProfile, summarizeProfile } from "./profile.ts";
export {
  freePort,
  processCpuUs,
  REPO_ROOT,
  type StartWorkerdOptions,
  startWorkerd,
  WORKERD_BIN,
  type Workerd,
  type WorkerdBinding,
} from "./workerd.ts";
export { ensureWrk, type RequestSpec, runWrk, type WrkResult, writeRequestSpec } from "./wrk.ts";
