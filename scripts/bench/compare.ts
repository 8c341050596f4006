/**
 * Head against baseline (`--baseline <ref>`): the working tree's gateway and the one built
 * from the ref, measured in the same interleaved rounds, each as a ratio to the passthrough.
 */
import { type Measurement, type Row, type Run, rowFor } from "./measure.ts";
import { baselineTwin } from "./scenarios.ts";

export interface ComparedMetric {
  scenario: string;
  c: number;
  metric: string;
  passthrough: number;
  head: number;
  baseline: number;
  /** head / baseline, per round of the same index (the interleaving pairs them). */
  perRound: number[];
}

/** Each compared metric: pooled over the runs, and of a single run. */
const METRICS: Array<{ name: string; pooled: (m: Measurement) => number; single: (r: Run) => number }> = [
  { name: "CPU µs/req", pooled: (m) => m.cpuUsPerRequest, single: (r) => r.cpuUs / r.wrk.requests },
  { name: "req/s", pooled: (m) => m.rps, single: (r) => r.wrk.rps },
  { name: "p50 ms", pooled: (m) => m.p50Us / 1000, single: (r) => r.wrk.p50Us / 1000 },
  // Blocking I/O a forwarded request may wait on besides the engine.
  { name: "KV reads/req", pooled: (m) => m.kvReadsPerRequest, single: (r) => r.kvReads / r.wrk.requests },
  {
    name: "cache lookups/req",
    pooled: (m) => m.cacheMatchesPerRequest,
    single: (r) => r.cacheMatches / r.wrk.requests,
  },
  { name: "engine requests/req", pooled: (m) => m.originPerRequest, single: (r) => r.forwarded / r.wrk.requests },
];

/** Round-by-round ratio of `single` for row `a` to row `b` at concurrency `c`. */
function perRound(a: Row | undefined, b: Row | undefined, c: number, single: (r: Run) => number): number[] {
  const other = b?.runs.get(c) ?? [];
  return (a?.runs.get(c) ?? []).map((r, i) => {
    const o = other[i];
    return o === undefined ? Number.NaN : single(r) / single(o);
  });
}

/** Round-by-round CPU ratio of scenario `a` to scenario `b` at concurrency `c`. */
export const roundRatios = (rows: Row[], a: string, b: string, c: number): number[] =>
  perRound(rowFor(rows, a), rowFor(rows, b), c, METRICS[0]!.single);

/** The hot-key comparison at every concurrency measured (c=32 first), or [] without a baseline. */
export function headVsBaseline(rows: Row[], concurrencies: number[], scenario = "hot"): ComparedMetric[] {
  const head = rowFor(rows, scenario);
  const base = rowFor(rows, baselineTwin(scenario));
  const pass = head && rowFor(rows, head.scenario.comparedWith);
  if (!head || !base || !pass) return [];
  const out: ComparedMetric[] = [];
  for (const c of [...concurrencies].sort((x, y) => y - x)) {
    const h = head.byConcurrency.get(c);
    const b = base.byConcurrency.get(c);
    const p = pass.byConcurrency.get(c);
    if (!h || !b || !p) continue;
    for (const { name, pooled, single } of METRICS) {
      out.push({
        scenario,
        c,
        metric: name,
        passthrough: pooled(p),
        head: pooled(h),
        baseline: pooled(b),
        perRound: perRound(head, base, c, single),
      });
    }
  }
  return out;
}
