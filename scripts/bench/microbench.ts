/**
 * Runs the microbenchmark Worker (workers/micro.ts) in workerd and reports the CPU cost
 * of each operation: (CPU of n runs − CPU of n empty runs) / n, read from /proc.
 */
import { join } from "node:path";
import { bundleWorker } from "./bundle.ts";
import { startWorkerd } from "./workerd.ts";

export interface MicroResult {
  op: string;
  /** Median over the repeats. */
  usPerOp: number;
  /** Every repeat, in run order. */
  samples: number[];
  n: number;
}

/** What each operation is, for the report. */
export const MICRO_DESCRIPTIONS: Record<string, string> = {
  "sign-signjwt": "jose SignJWT (builder, claims copied and validated per call), key imported once",
  "sign-compact": "jose CompactSign over a hand-serialized claims set, key imported once",
  "sign-shipped": "src/identity/sign.ts as it is now (signIdentity)",
  "sign-webcrypto-floor": "WebCrypto alone, header pre-encoded (a floor; SPEC §4 wants jose)",
  "sign-ed25519-raw": "crypto.subtle.sign Ed25519 over 300 bytes, nothing else",
  "digest-sha256": "SHA-256 of a key secret (crypto.subtle.digest)",
  "engine-request-headers": "the engine's request headers from the client's (headers.ts)",
  "headers-copy": "new Headers(request.headers)",
  "access-log-line": "one access log line: JSON, redaction, console.log",
  "redact-log-line": "redaction of one access log line",
  "timer-set-clear": "setTimeout + clearTimeout (the engine timeout)",
  "abort-controller": "new AbortController()",
  "url-parse": "new URL(request.url)",
  "random-uuid": "crypto.randomUUID() (the request id)",
  "parse-authorization": "parseAuthorization of a valid header (grammar + CRC-32 checksum)",
};

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
  /** Measure every op this many times, interleaved, and report the median. */
  repeat?: number;
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
  const minCpuUs = options.minCpuUs ?? 200_000;
  const ops = options.ops ?? [...SIGNING_OPS, ...PIECE_OPS];
  const sizes = new Map<string, number>();
  const samples = new Map<string, number[]>();
  const results: MicroResult[] = [];
  try {
    await cpuOf("sign-signjwt", 500); // import the key, warm the JIT
    for (let round = 0; round < (options.repeat ?? 1); round++) {
      for (const op of ops) {
        let n = sizes.get(op) ?? 1000;
        let cpu = await cpuOf(op, n);
        while (cpu < minCpuUs && n < 4_000_000) {
          n *= Math.min(16, Math.max(2, Math.ceil(minCpuUs / Math.max(cpu, 1))));
          cpu = await cpuOf(op, n);
        }
        sizes.set(op, n);
        const empty = await cpuOf("noop-await", n);
        samples.set(op, [...(samples.get(op) ?? []), Math.max(0, (cpu - empty) / n)]);
      }
    }
    for (const op of ops) {
      const list = samples.get(op)!;
      const sorted = [...list].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      const med = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
      results.push({ op, usPerOp: med, samples: list, n: sizes.get(op)! });
    }
  } finally {
    await workerd.stop();
  }
  return results;
}
