/**
 * Everything a bench run measures against: the loopback origin (the engine), the KV host
 * with the seeded keys, the working tree's gateway bundle (and the baseline's), and how
 * to start each Worker in workerd.
 */
import { join } from "node:path";
import { kvKeys } from "../../src/keys/record.ts";
import { type BaselineBuild, buildBaseline } from "./baseline.ts";
import { type GatewayBindings, gatewayBindings, kvStoreName } from "./bindings.ts";
import { type Bundle, bundleComposition, bundleGateway, type BundleComposition } from "./bundle.ts";
import { f0, say } from "./format.ts";
import { benchSigningKeys, garbageAuthorizations, seedKeys, unknownKeys } from "./keys.ts";
import { type KvServer, startKvServer } from "./kv-server.ts";
import type { Pins } from "./measure.ts";
import { type Origin, startOrigin } from "./origin.ts";
import { CLIENT_ADDRESSES, MANY_KEYS, type ScenarioKeys, type Target, UNKNOWN_IDS } from "./scenarios.ts";
import { REPO_ROOT, startWorkerd, type Workerd } from "./workerd.ts";

export interface Stack {
  workDir: string;
  origin: Origin;
  kv: KvServer;
  signingKeys: string;
  keys: ScenarioKeys;
  /** `key:<hot key_id>`. */
  hotRecordKey: string;
  bundle: Bundle;
  composition: BundleComposition;
  /** The working tree's gateway bindings, from its wrangler.toml. */
  gateway: GatewayBindings;
  baseline?: BaselineBuild;
  baselineBindings?: GatewayBindings;
  /** Starts a target; `log` names its log file under workDir. */
  start(target: Target, options?: { log?: string; inspectorPort?: number }): Promise<Workerd>;
  close(): Promise<void>;
}

const PASSTHROUGH = join(import.meta.dirname, "workers/passthrough.js");

/** Bundles the gateway(s), starts the origin and the KV host, and seeds the keys. */
export async function buildStack(workDir: string, pins: Pins, baselineRef?: string): Promise<Stack> {
  say("Bundling the gateway (wrangler deploy --dry-run)…");
  const bundle = await bundleGateway(join(workDir, "gateway"));
  const composition = await bundleComposition(join(workDir, "composition/index.js"));
  say(
    `  ${f0(bundle.bytes)} bytes, ${f0(bundle.gzipBytes)} bytes gzip (minified: ${f0(composition.minifiedGzipBytes)} bytes gzip)`,
  );
  let baseline: BaselineBuild | undefined;
  if (baselineRef !== undefined) {
    say(`Bundling the baseline gateway from ${baselineRef} (git archive + wrangler deploy --dry-run)…`);
    baseline = await buildBaseline(baselineRef, workDir);
    say(`  ${baseline.commit.slice(0, 10)} ${baseline.subject}: ${f0(baseline.bundle.bytes)} bytes`);
  }

  const origin = await startOrigin();
  const kv = startKvServer();
  const store = kv.namespace(kvStoreName("API_KEYS"));
  const signingKeys = benchSigningKeys();
  say(`Seeding ${MANY_KEYS + 1} keys through the gateway's KeyStore…`);
  const [hot] = await seedKeys(store, 1);
  const keys: ScenarioKeys = {
    hot: hot!,
    many: await seedKeys(store, MANY_KEYS),
    unknown: unknownKeys(UNKNOWN_IDS),
    garbage: garbageAuthorizations(CLIENT_ADDRESSES),
  };
  store.takeCounts();

  const given = { engineUrl: origin.url, signingKeys };
  const gateway = await gatewayBindings(REPO_ROOT, bundle.file, given);
  const baselineBindings = baseline && (await gatewayBindings(baseline.tree, baseline.bundle.file, given));
  if (baseline && baselineBindings) baseline.durableObjects = baselineBindings.durableObjects;
  const hosted = [...gateway.durableObjects, ...(baseline?.durableObjects ?? [])];
  if (hosted.length > 0) say(`  hosting Durable Objects: ${hosted.join(", ")}`);

  const start: Stack["start"] = (target, { log, inspectorPort } = {}) => {
    const common = { kv, cpus: pins.workerd, logTo: join(workDir, log ?? `${target}.log`), inspectorPort };
    if (target === "passthrough")
      return startWorkerd({ ...common, script: PASSTHROUGH, bindings: { ORIGIN: origin.url } });
    const build = target === "gateway" ? { bundle, bindings: gateway } : { ...baseline!, bindings: baselineBindings! };
    return startWorkerd({ ...common, bundleDir: build.bundle.dir, bindings: build.bindings.bindings });
  };
  return {
    workDir,
    origin,
    kv,
    signingKeys,
    keys,
    hotRecordKey: kvKeys.record(hot!.keyId),
    bundle,
    composition,
    gateway,
    baseline,
    baselineBindings,
    start,
    async close() {
      await origin.close();
      await kv.close();
    },
  };
}
