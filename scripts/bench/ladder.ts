/**
 * Runs the cost ladder (workers/ladder.ts): one workerd per rung and probe and the real gateway,
 * measured at c=32 in short runs interleaved in random order, so load drifting on a shared
 * machine spreads over every rung alike. Reports the median CPU per request of each.
 */
import { join } from "node:path";
import { bundleWorker } from "./bundle.ts";
import { median, say } from "./format.ts";
import { PROBES, RUNGS } from "./ladder-rungs.ts";
import type { Pins } from "./measure.ts";
import type { BenchSettings } from "./settings.ts";
import type { Stack } from "./stack.ts";
import { startWorkerd, type Workerd, type WorkerdBinding } from "./workerd.ts";
import { runWrk } from "./wrk.ts";

export interface LadderStep {
  rung: string;
  /** A cumulative rung, a piece added alone to the passthrough, or a whole gateway. */
  kind: "rung" | "probe" | "gateway";
  cpuUsPerRequest: number;
  runs: number[];
}

interface Rung {
  name: string;
  kind: LadderStep["kind"];
  w: Workerd;
}

/** Starts the ladder's Workers: every rung and probe and a fresh gateway. */
async function startRungs(stack: Stack, pins: Pins, started: Rung[]): Promise<void> {
  const bundle = (worker: string) =>
    bundleWorker(join(import.meta.dirname, `workers/${worker}.ts`), join(stack.workDir, `${worker}/index.js`));
  const ladder = await bundle("ladder");
  const start = (script: string, bindings: Record<string, WorkerdBinding>) =>
    startWorkerd({
      script,
      bindings,
      kv: stack.kv,
      cpus: pins.workerd,
      logTo: join(stack.workDir, "ladder.log"),
    });
  for (const [names, kind] of [
    [RUNGS, "rung"],
    [PROBES, "probe"],
  ] as const) {
    for (const rung of names) {
      started.push({ name: rung, kind, w: await start(ladder, { ...stack.gateway.bindings, RUNG: rung }) });
    }
  }
  started.push({
    name: "gateway (fresh instance)",
    kind: "gateway",
    w: await stack.start("gateway", { log: "ladder-gateway.log" }),
  });
}

export async function runLadder(options: {
  stack: Stack;
  specFile: string;
  /** The main table's gateway: long-running, its caches full from the other scenarios. */
  gateway: Workerd;
  settings: BenchSettings;
  pins: Pins;
}): Promise<LadderStep[]> {
  const { specFile, pins } = options;
  const rungs: Rung[] = [];
  try {
    await startRungs(options.stack, pins, rungs);
    rungs.push({
      name: "gateway of the main table (caches full from the other scenarios)",
      kind: "gateway",
      w: options.gateway,
    });
    for (const { w } of rungs) await runWrk({ url: w.url, specFile, connections: 32, durationS: 1, cpus: pins.load });
    const samples = new Map<string, number[]>();
    for (let round = 0; round < options.settings.ladderRounds; round++) {
      for (const { name, w } of [...rungs].sort(() => Math.random() - 0.5)) {
        const before = w.cpuTimeUs();
        const result = await runWrk({
          url: w.url,
          specFile,
          connections: 32,
          durationS: options.settings.durationS,
          cpus: pins.load,
        });
        if (result.non2xx > 0) say(`  ! ladder ${name}: ${result.non2xx} answers other than 2xx`);
        samples.set(name, [...(samples.get(name) ?? []), (w.cpuTimeUs() - before) / result.requests]);
      }
    }
    return rungs.map(({ name, kind }) => {
      const runs = samples.get(name)!;
      return { rung: name, kind, cpuUsPerRequest: median(runs), runs };
    });
  } finally {
    for (const { w } of rungs) if (w !== options.gateway) await w.stop();
  }
}
