/**
 * The soak's load: every wrk class at once for the whole duration, key lifecycles beside
 * them, RSS and the isolate's heap sampled throughout, and the optional fault. Returns
 * what was seen; judging it is verdict.ts's.
 */
import { join } from "node:path";
import type { KvCounts } from "../bench/lib.ts";
import { type ClassResult, type RunningClass, startClass, type TrafficClass, writeClassSpec } from "./classes.ts";
import { connectHeapProbe } from "./heap.ts";
import { type LifecycleResult, runLifecycles } from "./lifecycle.ts";
import { readRss, type RssSample, startRssSampler } from "./memory.ts";
import type { SoakSettings } from "./settings.ts";
import { type Defer, f0, f1, mb, type SoakStack, say } from "./stack.ts";
import { trafficClasses } from "./traffic.ts";

export interface LoadOutcome {
  traffic: TrafficClass[];
  results: ClassResult[];
  wrkError?: string;
  lifecycle: LifecycleResult;
  samples: RssSample[];
  /** Epoch seconds when the load started. */
  loadStartedS: number;
  workerdAlive: boolean;
  kvCounts: KvCounts;
  originCount: number;
  /** RSS 2 s after the load, and the high-water mark (null when workerd died). */
  afterKb: number | null;
  hwmKb: number | null;
  faultNote?: string;
}

/** Self-test of the checks: KV fails for 2 s in the middle; the 503s must fail the soak. */
function injectKvDown(stack: SoakStack, settings: SoakSettings): string {
  setTimeout(
    () => {
      stack.store.failing = true;
      setTimeout(() => (stack.store.failing = false), 2000);
    },
    (settings.durationS / 2) * 1000,
  );
  return "fault injected: KV answered 500 for 2 s in the middle of the run";
}

export async function runLoad(stack: SoakStack, settings: SoakSettings, defer: Defer): Promise<LoadOutcome> {
  const { gw, keys } = stack;
  const traffic = trafficClasses(keys, settings);
  const running: Array<{ cls: TrafficClass; run: RunningClass }> = [];
  defer(() => {
    for (const r of running) r.run.kill();
  });
  const heap = await connectHeapProbe(stack.inspectorPort);
  defer(() => heap.close());
  const sampler = startRssSampler(gw.pid, settings.sampleMs, async () => {
    const h = await heap.usage();
    return { usedKb: h.usedBytes / 1024, totalKb: h.totalBytes / 1024 };
  });
  const loadStartedS = Date.now() / 1000;
  defer(() => sampler.stop());
  for (const cls of traffic) {
    const specFile = join(stack.work, `${cls.name}.spec`);
    writeClassSpec(specFile, `127.0.0.1:${gw.port}`, cls);
    running.push({ cls, run: startClass({ url: gw.url, specFile, cls, durationS: settings.durationS }) });
  }
  const stopCycles = new AbortController();
  const cycles = runLifecycles(
    { url: gw.url, admin: keys.admin, foreign: keys.foreign, intervalMs: settings.cycleMs, addressPrefix: "198.18" },
    stopCycles.signal,
  );
  say(
    `  load: ${traffic.map((c) => `${c.name} ×${c.connections}`).join(", ")}, lifecycle every ${settings.cycleMs} ms; ` +
      `for ${settings.durationS} s…`,
  );
  const faultNote = settings.fault === "kv-down" ? injectKvDown(stack, settings) : undefined;
  const progress = setInterval(() => {
    const last = sampler.samples.at(-1);
    if (last !== undefined) say(`  t=${f0(last.t)} s  workerd RSS ${f1(mb(last.rssKb))} MB`);
  }, 60_000);

  const results: ClassResult[] = [];
  let wrkError: string | undefined;
  for (const { run } of running) {
    try {
      results.push(await run.result);
    } catch (error) {
      wrkError = (error as Error).message;
    }
  }
  clearInterval(progress);
  stopCycles.abort();
  const lifecycle = await cycles;
  let workerdAlive = true;
  try {
    sampler.sample();
  } catch {
    workerdAlive = false;
  }
  sampler.stop();
  const kvCounts = stack.store.takeCounts();
  const originCount = stack.origin.takeCount();
  let afterKb: number | null = null;
  if (workerdAlive) {
    await new Promise((r) => setTimeout(r, 2000));
    afterKb = readRss(gw.pid).rssKb;
  }
  const hwmKb = workerdAlive ? readRss(gw.pid).hwmKb : null;
  return {
    traffic,
    results,
    wrkError,
    lifecycle,
    samples: sampler.samples,
    loadStartedS,
    workerdAlive,
    kvCounts,
    originCount,
    afterKb,
    hwmKb,
    faultNote,
  };
}
