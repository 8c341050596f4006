/** The soak's report: a table per class and the memory figures on the console, the whole summary as JSON. */
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { unexpectedCount } from "./classes.ts";
import type { LoadOutcome } from "./load.ts";
import type { SoakSettings } from "./settings.ts";
import { f0, f1, mb, type SoakStack, say } from "./stack.ts";
import { INVALID_ADDRESSES } from "./traffic.ts";
import type { Verdict } from "./verdict.ts";

export interface SoakRun {
  settings: SoakSettings;
  stack: SoakStack;
  load: LoadOutcome;
  verdict: Verdict;
  /** Bundling, startup, load and shutdown. */
  endToEndS: number;
}

const totalRequests = ({ load }: SoakRun) => load.results.reduce((a, r) => a + r.requests, 0) + load.lifecycle.requests;
const statuses = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([s, n]) => `${s}×${f0(n)}`)
    .join(" ");
const mbOrDash = (kb: number | null) => (kb === null ? "-" : `${f1(mb(kb))} MB`);

function row(cols: string[]): void {
  say(
    cols
      .map((c, i) =>
        i === 0 || i === cols.length - 1 ? c.padEnd(i === 0 ? 10 : 0) : c.padStart([6, 10, 8, 7, 7, 11, 7][i - 1] ?? 8),
      )
      .join("  "),
  );
}

function classTable({ load, settings }: SoakRun): void {
  row(["class", "conns", "requests", "req/s", "p50 ms", "p99 ms", "unexpected", "socket", "statuses"]);
  for (const cls of load.traffic) {
    const r = load.results.find((x) => x.name === cls.name);
    if (r === undefined) {
      row([cls.name, String(cls.connections), "-", "-", "-", "-", "-", "-", "wrk failed"]);
      continue;
    }
    const e = r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout;
    row([
      cls.name,
      String(cls.connections),
      f0(r.requests),
      f0(r.rps),
      f1(r.p50Ms),
      f1(r.p99Ms),
      f0(unexpectedCount(cls, r)),
      f0(e),
      statuses(r.counts),
    ]);
  }
  const { lifecycle } = load;
  row([
    "lifecycle",
    "1",
    f0(lifecycle.requests),
    f0(lifecycle.requests / settings.durationS),
    "-",
    "-",
    f0(lifecycle.unexpected - lifecycle.socketErrors),
    f0(lifecycle.socketErrors),
    `${statuses(lifecycle.counts)} (${f0(lifecycle.cycles)} cycles)`,
  ]);
}

function memoryLines({ settings, stack, load, verdict }: SoakRun): void {
  const m = verdict.memory;
  const { warmupS, rssWindowS, heapWindowS } = settings;
  say(
    `workerd RSS: idle ${mbOrDash(stack.idleRssKb)}; start ${mbOrDash(m.startKb)} (median t=${warmupS}–${warmupS + rssWindowS} s), ` +
      `peak ${mbOrDash(m.peakKb)}, end ${mbOrDash(m.endKb)} (median of the last ${rssWindowS} s), after load ${mbOrDash(load.afterKb)}, high-water ${mbOrDash(load.hwmKb)}`,
  );
  say(
    `  growth ${m.growthKb === null ? "-" : `${f1(mb(m.growthKb))} MB`} (bound ${settings.rssBoundMb} MB); ` +
      `trend over the second half ${m.slope === null ? "-" : `${f1(mb(m.slope))} MB/min`}`,
  );
  say(
    `V8 heap in use after collections: start ${mbOrDash(m.heapStartKb)} (lowest t=${warmupS}–${warmupS + heapWindowS} s), ` +
      `end ${mbOrDash(m.heapEndKb)} (lowest of the last ${heapWindowS} s), growth ${m.heapGrowthKb === null ? "-" : `${f1(mb(m.heapGrowthKb))} MB`} ` +
      `(bound ${settings.heapBoundMb} MB); highest reading ${f1(mb(m.heapPeakKb))} MB`,
  );
}

export function printReport(run: SoakRun): void {
  const { settings, stack, load, verdict } = run;
  const total = totalRequests(run);
  if (load.faultNote !== undefined) say(`  ${load.faultNote}`);
  say();
  say(`Soak finished: ${settings.durationS} s of load, ${f0(total)} requests, ${f0(total / settings.durationS)} req/s`);
  say();
  classTable(run);
  say();
  const { limiter, forwarded200, originExcess } = verdict;
  const invalidRps = load.results.find((r) => r.name === "invalid")?.rps ?? 0;
  say(
    `Limiter (${settings.failureLimit}/${settings.failurePeriodS} s per address): abuser 401×${limiter.abuser401} (≤ ${limiter.max401}), 429×${f0(limiter.abuser429)}; ` +
      `invalid class ≈ ${f1((invalidRps * settings.failurePeriodS) / INVALID_ADDRESSES)} failures per address per window`,
  );
  say(
    `Origin: ${f0(load.originCount)} requests for ${f0(forwarded200)} authenticated forwards answered (in flight at stop: ${originExcess})`,
  );
  const kv = load.kvCounts;
  say(
    `KV (counted by the harness): ${f0(kv.reads)} reads (${f0(kv.get)} get, ${f0(kv.bulkGetKeys)} bulk-get keys, ` +
      `${f0(kv.list)} list), ${f0(kv.put)} puts, ${f0(kv.delete)} deletes; ${f0(stack.store.size)} entries at the end`,
  );
  memoryLines(run);
  say(`End to end ${f1(run.endToEndS)} s (bundling, startup, load, shutdown)`);
  say();
  if (verdict.problems.length === 0) say("CLEAN: every answer as expected, no socket error, memory within the bounds.");
  else {
    say("FAILED:");
    for (const p of verdict.problems) say(`  - ${p}`);
  }
}

export function writeSummary(path: string, run: SoakRun): void {
  const { settings, stack, load, verdict } = run;
  const m = verdict.memory;
  const total = totalRequests(run);
  const summary = {
    ok: verdict.problems.length === 0,
    problems: verdict.problems,
    durationS: settings.durationS,
    warmupS: settings.warmupS,
    connections: settings.connections,
    endToEndS: run.endToEndS,
    totalRequests: total,
    rps: total / settings.durationS,
    unexpected: verdict.unexpected,
    socketErrors: verdict.socketErrors,
    classes: load.traffic.map((cls) => {
      const r = load.results.find((x) => x.name === cls.name);
      return {
        name: cls.name,
        description: cls.description,
        connections: cls.connections,
        expected: cls.expect.map((e) => e.status),
        ...(r ?? {}),
        unexpected: r === undefined ? null : unexpectedCount(cls, r),
      };
    }),
    lifecycle: load.lifecycle,
    limiter: verdict.limiter,
    origin: { requests: load.originCount, authenticatedForwards: verdict.forwarded200 },
    kv: { ...load.kvCounts, entriesAtEnd: stack.store.size },
    rss: {
      pid: stack.gw.pid,
      idleKb: stack.idleRssKb,
      startKb: m.startKb,
      endKb: m.endKb,
      peakKb: m.peakKb,
      afterLoadKb: load.afterKb,
      highWaterKb: load.hwmKb,
      growthKb: m.growthKb,
      boundKb: settings.rssBoundMb * 1024,
      secondHalfSlopeKbPerMin: m.slope,
      /** [t s, RSS kB, heap used kB, heap reserved kB] */
      samples: load.samples.map((s) => [
        Math.round(s.t * 10) / 10,
        s.rssKb,
        s.heapKb === undefined ? null : Math.round(s.heapKb),
        s.heapTotalKb === undefined ? null : Math.round(s.heapTotalKb),
      ]),
    },
    heap: {
      startKb: m.heapStartKb,
      endKb: m.heapEndKb,
      growthKb: m.heapGrowthKb,
      boundKb: settings.heapBoundMb * 1024,
      highestKb: m.heapPeakKb,
    },
    fault: settings.fault ?? null,
    loadAverage: loadavg(),
  };
  writeFileSync(resolve(path), `${JSON.stringify(summary, null, 2)}\n`);
  say(`Summary written to ${path}`);
}
