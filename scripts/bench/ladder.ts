/**
 * Runs the cost ladder (workers/ladder.ts): one workerd per rung plus the real gateway,
 * measured at c=32 in short runs interleaved in random order, so load drifting on a shared
 * machine spreads over every rung alike. Reports the median CPU per request of each.
 */
import { join } from "node:path";
import { bundleWorker } from "./bundle.ts";
import { RUNGS } from "./workers/ladder.ts";
import { startWorkerd, type Workerd } from "./workerd.ts";
import { runWrk } from "./wrk.ts";

export interface LadderStep {
  rung: string;
  cpuUsPerRequest: number;
  runs: number[];
}

export async function runLadder(options: {
  workDir: string;
  origin: string;
  signingKeys: string;
  specFile: string;
  gateway: Workerd;
  rounds: number;
  durationS: number;
  cpus?: { workerd?: string; load?: string };
}): Promise<LadderStep[]> {
  const script = await bundleWorker(
    join(import.meta.dirname, "workers/ladder.ts"),
    join(options.workDir, "ladder/index.js"),
  );
  const rungs: Array<{ name: string; w: Workerd }> = [];
  try {
    for (const rung of RUNGS) {
      const w = await startWorkerd({
        script,
        cpus: options.cpus?.workerd,
        logTo: join(options.workDir, "ladder.log"),
        bindings: { ORIGIN: options.origin, RUNG: rung, IDENTITY_SIGNING_KEYS: options.signingKeys },
      });
      rungs.push({ name: rung, w });
    }
    rungs.push({ name: "gateway (src, hot key)", w: options.gateway });
    for (const { w } of rungs) {
      await runWrk({ url: w.url, specFile: options.specFile, connections: 32, durationS: 1, cpus: options.cpus?.load });
    }
    const samples = new Map<string, number[]>();
    for (let round = 0; round < options.rounds; round++) {
      for (const { name, w } of [...rungs].sort(() => Math.random() - 0.5)) {
        const before = w.cpuTimeUs();
        const result = await runWrk({
          url: w.url,
          specFile: options.specFile,
          connections: 32,
          durationS: options.durationS,
          cpus: options.cpus?.load,
        });
        samples.set(name, [...(samples.get(name) ?? []), (w.cpuTimeUs() - before) / result.requests]);
      }
    }
    return rungs.map(({ name }) => {
      const runs = samples.get(name)!;
      const sorted = [...runs].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      return {
        rung: name,
        cpuUsPerRequest: sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2,
        runs,
      };
    });
  } finally {
    for (const { w } of rungs) if (w !== options.gateway) await w.stop();
  }
}
