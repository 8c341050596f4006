/**
 * Runs the cost ladder (workers/ladder.ts): one workerd per rung and probe and the real gateway,
 * measured at c=32 in short runs interleaved in random order, so load drifting on a shared
 * machine spreads over every rung alike. Reports the median CPU per request of each.
 */
import { join } from "node:path";
import type { KvServer } from "./kv-server.ts";
import { bundleWorker } from "./bundle.ts";
import { PROBES, RUNGS } from "./ladder-rungs.ts";
import { startWorkerd, type Workerd, type WorkerdBinding } from "./workerd.ts";
import { runWrk } from "./wrk.ts";

export interface LadderStep {
  rung: string;
  /** A cumulative rung, a piece added alone to the passthrough, or a whole gateway. */
  kind: "rung" | "probe" | "gateway";
  cpuUsPerRequest: number;
  runs: number[];
}

export async function runLadder(options: {
  workDir: string;
  origin: string;
  signingKeys: string;
  specFile: string;
  /** The main table's gateway: long-running, its caches full from the other scenarios. */
  gateway: Workerd;
  /** Starts a fresh gateway from the same bundle. */
  startGateway: () => Promise<Workerd>;
  /** To start the gateway built with `forwardThroughRouter` alongside the real one. */
  gatewayBindings: Record<string, WorkerdBinding>;
  kv: KvServer;
  rounds: number;
  durationS: number;
  cpus?: { workerd?: string; load?: string };
}): Promise<LadderStep[]> {
  const script = await bundleWorker(
    join(import.meta.dirname, "workers/ladder.ts"),
    join(options.workDir, "ladder/index.js"),
  );
  const rungs: Array<{ name: string; kind: LadderStep["kind"]; w: Workerd }> = [];
  try {
    for (const [names, kind] of [
      [RUNGS, "rung"],
      [PROBES, "probe"],
    ] as const) {
      for (const rung of names) {
        const w = await startWorkerd({
          script,
          cpus: options.cpus?.workerd,
          logTo: join(options.workDir, "ladder.log"),
          bindings: { ORIGIN: options.origin, RUNG: rung, IDENTITY_SIGNING_KEYS: options.signingKeys },
        });
        rungs.push({ name: rung, kind, w });
      }
    }
    rungs.push({ name: "gateway (fresh instance)", kind: "gateway", w: await options.startGateway() });
    rungs.push({
      name: "gateway of the main table (caches full from the other scenarios)",
      kind: "gateway",
      w: options.gateway,
    });
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
    return rungs.map(({ name, kind }) => {
      const runs = samples.get(name)!;
      const sorted = [...runs].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      return {
        rung: name,
        kind,
        cpuUsPerRequest: sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2,
        runs,
      };
    });
  } finally {
    for (const { w } of rungs) if (w !== options.gateway) await w.stop();
  }
}
