/**
 * Measuring a scenario: wrk at a concurrency against one workerd, with the process's CPU
 * time, the KV host's reads and the origin's count taken around the run; and the rounds
 * that interleave every (scenario, concurrency) in a fresh random order.
 */
import type { BenchSettings } from "./settings.ts";
import { f0, f2, median, ms, say } from "./format.ts";
import type { Origin } from "./origin.ts";
import type { Scenario, Target } from "./scenarios.ts";
import type { Workerd } from "./workerd.ts";
import { runWrk, type WrkResult } from "./wrk.ts";

/** One measured wrk run. */
export interface Run {
  wrk: WrkResult;
  cpuUs: number;
  kvReads: number;
  /** Reads of the hot key's record during the run. */
  hotKeyReads: number;
  kvPuts: number;
  /** Cache API lookups (`match`) the Worker made during the run. */
  cacheMatches: number;
  forwarded: number;
  startedAt: number;
}

/** Runs of one scenario at one concurrency, pooled: totals divided by totals. */
export interface Measurement {
  requests: number;
  rps: number;
  p50Us: number;
  p99Us: number;
  cpuUsPerRequest: number;
  /** Lowest and highest CPU per request of the single runs (the noise). */
  cpuSpread: [number, number];
  kvReadsPerRequest: number;
  kvReads: number;
  kvPutsPerRequest: number;
  cacheMatchesPerRequest: number;
  originPerRequest: number;
}

export interface Row {
  scenario: Scenario;
  byConcurrency: Map<number, Measurement>;
  runs: Map<number, Run[]>;
}

export const rowFor = (rows: Row[], name: string): Row | undefined => rows.find((r) => r.scenario.name === name);

export function pool(runs: Run[]): Measurement {
  const sum = (f: (r: Run) => number) => runs.reduce((a, r) => a + f(r), 0);
  const requests = sum((r) => r.wrk.requests);
  const perRun = runs.map((r) => r.cpuUs / r.wrk.requests);
  return {
    requests,
    rps: requests / sum((r) => r.wrk.durationS),
    p50Us: median(runs.map((r) => r.wrk.p50Us)),
    p99Us: median(runs.map((r) => r.wrk.p99Us)),
    cpuUsPerRequest: sum((r) => r.cpuUs) / requests,
    cpuSpread: [Math.min(...perRun), Math.max(...perRun)],
    kvReadsPerRequest: sum((r) => r.kvReads) / requests,
    kvReads: sum((r) => r.kvReads),
    kvPutsPerRequest: sum((r) => r.kvPuts) / requests,
    cacheMatchesPerRequest: sum((r) => r.cacheMatches) / requests,
    originPerRequest: sum((r) => r.forwarded) / requests,
  };
}

/** Where workerd and the load run (`taskset -c`); empty: no pinning. */
export interface Pins {
  workerd?: string;
  load?: string;
}

/** Sends a few of the scenario's requests and fails loudly when an answer is not the expected one. */
export async function checkSamples(s: Scenario, w: Workerd, origin: Origin): Promise<void> {
  const variants = s.spec.variants?.slice(0, 3) ?? [{}];
  for (const variant of variants) {
    const headers = new Headers({ ...s.spec.headers, ...variant });
    const seen = s.forwarded ? origin.nextRequest() : null;
    const response = await fetch(w.url + s.spec.path, {
      method: s.spec.method,
      headers,
      body: s.spec.bodyBytes ? new Uint8Array(s.spec.bodyBytes) : undefined,
    });
    await response.arrayBuffer();
    if (response.status !== s.expectStatus) {
      throw new Error(
        `${s.name}: expected ${s.expectStatus}, got ${response.status}\n${w.recentOutput().slice(-5).join("\n")}`,
      );
    }
    if (seen !== null && s.target !== "passthrough") {
      const forwarded = await seen;
      if (
        forwarded.headers.authorization !== undefined ||
        typeof forwarded.headers["x-nixflex-identity"] !== "string"
      ) {
        throw new Error(`${s.name}: the origin did not get a signed identity without Authorization`);
      }
    }
  }
}

/** The measuring state of one bench run: the variant rotation and the KV read log per scenario. */
export class Measurer {
  /** Requests sent so far per scenario, so each run continues the rotation of variants. */
  private readonly sent = new Map<string, number>();
  /** Every KV read made while a scenario's load ran (warm-ups included), for the per-TTL check. */
  readonly kvReadLog = new Map<string, Array<{ at: number; reads: number }>>();

  private readonly settings: BenchSettings;
  private readonly origin: Origin;
  private readonly pins: Pins;
  /** `key:<hot key_id>`: its reads are counted apart. */
  private readonly hotRecordKey: string;

  constructor(settings: BenchSettings, origin: Origin, pins: Pins, hotRecordKey: string) {
    this.settings = settings;
    this.origin = origin;
    this.pins = pins;
    this.hotRecordKey = hotRecordKey;
  }

  private async load(s: Scenario, w: Workerd, c: number, durationS: number, specFile: string): Promise<WrkResult> {
    const result = await runWrk({
      url: w.url,
      specFile,
      connections: c,
      durationS,
      cpus: this.pins.load,
      startAt: this.sent.get(s.name) ?? 0,
    });
    this.sent.set(s.name, (this.sent.get(s.name) ?? 0) + result.requests);
    return result;
  }

  async measure(s: Scenario, w: Workerd, c: number, specFile: string, warmupS: number): Promise<Run> {
    const kv = w.kv.namespace("api-keys");
    kv.takeCounts();
    const log = this.kvReadLog.get(s.name) ?? [];
    this.kvReadLog.set(s.name, log);
    if (warmupS > 0) {
      await this.load(s, w, c, warmupS, specFile);
      log.push({ at: Date.now(), reads: kv.takeCounts().reads });
    }
    // Let requests still in flight from the previous run (wrk stops mid-request) finish, so
    // neither their CPU nor their KV reads land on this run.
    await new Promise((resolve) => setTimeout(resolve, 300));
    log.push({ at: Date.now(), reads: kv.takeCounts().reads });
    this.origin.takeCount();
    w.cache.takeCounts();
    const hotBefore = kv.readsOf(this.hotRecordKey);
    const startedAt = Date.now();
    const cpuBefore = w.cpuTimeUs();
    const result = await this.load(s, w, c, this.settings.durationS, specFile);
    const cpuUs = w.cpuTimeUs() - cpuBefore;
    const counts = kv.takeCounts();
    log.push({ at: Date.now(), reads: counts.reads });
    const forwarded = this.origin.takeCount();
    const cacheMatches = w.cache.takeCounts().matches;
    if (result.socketErrors > 0) say(`  ! ${s.name} c=${c}: ${result.socketErrors} socket errors`);
    const wrong = s.expectStatus < 400 ? result.non2xx : result.requests - result.non2xx;
    if (wrong > 0) say(`  ! ${s.name} c=${c}: ${wrong} responses with an unexpected status class`);
    const hotKeyReads = kv.readsOf(this.hotRecordKey) - hotBefore;
    return {
      wrk: result,
      cpuUs,
      kvReads: counts.reads,
      hotKeyReads,
      kvPuts: counts.put,
      cacheMatches,
      forwarded,
      startedAt,
    };
  }

  /**
   * Checks every scenario's answers, warms each target, then runs the rounds: every
   * (scenario, concurrency) in a fresh random order each, because load from other
   * processes on a shared machine drifts over seconds and interleaving spreads it evenly.
   */
  async runRounds(rows: Row[], targets: Map<Target, Workerd>, specFiles: Map<string, string>): Promise<void> {
    const { rounds, concurrencies, warmupS } = this.settings;
    const on = (s: Scenario) => targets.get(s.target)!;
    for (const { scenario } of rows) await checkSamples(scenario, on(scenario), this.origin);
    // JIT and connection pools warm before anything is measured.
    for (const [target, w] of targets) {
      const first = rows.find((r) => r.scenario.target === target);
      if (first === undefined) continue;
      const specFile = specFiles.get(first.scenario.name)!;
      await runWrk({ url: w.url, specFile, connections: 32, durationS: 2, cpus: this.pins.load });
    }
    for (let round = 1; round <= rounds; round++) {
      const order = rows.flatMap((row) => concurrencies.map((c) => ({ row, c }))).sort(() => Math.random() - 0.5);
      for (const { row, c } of order) {
        const s = row.scenario;
        const run = await this.measure(s, on(s), c, specFiles.get(s.name)!, round === 1 ? warmupS : 0);
        say(
          `  [${round}/${rounds}] ${s.name.padEnd(18)} c=${String(c).padEnd(2)} ${f0(run.wrk.rps).padStart(7)} req/s  p50 ${ms(run.wrk.p50Us)} ms  p99 ${ms(run.wrk.p99Us)} ms  CPU ${f0(run.cpuUs / run.wrk.requests)} µs/req  KV ${f2(run.kvReads / run.wrk.requests)} reads/req`,
        );
        row.runs.set(c, [...(row.runs.get(c) ?? []), run]);
      }
    }
    for (const row of rows) for (const [c, list] of row.runs) row.byConcurrency.set(c, pool(list));
  }
}
