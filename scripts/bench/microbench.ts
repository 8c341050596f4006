/**
 * Runs the microbenchmark Worker (workers/micro.ts) in workerd and reports the CPU cost
 * of each operation: (CPU of n runs − CPU of n empty runs) / n, read from /proc.
 */
import { join } from "node:path";
import { bundleWorker } from "./bundle.ts";
import { startWorkerd } from "./workerd.ts";

export interface MicroResult {
  op: string;
  usPerOp: number;
  n: number;
}

export const SIGNING_OPS = ["sign-signjwt", "sign-compact", "sign-shipped", "sign-webcrypto-floor", "sign-ed25519-raw"];
export const PIECE_OPS = [
  "digest-sha256",
  "engine-request-headers",
  "headers-copy",
  "access-log-line",
  "redact-log-line",
  "timer-set-clear",
  "abort-controller",
  "url-parse",
  "random-uuid",
  "parse-authorization",
];

export async function runMicrobenchmarks(options: {
  workDir: string;
  signingKeys: string;
  authorization: string;
  cpus?: string;
  ops?: string[];
  /** CPU time each measurement should last at least (tick resolution is 10 ms). */
  minCpuUs?: number;
}): Promise<MicroResult[]> {
  const script = await bundleWorker(
    join(import.meta.dirname, "workers/micro.ts"),
    join(options.workDir, "micro/index.js"),
  );
  const workerd = await startWorkerd({
    script,
    cpus: options.cpus,
    logTo: join(options.workDir, "micro.log"),
    bindings: { IDENTITY_SIGNING_KEYS: options.signingKeys, AUTHORIZATION: options.authorization },
  });
  const cpuOf = async (op: string, n: number): Promise<number> => {
    const before = workerd.cpuTimeUs();
    const response = await fetch(`${workerd.url}/?op=${op}&n=${n}`);
    const text = await response.text();
    if (response.status !== 200) throw new Error(`micro ${op}: ${response.status} ${text}`);
    return workerd.cpuTimeUs() - before;
  };
  const minCpuUs = options.minCpuUs ?? 300_000;
  const results: MicroResult[] = [];
  try {
    await cpuOf("sign-signjwt", 500); // import the key, warm the JIT
    for (const op of options.ops ?? [...SIGNING_OPS, ...PIECE_OPS]) {
      let n = 1000;
      let cpu = await cpuOf(op, n);
      while (cpu < minCpuUs && n < 4_000_000) {
        n *= Math.min(16, Math.max(2, Math.ceil(minCpuUs / Math.max(cpu, 1))));
        cpu = await cpuOf(op, n);
      }
      const empty = await cpuOf("noop-await", n);
      results.push({ op, usPerOp: Math.max(0, (cpu - empty) / n), n });
    }
  } finally {
    await workerd.stop();
  }
  return results;
}
