/** The performance targets (docs/BENCHMARKS.md, "The targets"), checked against one run. */
import { NEGATIVE_TTL_MS, RECORD_TTL_MS } from "../../src/keys/store.ts";
import type { Bundle, BundleComposition } from "./bundle.ts";
import { f0, f1, f2, ms } from "./format.ts";
import { type Row, rowFor } from "./measure.ts";
import { UNKNOWN_IDS } from "./scenarios.ts";
import type { BenchSettings } from "./settings.ts";

export interface TargetCheck {
  target: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

export function evaluateTargets(
  rows: Row[],
  bundle: Bundle,
  composition: BundleComposition,
  settings: BenchSettings,
  kvReadLog: Map<string, Array<{ at: number; reads: number }>>,
): TargetCheck[] {
  const get = (name: string, c: number) => rowFor(rows, name)?.byConcurrency.get(c);
  const out: TargetCheck[] = [];
  const hot32 = get("hot", 32);
  const pt32 = get("passthrough", 32);
  const hot1 = get("hot", 1);
  const pt1 = get("passthrough", 1);
  if (hot32 && pt32) {
    const ratio = hot32.cpuUsPerRequest / pt32.cpuUsPerRequest;
    out.push({
      target: "workerd CPU per forwarded request, hot key (c=32)",
      goal: "≤ 1.15× passthrough",
      measured: `${f2(ratio)}× (${f0(hot32.cpuUsPerRequest)} vs ${f0(pt32.cpuUsPerRequest)} µs)`,
      met: ratio <= 1.15,
    });
    const tput = hot32.rps / pt32.rps;
    out.push({
      target: "throughput at saturation (c=32), hot key",
      goal: "≥ 0.90× passthrough",
      measured: `${f2(tput)}× (${f0(hot32.rps)} vs ${f0(pt32.rps)} req/s)`,
      met: tput >= 0.9,
    });
  }
  if (hot1 && pt1) {
    const added = (hot1.p50Us - pt1.p50Us) / 1000;
    out.push({
      target: "added p50 latency at c=1, hot key",
      goal: "≤ 0.1 ms",
      measured: `${added.toFixed(3)} ms (${ms(hot1.p50Us)} vs ${ms(pt1.p50Us)} ms)`,
      met: added <= 0.1,
    });
  }
  const reads = (name: string) => [...(rowFor(rows, name)?.runs.values() ?? [])].flat();
  const hotRuns = reads("hot");
  const hotReads = hotRuns.reduce((a, m) => a + m.hotKeyReads, 0);
  // Hot runs are spread over the whole bench: the record may be re-read once per record TTL,
  // and once after the many-keys sweep (20,000 keys through a 10,000-entry LRU) evicts it.
  const hotSpanS =
    hotRuns.length === 0
      ? 0
      : (Math.max(...hotRuns.map((r) => r.startedAt)) - Math.min(...hotRuns.map((r) => r.startedAt))) / 1000 +
        settings.durationS;
  const hotBudget = Math.ceil(hotSpanS / (RECORD_TTL_MS / 1000)) + 1;
  out.push({
    target: "KV reads on the hot path",
    goal: `0 (≤ 1 per key per isolate per ${RECORD_TTL_MS / 1000} s record TTL)`,
    measured: `${hotReads} reads of the key in ${f0(hotRuns.reduce((a, m) => a + m.wrk.requests, 0))} requests over ${f0(hotSpanS)} s (budget ${hotBudget})`,
    met: hotReads <= hotBudget,
  });
  const garbageReads = reads("garbage").reduce((a, m) => a + m.kvReads, 0);
  out.push({
    target: "KV reads for malformed keys / bad checksums",
    goal: "0",
    measured: `${garbageReads} in ${f0(reads("garbage").reduce((a, m) => a + m.wrk.requests, 0))} requests`,
    met: garbageReads === 0,
  });
  const unknownLog = kvReadLog.get("unknown") ?? [];
  if (unknownLog.length > 0) {
    const total = unknownLog.reduce((a, e) => a + e.reads, 0);
    const firstRuns = rowFor(rows, "unknown")?.runs.get(settings.concurrencies[0]!) ?? [];
    const first = Math.min(...firstRuns.map((r) => r.startedAt));
    const spanS = (Math.max(...unknownLog.map((e) => e.at)) - first) / 1000 + settings.warmupS;
    // A run of length T touches at most ceil(T / TTL) + 1 negative-cache windows per key_id.
    const windows = Math.ceil(spanS / (NEGATIVE_TTL_MS / 1000)) + 1;
    out.push({
      target: "KV reads for a flood of unknown well-formed key_ids",
      goal: `≤ 1 per distinct key_id per ${NEGATIVE_TTL_MS / 1000} s negative TTL`,
      measured: `${f0(total)} reads for ${f0(UNKNOWN_IDS)} ids over ${f0(spanS)} s (≤ ${windows} windows: budget ${f0(UNKNOWN_IDS * windows)}), warm-ups included`,
      met: total <= UNKNOWN_IDS * windows,
    });
  }
  out.push({
    target: "bundle (gzip)",
    goal: "≤ 20 KB",
    measured: `${f1(bundle.gzipBytes / 1024)} KiB as wrangler builds it, ${f1(composition.minifiedGzipBytes / 1024)} KiB minified`,
    met: Math.min(bundle.gzipBytes, composition.minifiedGzipBytes) <= 20 * 1024,
  });
  return out;
}
