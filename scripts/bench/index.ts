/**
 * `npm run bench`: the gateway against a bare passthrough Worker, both in workerd run
 * directly, in the same run, on the same loopback origin.
 *
 *   npm run bench [-- --duration 2 --rounds 3 --concurrency 1,32 --only hot,garbage
 *                    --no-profile --no-micro --no-write --no-pin --json out.json]
 *
 * For every scenario and for c=1 and c=32 it measures requests/s and p50/p99 (wrk), the
 * workerd process's CPU per request (/proc/<pid>/stat around the run), the KV reads per
 * request (counted by the local KV host) and the ratio to the passthrough. It also
 * measures bundle size, startup, the signing options and a CPU profile, and writes
 * docs/BENCHMARKS.md (between its generated markers; the prose around them is kept).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus as osCpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bundleComposition, bundleGateway, bundleWorker, type Bundle, type BundleComposition } from "./bundle.ts";
import { benchSigningKeys, garbageAuthorizations, seedKeys, unknownKeys, type BenchKey } from "./keys.ts";
import { startKvServer } from "./kv-server.ts";
import { kvKeys } from "../../src/keys/record.ts";
import { NEGATIVE_TTL_MS, RECORD_TTL_MS } from "../../src/keys/store.ts";
import { type LadderStep, runLadder } from "./ladder.ts";
import { MICRO_DESCRIPTIONS, runMicrobenchmarks, SIGNING_OPS, type MicroResult } from "./microbench.ts";
import { startOrigin, type Origin } from "./origin.ts";
import { recordCpuProfile, summarizeProfile, type ProfileSummary } from "./profile.ts";
import { freePort, REPO_ROOT, startWorkerd, WORKERD_BIN, type Workerd, type WorkerdBinding } from "./workerd.ts";
import { ensureWrk, runWrk, writeRequestSpec, type RequestSpec, type WrkResult } from "./wrk.ts";

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "2" },
    warmup: { type: "string", default: "1" },
    rounds: { type: "string", default: "3" },
    "no-profile": { type: "boolean", default: false },
    "no-micro": { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
    "no-pin": { type: "boolean", default: false },
    only: { type: "string" },
    concurrency: { type: "string", default: "1,32" },
    json: { type: "string" },
    "keep-logs": { type: "boolean", default: false },
    ladder: { type: "boolean", default: false },
    "ladder-rounds": { type: "string", default: "10" },
    out: { type: "string", default: join(REPO_ROOT, "docs/BENCHMARKS.md") },
  },
});

const DURATION_S = Number(args.duration);
const WARMUP_S = Number(args.warmup);
const ROUNDS = Math.max(1, Number(args.rounds));
const CONCURRENCIES = args.concurrency!.split(",").map(Number);
const MANY_KEYS = 20_000; // twice the isolate's LRU bound: a sequential sweep misses every time
const UNKNOWN_IDS = 1_000;
const CLIENT_ADDRESSES = 20_000; // failures spread over many addresses: no one trips the limiter
const LARGE_BYTES = 1024 * 1024;

const say = (line = "") => process.stdout.write(`${line}\n`);
const sh = (cmd: string, a: string[]) => {
  try {
    return execFileSync(cmd, a, { stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {
    return "";
  }
};

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

type Target = "gateway" | "passthrough";
interface Scenario {
  name: string;
  title: string;
  target: Target;
  /** The passthrough scenario this one is compared with. */
  baseline: string;
  spec: RequestSpec;
  expectStatus: number;
  /** Whether the origin should see every request. */
  forwarded: boolean;
}

const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const bearer = (k: BenchKey) => `Bearer ${k.keyId}:${k.secret}`;

function scenarios(hot: BenchKey, many: BenchKey[], unknown: BenchKey[], garbage: Array<string | null>): Scenario[] {
  const common = { "user-agent": "nixflex-bench/1", accept: "application/json", "cf-connecting-ip": "203.0.113.7" };
  const small: RequestSpec = {
    method: "GET",
    path: "/v1/agents/a1?limit=10",
    headers: { ...common, authorization: bearer(hot) },
  };
  const large: RequestSpec = {
    method: "POST",
    path: `/v1/uploads?bytes=${LARGE_BYTES}`,
    headers: { ...common, "content-type": "application/octet-stream", authorization: bearer(hot) },
    bodyBytes: LARGE_BYTES,
  };
  return [
    {
      name: "passthrough",
      title: "bare passthrough Worker (baseline)",
      target: "passthrough",
      baseline: "passthrough",
      spec: small,
      expectStatus: 200,
      forwarded: true,
    },
    {
      name: "hot",
      title: "gateway, hot key",
      target: "gateway",
      baseline: "passthrough",
      spec: small,
      expectStatus: 200,
      forwarded: true,
    },
    {
      name: "many-keys",
      title: `gateway, ${MANY_KEYS.toLocaleString("en")} distinct valid keys (cache misses)`,
      target: "gateway",
      baseline: "passthrough",
      spec: { ...small, variants: many.map((k) => ({ authorization: bearer(k) })) },
      expectStatus: 200,
      forwarded: true,
    },
    {
      name: "unknown",
      title: `gateway, ${UNKNOWN_IDS.toLocaleString("en")} unknown well-formed key_ids`,
      target: "gateway",
      baseline: "passthrough",
      spec: {
        ...small,
        variants: Array.from({ length: CLIENT_ADDRESSES }, (_, i) => ({
          authorization: bearer(unknown[i % unknown.length]!),
          "cf-connecting-ip": ip(i),
        })),
      },
      expectStatus: 401,
      forwarded: false,
    },
    {
      name: "garbage",
      title: "gateway, garbage Authorization headers",
      target: "gateway",
      baseline: "passthrough",
      spec: {
        ...small,
        headers: { ...common },
        variants: garbage.map(
          (value, i): Record<string, string> =>
            value === null ? { "cf-connecting-ip": ip(i) } : { authorization: value, "cf-connecting-ip": ip(i) },
        ),
      },
      expectStatus: 401,
      forwarded: false,
    },
    {
      name: "passthrough-large",
      title: "bare passthrough Worker, 1 MiB up + 1 MiB down",
      target: "passthrough",
      baseline: "passthrough-large",
      spec: large,
      expectStatus: 200,
      forwarded: true,
    },
    {
      name: "large",
      title: "gateway, hot key, 1 MiB streamed up + 1 MiB down",
      target: "gateway",
      baseline: "passthrough-large",
      spec: large,
      expectStatus: 200,
      forwarded: true,
    },
  ];
}

// ---------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------

/** One measured wrk run. */
interface Run {
  wrk: WrkResult;
  cpuUs: number;
  kvReads: number;
  /** Reads of the hot key's record during the run. */
  hotKeyReads: number;
  kvPuts: number;
  forwarded: number;
  startedAt: number;
}

/** Runs of one scenario at one concurrency, pooled: totals divided by totals. */
interface Measurement {
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
  originPerRequest: number;
}

interface Row {
  scenario: Scenario;
  byConcurrency: Map<number, Measurement>;
  runs: Map<number, Run[]>;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function pool(runs: Run[]): Measurement {
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
    originPerRequest: sum((r) => r.forwarded) / requests,
  };
}

async function checkSamples(s: Scenario, w: Workerd, origin: Origin): Promise<void> {
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
    if (seen !== null && s.target === "gateway") {
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

/** Requests sent so far per scenario, so each run continues the rotation of variants. */
const sent = new Map<string, number>();

async function load(
  s: Scenario,
  w: Workerd,
  c: number,
  durationS: number,
  pins: Pins,
  specFile: string,
): Promise<WrkResult> {
  const result = await runWrk({
    url: w.url,
    specFile,
    connections: c,
    durationS,
    cpus: pins.load,
    startAt: sent.get(s.name) ?? 0,
  });
  sent.set(s.name, (sent.get(s.name) ?? 0) + result.requests);
  return result;
}

/** `key:<hot key_id>`, set once the keys are seeded. */
let hotRecordKey = "";

/** Every KV read made while a scenario's load ran (warm-ups included), for the per-TTL check. */
const kvReadLog = new Map<string, Array<{ at: number; reads: number }>>();

async function measure(
  s: Scenario,
  w: Workerd,
  origin: Origin,
  c: number,
  pins: Pins,
  specFile: string,
  warmupS: number,
): Promise<Run> {
  const kv = w.kv.namespace("api-keys");
  kv.takeCounts();
  const log = kvReadLog.get(s.name) ?? [];
  kvReadLog.set(s.name, log);
  if (warmupS > 0) {
    await load(s, w, c, warmupS, pins, specFile);
    log.push({ at: Date.now(), reads: kv.takeCounts().reads });
  }
  // Let requests still in flight from the previous run (wrk stops mid-request) finish, so
  // neither their CPU nor their KV reads land on this run.
  await new Promise((resolve) => setTimeout(resolve, 300));
  log.push({ at: Date.now(), reads: kv.takeCounts().reads });
  origin.takeCount();
  const hotBefore = kv.readsOf(hotRecordKey);
  const startedAt = Date.now();
  const cpuBefore = w.cpuTimeUs();
  const result = await load(s, w, c, DURATION_S, pins, specFile);
  const cpuUs = w.cpuTimeUs() - cpuBefore;
  const counts = kv.takeCounts();
  log.push({ at: Date.now(), reads: counts.reads });
  const forwarded = origin.takeCount();
  if (result.socketErrors > 0) say(`  ! ${s.name} c=${c}: ${result.socketErrors} socket errors`);
  const wrong = s.expectStatus < 400 ? result.non2xx : result.requests - result.non2xx;
  if (wrong > 0) say(`  ! ${s.name} c=${c}: ${wrong} responses with an unexpected status class`);
  const hotKeyReads = kv.readsOf(hotRecordKey) - hotBefore;
  return { wrk: result, cpuUs, kvReads: counts.reads, hotKeyReads, kvPuts: counts.put, forwarded, startedAt };
}

interface Pins {
  workerd?: string;
  load?: string;
}

function choosePins(): Pins {
  if (args["no-pin"] || osCpus().length < 2) return {};
  // workerd alone on CPU 0; wrk, the origin and the KV host (this process) on CPU 1.
  if (sh("taskset", ["-p", "-c", "1", String(process.pid)]) === "") return {};
  return { workerd: "0", load: "1" };
}

// ---------------------------------------------------------------------------------------
// Startup
// ---------------------------------------------------------------------------------------

interface Startup {
  listeningMs: number;
  firstOkMs: number;
  firstRequestMs: number;
  secondRequestMs: number;
}

async function measureStartup(
  start: () => Promise<Workerd>,
  firstPath: string,
  firstHeaders: Record<string, string>,
  readyPath: string,
): Promise<Startup> {
  const w = await start();
  try {
    let status = 0;
    while (status !== 200) {
      status = await fetch(w.url + readyPath).then(
        async (r) => {
          await r.arrayBuffer();
          return r.status;
        },
        () => 0,
      );
    }
    const firstOkMs = performance.now() - w.spawnedAt;
    const timed = async () => {
      const t0 = performance.now();
      const r = await fetch(w.url + firstPath, { headers: firstHeaders });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`startup request answered ${r.status}`);
      return performance.now() - t0;
    };
    const firstRequestMs = await timed();
    const secondRequestMs = await timed();
    return { listeningMs: w.listeningMs, firstOkMs, firstRequestMs, secondRequestMs };
  } finally {
    await w.stop();
  }
}

/** What the gateway logged over the whole run: statuses of its access lines and other events. */
function tallyLog(path: string): {
  statuses: Record<string, number>;
  events: Record<string, number>;
  runtime: Record<string, number>;
} {
  const statuses: Record<string, number> = {};
  const events: Record<string, number> = {};
  // Lines workerd itself printed (uncaught exceptions, resource limits…), by first line.
  const runtime: Record<string, number> = {};
  if (!existsSync(path)) return { statuses, events, runtime };
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.startsWith("{")) {
      if (line.trim() === "" || line.startsWith("    at ") || line.includes("nodejs_compat became the default"))
        continue;
      const key = line.slice(0, 160);
      runtime[key] = (runtime[key] ?? 0) + 1;
      continue;
    }
    const event = /"event":"([^"]+)"/.exec(line)?.[1] ?? "?";
    if (event === "request") {
      const status = /"status":(\d+)/.exec(line)?.[1] ?? "?";
      statuses[status] = (statuses[status] ?? 0) + 1;
    } else {
      events[event] = (events[event] ?? 0) + 1;
    }
  }
  return { statuses, events, runtime };
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

interface Report {
  date: string;
  command: string;
  machine: Record<string, string>;
  versions: Record<string, string>;
  settings: Record<string, string>;
  bundle: Bundle;
  composition: BundleComposition;
  answers: ReturnType<typeof tallyLog>;
  startup: { gateway: Startup; passthrough: Startup };
  rows: Row[];
  micro: MicroResult[];
  ladder: LadderStep[];
  profile?: ProfileSummary;
  passthroughProfile?: ProfileSummary;
  targets: Array<{ target: string; goal: string; measured: string; met: boolean | null }>;
}

const f0 = (n: number) => Math.round(n).toLocaleString("en");
const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const ms = (us: number) => (us / 1000).toFixed(2);

function rowFor(rows: Row[], name: string): Row | undefined {
  return rows.find((r) => r.scenario.name === name);
}

function evaluateTargets(rows: Row[], bundle: Bundle, composition: BundleComposition): Report["targets"] {
  const get = (name: string, c: number) => rowFor(rows, name)?.byConcurrency.get(c);
  const out: Report["targets"] = [];
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
        DURATION_S;
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
    const first = Math.min(...(rowFor(rows, "unknown")?.runs.get(CONCURRENCIES[0]!) ?? []).map((r) => r.startedAt));
    const spanS = (Math.max(...unknownLog.map((e) => e.at)) - first) / 1000 + WARMUP_S;
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

function markdown(report: Report): string {
  const lines: string[] = [];
  const push = (...l: string[]) => lines.push(...l);
  push(`Generated by \`${report.command}\` on ${report.date}.`, "");
  push("### Targets", "", "| target | goal | measured | |", "|---|---|---|---|");
  for (const t of report.targets)
    push(`| ${t.target} | ${t.goal} | ${t.measured} | ${t.met === null ? "–" : t.met ? "met" : "**missed**"} |`);
  push("");
  push("### Scenarios", "");
  push(
    "CPU = CPU time of the workerd process (user + system, all threads) per request, from `/proc/<pid>/stat` around the measured run. KV = reads counted by the local KV host. Ratios compare with the passthrough Worker at the same concurrency (the 1 MiB scenario with the 1 MiB passthrough).",
    "",
  );
  push(
    "| scenario | c | req/s | p50 ms | p99 ms | CPU µs/req | KV reads/req | KV writes/req | CPU × passthrough | req/s × passthrough |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const c of CONCURRENCIES) {
    for (const row of report.rows) {
      const m = row.byConcurrency.get(c);
      if (m === undefined) continue;
      const base = rowFor(report.rows, row.scenario.baseline)?.byConcurrency.get(c);
      const cpuRatio = base ? m.cpuUsPerRequest / base.cpuUsPerRequest : Number.NaN;
      const rpsRatio = base ? m.rps / base.rps : Number.NaN;
      const isBase = row.scenario.name === row.scenario.baseline;
      push(
        `| ${row.scenario.title} | ${c} | ${f0(m.rps)} | ${ms(m.p50Us)} | ${ms(m.p99Us)} | ${f0(m.cpuUsPerRequest)} (${f0(m.cpuSpread[0])}–${f0(m.cpuSpread[1])}) | ${f2(m.kvReadsPerRequest)} | ${f2(m.kvPutsPerRequest)} | ${isBase ? "1" : f2(cpuRatio)} | ${isBase ? "1" : f2(rpsRatio)} |`,
      );
    }
  }
  if (ROUNDS > 1) {
    push(
      "",
      `${ROUNDS} runs of ${DURATION_S} s per row, interleaved in random order; CPU is pooled (total CPU / total requests) with the range of single runs in brackets; p50/p99 are medians of the runs. Hot-key CPU ratio per round (c=32): ${roundRatios(report.rows, "hot", 32).map(f2).join(", ")}.`,
    );
  }
  const list = (o: Record<string, number>) =>
    Object.entries(o)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} × ${f0(v)}`)
      .join(", ") || "none";
  push(
    "",
    `Everything the gateway answered during the run, from its own access log: ${list(report.answers.statuses)}. Other log events: ${list(report.answers.events)} (a \`response_stream_aborted\` is also logged when wrk closes its connections mid-download at the end of each 1 MiB run). Messages from workerd itself: ${list(report.answers.runtime)}.`,
  );
  push("");
  push("### Startup and bundle", "");
  const g = report.startup.gateway;
  const p = report.startup.passthrough;
  push("Medians of three cold starts each.", "", "| | gateway | passthrough |", "|---|---:|---:|");
  push(`| workerd spawn → socket listening | ${f1(g.listeningMs)} ms | ${f1(p.listeningMs)} ms |`);
  push(
    `| workerd spawn → first 200 (\`/healthz\` / passthrough GET) | ${f1(g.firstOkMs)} ms | ${f1(p.firstOkMs)} ms |`,
  );
  push(
    `| first forwarded request after that (gateway: key import, KV read, first signature) | ${f1(g.firstRequestMs)} ms | ${f1(p.firstRequestMs)} ms |`,
  );
  push(`| second forwarded request | ${f1(g.secondRequestMs)} ms | ${f1(p.secondRequestMs)} ms |`);
  push(
    "",
    `Bundle (\`wrangler deploy --dry-run\`, main module): ${f0(report.bundle.bytes)} bytes, ${f0(report.bundle.gzipBytes)} bytes gzip -9 (wrangler: \`${report.bundle.wranglerSummary}\`). Minified (\`minify = true\`): ${f0(report.composition.minifiedBytes)} bytes, ${f0(report.composition.minifiedGzipBytes)} bytes gzip -9.`,
    "",
    "| minified bytes by package | bytes | share |",
    "|---|---:|---:|",
  );
  for (const p of report.composition.byPackage.slice(0, 10)) {
    push(`| ${p.name} | ${f0(p.bytes)} | ${f1((100 * p.bytes) / report.composition.minifiedBytes)}% |`);
  }
  push("");
  if (report.micro.length > 0) {
    push("### Signing and other per-request pieces (microbenchmarks in workerd)", "");
    push("CPU per operation, from n back-to-back operations in one request minus n empty ones.", "");
    push("| operation | what | µs/op (median) | runs |", "|---|---|---:|---|");
    for (const r of report.micro) {
      push(
        `| ${r.op} | ${MICRO_DESCRIPTIONS[r.op] ?? ""} | ${f2(r.usPerOp)} | ${r.samples.map(f1).join(", ")} (n=${f0(r.n)}) |`,
      );
    }
    push("");
  }
  if (report.ladder.length > 0) {
    push("### Cost ladder: what each piece costs in context (c=32)", "");
    push(
      "A passthrough Worker that adds the forwarding path's pieces one rung at a time, built from the gateway's own modules (scripts/bench/workers/ladder.ts); two pieces added alone to the passthrough; the gateway with every request sent through its Hono app (scripts/bench/workers/gateway-routed.ts); and the real gateway — measured in short runs interleaved in random order. Median CPU per request; single increments are noisy to ±10–20 µs (compare several runs).",
      "",
    );
    push("| rung | CPU µs/req | + over | × passthrough |", "|---|---:|---:|---:|");
    const base = report.ladder[0]!.cpuUsPerRequest;
    let previous = base;
    report.ladder.forEach((step, i) => {
      let delta = "";
      if (i > 0 && step.kind === "rung") delta = `+${f0(step.cpuUsPerRequest - previous)} over the rung before`;
      else if (i > 0) delta = `+${f0(step.cpuUsPerRequest - base)} over passthrough`;
      if (step.kind === "rung") previous = step.cpuUsPerRequest;
      const label =
        step.kind === "rung" && i > 0
          ? `+ ${step.rung}`
          : step.kind === "probe"
            ? `passthrough + ${step.rung}`
            : step.rung;
      push(`| ${label} | ${f0(step.cpuUsPerRequest)} | ${delta} | ${f2(step.cpuUsPerRequest / base)} |`);
    });
    push("");
  }
  const profileTable = (title: string, summary: ProfileSummary | undefined) => {
    if (summary === undefined) return;
    push(`### ${title}`, "");
    push(
      `${f0(summary.samples)} samples; the isolate was idle in ${f1(summary.idlePercent)}% of them. Shares below are of the busy samples.`,
      "",
    );
    push("| by module | share |", "|---|---:|");
    for (const s of summary.byModule.slice(0, 12)) push(`| ${s.name} | ${f1(s.percent)}% |`);
    push("", "| by function, self | share | | by function, including callees | share |", "|---|---:|---|---|---:|");
    for (let i = 0; i < Math.min(12, Math.max(summary.selfByFunction.length, summary.totalByFunction.length)); i++) {
      const a = summary.selfByFunction[i];
      const b = summary.totalByFunction[i];
      push(
        `| ${a?.name ?? ""} | ${a ? `${f1(a.percent)}%` : ""} | | ${b?.name ?? ""} | ${b ? `${f1(b.percent)}%` : ""} |`,
      );
    }
    push("");
  };
  profileTable(
    "CPU profile: gateway, hot key, c=32 (the same source bundled unminified, so functions keep their names)",
    report.profile,
  );
  profileTable("CPU profile: passthrough, c=32", report.passthroughProfile);
  push("### Machine and versions", "");
  for (const [k, v] of Object.entries({ ...report.machine, ...report.versions, ...report.settings }))
    push(`- ${k}: ${v}`);
  return lines.join("\n");
}

function roundRatios(rows: Row[], name: string, c: number): number[] {
  const mine = rowFor(rows, name)?.runs.get(c) ?? [];
  const base = rowFor(rows, "passthrough")?.runs.get(c) ?? [];
  return mine.map((r, i) => r.cpuUs / r.wrk.requests / ((base[i]?.cpuUs ?? Number.NaN) / (base[i]?.wrk.requests ?? 1)));
}

const BEGIN = "<!-- bench:begin (generated by npm run bench; edits between these markers are overwritten) -->";
const END = "<!-- bench:end -->";

function writeDoc(path: string, generated: string): void {
  const block = `${BEGIN}\n${generated}\n${END}`;
  if (existsSync(path)) {
    const old = readFileSync(path, "utf8");
    const a = old.indexOf(BEGIN.slice(0, 20));
    const b = old.indexOf(END);
    if (a !== -1 && b !== -1) {
      writeFileSync(path, old.slice(0, a) + block + old.slice(b + END.length));
      return;
    }
    writeFileSync(path, `${old.trimEnd()}\n\n${block}\n`);
    return;
  }
  writeFileSync(path, `# Benchmarks\n\n${block}\n`);
}

function printTable(rows: Row[]): void {
  say("");
  say(
    `${"scenario".padEnd(20)} ${"c".padStart(3)} ${"req/s".padStart(8)} ${"p50ms".padStart(7)} ${"p99ms".padStart(7)} ${"CPUµs".padStart(7)} ${"KVr/req".padStart(8)} ${"CPU×".padStart(6)} ${"rps×".padStart(6)}`,
  );
  for (const c of CONCURRENCIES) {
    for (const row of rows) {
      const m = row.byConcurrency.get(c);
      if (!m) continue;
      const base = rowFor(rows, row.scenario.baseline)?.byConcurrency.get(c);
      say(
        `${row.scenario.name.padEnd(20)} ${String(c).padStart(3)} ${f0(m.rps).padStart(8)} ${ms(m.p50Us).padStart(7)} ${ms(m.p99Us).padStart(7)} ${f0(m.cpuUsPerRequest).padStart(7)} ${f2(m.kvReadsPerRequest).padStart(8)} ${(base ? f2(m.cpuUsPerRequest / base.cpuUsPerRequest) : "-").padStart(6)} ${(base ? f2(m.rps / base.rps) : "-").padStart(6)}`,
      );
    }
  }
  say("");
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const workDir = mkdtempSync(join(tmpdir(), "nixflex-bench-"));
  say("Nixflex gateway benchmark");
  let wrkVersion: string;
  try {
    wrkVersion = ensureWrk(say);
  } catch (error) {
    say(`MISSING: ${(error as Error).message}`);
    process.exitCode = 2;
    return;
  }
  if (!existsSync(WORKERD_BIN)) {
    say(`MISSING: workerd at ${WORKERD_BIN}; run npm install.`);
    process.exitCode = 2;
    return;
  }
  const pins = choosePins();
  say(pins.workerd ? "Pinning: workerd on CPU 0; wrk, origin and KV host on CPU 1." : "No CPU pinning.");

  say("Bundling the gateway (wrangler deploy --dry-run)…");
  const bundle = await bundleGateway(join(workDir, "gateway"));
  const composition = await bundleComposition(join(workDir, "composition/index.js"));
  say(
    `  ${f0(bundle.bytes)} bytes, ${f0(bundle.gzipBytes)} bytes gzip (minified: ${f0(composition.minifiedGzipBytes)} bytes gzip)`,
  );

  const origin = await startOrigin();
  const kv = startKvServer();
  const store = kv.namespace("api-keys");
  const signingKeys = benchSigningKeys();
  say(`Seeding ${MANY_KEYS + 1} keys through the gateway's KeyStore…`);
  const [hot] = await seedKeys(store, 1);
  hotRecordKey = kvKeys.record(hot!.keyId);
  const many = await seedKeys(store, MANY_KEYS);
  const unknown = unknownKeys(UNKNOWN_IDS);
  const garbage = garbageAuthorizations(CLIENT_ADDRESSES);
  store.takeCounts();

  const gatewayBindings: Record<string, WorkerdBinding> = {
    API_KEYS: { kvNamespace: "api-keys" },
    ENGINE_URL: origin.url,
    ENGINE_TIMEOUT_MS: "30000",
    IDENTITY_ISSUER: "https://api.nixflex.com",
    IDENTITY_AUDIENCE: "nixflex-engine",
    IDENTITY_SIGNING_KEYS: signingKeys,
    AUTH_FAILURE_LIMITER: { ratelimit: { limit: 60, period: 60 } },
    KEY_CHANGES: { durableObject: { className: "KeyChangeLog" } },
  };
  const passthroughScript = join(import.meta.dirname, "workers/passthrough.js");
  /** The gateway as wrangler bundles it; `log` names its log file (the main run's by default). */
  const startGateway = (log = "gateway.log") =>
    startWorkerd({
      bundleDir: bundle.dir,
      bindings: gatewayBindings,
      kv,
      cpus: pins.workerd,
      logTo: join(workDir, log),
    });
  const startPassthrough = (inspectorPort?: number) =>
    startWorkerd({
      script: passthroughScript,
      bindings: { ORIGIN: origin.url },
      kv,
      cpus: pins.workerd,
      logTo: join(workDir, "passthrough.log"),
      inspectorPort,
    });

  say("Startup…");
  const hotHeaders = { authorization: bearer(hot!), "cf-connecting-ip": "203.0.113.7" };
  // Three cold starts each, alternating; the median of every column.
  const starts: { gateway: Startup[]; passthrough: Startup[] } = { gateway: [], passthrough: [] };
  for (let i = 0; i < 3; i++) {
    starts.gateway.push(await measureStartup(() => startGateway(), "/v1/agents/a1", hotHeaders, "/healthz"));
    starts.passthrough.push(await measureStartup(() => startPassthrough(), "/v1/agents/a1", {}, "/healthz"));
  }
  const medianStartup = (list: Startup[]): Startup => ({
    listeningMs: median(list.map((x) => x.listeningMs)),
    firstOkMs: median(list.map((x) => x.firstOkMs)),
    firstRequestMs: median(list.map((x) => x.firstRequestMs)),
    secondRequestMs: median(list.map((x) => x.secondRequestMs)),
  });
  const startup = { gateway: medianStartup(starts.gateway), passthrough: medianStartup(starts.passthrough) };
  say(
    `  gateway: first 200 after ${f1(startup.gateway.firstOkMs)} ms, first forward ${f1(startup.gateway.firstRequestMs)} ms`,
  );
  store.takeCounts();

  const every = scenarios(hot!, many, unknown, garbage);
  const chosen = every.filter((s) => args.only === undefined || args.only.split(",").includes(s.name));
  const all = every.filter((s) => chosen.includes(s) || chosen.some((x) => x.baseline === s.name));
  const specFiles = new Map<string, string>();
  for (const s of all) {
    const file = join(workDir, `${s.name}.spec`);
    writeRequestSpec(file, s.spec);
    specFiles.set(s.name, file);
  }

  const gateway = await startGateway();
  const passthrough = await startPassthrough();
  const rows: Row[] = all.map((scenario) => ({ scenario, byConcurrency: new Map(), runs: new Map() }));
  let ladder: LadderStep[] = [];
  try {
    for (const s of all) await checkSamples(s, s.target === "gateway" ? gateway : passthrough, origin);
    // JIT and connection pools warm before anything is measured.
    for (const target of [gateway, passthrough]) {
      const first = all.find((s) => (s.target === "gateway" ? gateway : passthrough) === target);
      if (first === undefined) continue;
      await runWrk({
        url: target.url,
        specFile: specFiles.get(first.name)!,
        connections: 32,
        durationS: 2,
        cpus: pins.load,
      });
    }
    // Rounds of every (scenario, concurrency) in a fresh random order each: load from other
    // processes on a shared machine drifts over seconds, and interleaving spreads it evenly.
    for (let round = 1; round <= ROUNDS; round++) {
      const order = rows.flatMap((row) => CONCURRENCIES.map((c) => ({ row, c }))).sort(() => Math.random() - 0.5);
      for (const { row, c } of order) {
        const s = row.scenario;
        const w = s.target === "gateway" ? gateway : passthrough;
        const run = await measure(s, w, origin, c, pins, specFiles.get(s.name)!, round === 1 ? WARMUP_S : 0);
        say(
          `  [${round}/${ROUNDS}] ${s.name.padEnd(18)} c=${String(c).padEnd(2)} ${f0(run.wrk.rps).padStart(7)} req/s  p50 ${ms(run.wrk.p50Us)} ms  p99 ${ms(run.wrk.p99Us)} ms  CPU ${f0(run.cpuUs / run.wrk.requests)} µs/req  KV ${f2(run.kvReads / run.wrk.requests)} reads/req`,
        );
        const list = row.runs.get(c) ?? [];
        list.push(run);
        row.runs.set(c, list);
      }
    }
    if (args.ladder && specFiles.has("hot")) {
      say(`Cost ladder (c=32, ${args["ladder-rounds"]} interleaved runs of ${DURATION_S} s per rung)…`);
      ladder = await runLadder({
        workDir,
        origin: origin.url,
        signingKeys,
        specFile: specFiles.get("hot")!,
        gateway,
        startGateway: () => startGateway("ladder-gateway.log"),
        gatewayBindings,
        kv,
        rounds: Number(args["ladder-rounds"]),
        durationS: DURATION_S,
        cpus: pins,
      });
      for (const step of ladder) say(`  ${step.rung.padEnd(24)} ${f0(step.cpuUsPerRequest).padStart(5)} µs/req`);
    }
  } finally {
    await gateway.stop();
    await passthrough.stop();
  }
  for (const row of rows) for (const [c, list] of row.runs) row.byConcurrency.set(c, pool(list));
  printTable(rows);

  let profile: ProfileSummary | undefined;
  let passthroughProfile: ProfileSummary | undefined;
  if (!args["no-profile"] && specFiles.has("hot") && specFiles.has("passthrough")) {
    say("CPU profiles (hot key and passthrough, c=32, 4 s each)…");
    const take = async (start: (port: number) => Promise<Workerd>, specFile: string, bundleFile?: string) => {
      const port = await freePort();
      const w = await start(port);
      try {
        await runWrk({ url: w.url, specFile, connections: 32, durationS: 1, cpus: pins.load });
        const p = await recordCpuProfile(port, async () => {
          await runWrk({ url: w.url, specFile, connections: 32, durationS: 4, cpus: pins.load });
        });
        return summarizeProfile(p, bundleFile);
      } finally {
        await w.stop();
      }
    };
    // The same source bundled without minification, so the profile names functions and modules.
    const readable = await bundleWorker(join(REPO_ROOT, "src/index.ts"), join(workDir, "gateway-readable/index.js"));
    profile = await take(
      (port) =>
        startWorkerd({
          script: readable,
          bindings: gatewayBindings,
          kv,
          cpus: pins.workerd,
          logTo: join(workDir, "gateway.log"),
          inspectorPort: port,
        }),
      specFiles.get("hot") ?? specFiles.get("passthrough")!,
      readable,
    );
    passthroughProfile = await take((port) => startPassthrough(port), specFiles.get("passthrough")!);
  }

  let micro: MicroResult[] = [];
  if (!args["no-micro"]) {
    say("Microbenchmarks (signing options and other pieces)…");
    micro = await runMicrobenchmarks({
      workDir,
      signingKeys,
      authorization: bearer(hot!),
      cpus: pins.workerd,
      repeat: 3,
    });
    for (const r of micro) say(`  ${r.op.padEnd(24)} ${f2(r.usPerOp).padStart(8)} µs/op`);
  }

  await origin.close();
  await kv.close();

  const versions = {
    node: process.version,
    workerd: sh(WORKERD_BIN, ["--version"]),
    wrk: wrkVersion,
    wrangler: JSON.parse(readFileSync(join(REPO_ROOT, "node_modules/wrangler/package.json"), "utf8")).version,
    hono: JSON.parse(readFileSync(join(REPO_ROOT, "node_modules/hono/package.json"), "utf8")).version,
    jose: JSON.parse(readFileSync(join(REPO_ROOT, "node_modules/jose/package.json"), "utf8")).version,
    "gateway commit":
      sh("git", ["-C", REPO_ROOT, "rev-parse", "--short", "HEAD"]) +
      (sh("git", ["-C", REPO_ROOT, "status", "--porcelain", "src"]) ? " (with uncommitted src changes)" : ""),
  };
  const machine = {
    cpu: `${osCpus()[0]?.model ?? "?"} × ${osCpus().length}`,
    kernel: sh("uname", ["-sr"]),
    os: readFileSync("/etc/os-release", "utf8").match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1] ?? "?",
    "load average at the end": loadavg()
      .map((x) => x.toFixed(2))
      .join(" "),
  };
  const settings = {
    runs: `${ROUNDS} interleaved runs of ${DURATION_S} s per scenario and concurrency (a ${WARMUP_S} s warm-up before the first)`,
    pinning: pins.workerd ? `workerd on CPU ${pins.workerd}; wrk, origin and KV host on CPU ${pins.load}` : "none",
    "wall time of the bench": `${f0((performance.now() - started) / 1000)} s`,
  };
  const report: Report = {
    date: `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    machine,
    versions,
    settings,
    bundle,
    composition,
    answers: tallyLog(join(workDir, "gateway.log")),
    startup,
    rows,
    micro,
    ladder,
    profile,
    passthroughProfile,
    targets: evaluateTargets(rows, bundle, composition),
  };
  say("Targets:");
  for (const t of report.targets) say(`  ${t.met ? "met   " : "MISSED"} ${t.target}: ${t.measured} (goal ${t.goal})`);
  const signing = micro.filter((r) => SIGNING_OPS.includes(r.op));
  if (signing.length > 0) say(`Signing: ${signing.map((r) => `${r.op} ${f1(r.usPerOp)} µs`).join(", ")}`);
  if (args.json) {
    writeFileSync(
      args.json,
      JSON.stringify(report, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v), 2),
    );
  }
  if (!args["no-write"]) {
    writeDoc(args.out!, markdown(report));
    say(`Wrote ${args.out}`);
  }
  if (args["keep-logs"]) say(`Logs and specs kept in ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
  say(`Done in ${f0((performance.now() - started) / 1000)} s.`);
}

await main();
