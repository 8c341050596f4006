/**
 * The bench's report: a table on the console, and the Markdown file the bench alone owns
 * (docs/benchmarks/latest.md by default; docs/BENCHMARKS.md holds the prose and links to it).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { BaselineBuild } from "./baseline.ts";
import type { Bundle, BundleComposition } from "./bundle.ts";
import { type ComparedMetric, roundRatios } from "./compare.ts";
import { f0, f1, f2, ms, say } from "./format.ts";
import type { LogTally } from "./gateway-log.ts";
import type { IoCensus } from "./io-census.ts";
import type { LadderStep } from "./ladder.ts";
import { type Row, rowFor } from "./measure.ts";
import { MICRO_DESCRIPTIONS, type MicroResult } from "./microbench.ts";
import type { ProfileSummary } from "./profile.ts";
import type { BenchSettings } from "./settings.ts";
import type { Startup } from "./startup.ts";
import type { TargetCheck } from "./targets.ts";

export interface Report {
  date: string;
  command: string;
  machine: Record<string, string>;
  versions: Record<string, string>;
  /** How the run was set up, as sentences for the report. */
  setup: Record<string, string>;
  settings: BenchSettings;
  bundle: Bundle;
  composition: BundleComposition;
  answers: LogTally;
  startup: { gateway: Startup; passthrough: Startup };
  rows: Row[];
  micro: MicroResult[];
  /** Blocking I/O per forwarded request, of each gateway build. */
  io: IoCensus[];
  ladder: LadderStep[];
  profile?: ProfileSummary;
  passthroughProfile?: ProfileSummary;
  targets: TargetCheck[];
  baseline?: BaselineBuild;
  comparison: ComparedMetric[];
}

type Push = (...lines: string[]) => void;

/** `a / b`, or "–" where there is nothing to divide by (no I/O at all on one side). */
const ratio = (a: number, b: number) => (b === 0 ? "–" : f2(a / b));
/** Whole numbers for CPU and throughput, two decimals for the rest. */
const metricValue = (m: ComparedMetric, n: number) => (m.metric === "CPU µs/req" || m.metric === "req/s" ? f0 : f2)(n);

function scenarioTable(push: Push, report: Report): void {
  const { rows, settings } = report;
  push("### Scenarios", "");
  push(
    "CPU = CPU time of the workerd process (user + system, all threads) per request, from `/proc/<pid>/stat` around the measured run. KV = reads counted by the local KV host; cache = Cache API lookups counted by the local cache host (both blocking I/O a request may wait on besides the engine). Ratios compare with the passthrough Worker at the same concurrency (the 1 MiB scenario with the 1 MiB passthrough).",
    "",
  );
  push(
    "| scenario | c | req/s | p50 ms | p99 ms | CPU µs/req | KV reads/req | KV writes/req | cache lookups/req | CPU × passthrough | req/s × passthrough |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const c of settings.concurrencies) {
    for (const row of rows) {
      const m = row.byConcurrency.get(c);
      if (m === undefined) continue;
      const base = rowFor(rows, row.scenario.comparedWith)?.byConcurrency.get(c);
      const cpuRatio = base ? m.cpuUsPerRequest / base.cpuUsPerRequest : Number.NaN;
      const rpsRatio = base ? m.rps / base.rps : Number.NaN;
      const isBase = row.scenario.name === row.scenario.comparedWith;
      push(
        `| ${row.scenario.title} | ${c} | ${f0(m.rps)} | ${ms(m.p50Us)} | ${ms(m.p99Us)} | ${f0(m.cpuUsPerRequest)} (${f0(m.cpuSpread[0])}–${f0(m.cpuSpread[1])}) | ${f2(m.kvReadsPerRequest)} | ${f2(m.kvPutsPerRequest)} | ${f2(m.cacheMatchesPerRequest)} | ${isBase ? "1" : f2(cpuRatio)} | ${isBase ? "1" : f2(rpsRatio)} |`,
      );
    }
  }
  if (settings.rounds > 1) {
    push(
      "",
      `${settings.rounds} runs of ${settings.durationS} s per row, interleaved in random order; CPU is pooled (total CPU / total requests) with the range of single runs in brackets; p50/p99 are medians of the runs. Hot-key CPU ratio per round (c=32): ${roundRatios(rows, "hot", "passthrough", 32).map(f2).join(", ")}.`,
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
    "",
  );
}

function baselineTable(push: Push, report: Report): void {
  const b = report.baseline;
  if (b === undefined || report.comparison.length === 0) return;
  push(`### Working tree against baseline \`${b.ref}\` (${b.commit.slice(0, 10)}, same run)`, "");
  push(
    `Baseline: ${b.subject}. Built from \`git archive ${b.commit.slice(0, 10)}\` with the same \`wrangler deploy --dry-run\` and the working tree's node_modules (${f0(b.bundle.bytes)} bytes, ${f0(b.bundle.gzipBytes)} gzip; the working tree's: ${f0(report.bundle.bytes)}, ${f0(report.bundle.gzipBytes)}); bindings from its own wrangler.toml${b.durableObjects.length > 0 ? `, hosting ${b.durableObjects.join(", ")}` : ""}. Both gateways and the passthrough ran in the same interleaved rounds.`,
    "",
  );
  push(
    "| hot key, per forwarded request | c | passthrough | working tree | baseline | tree × passthrough | baseline × passthrough | tree / baseline | per round |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
  );
  for (const m of report.comparison) {
    push(
      `| ${m.metric} | ${m.c} | ${metricValue(m, m.passthrough)} | ${metricValue(m, m.head)} | ${metricValue(m, m.baseline)} | ${ratio(m.head, m.passthrough)} | ${ratio(m.baseline, m.passthrough)} | ${ratio(m.head, m.baseline)} | ${m.perRound.map((r) => (Number.isFinite(r) ? f2(r) : "–")).join(", ")} |`,
    );
  }
  push("");
}

const perRequest = (n: number, io: IoCensus) => f2(n / io.requests);
const otherFetches = (io: IoCensus) =>
  Object.entries(io.otherFetches)
    .map(([host, n]) => `${host} ${perRequest(n, io)}`)
    .join(", ") || "0.00";

function ioTable(push: Push, io: IoCensus[]): void {
  if (io.length === 0) return;
  push("### Blocking I/O per forwarded request (hot key)", "");
  push(
    `What a forwarded request waits on besides the engine, counted on a fresh instance of each build (not the measured ones) over ${f0(io[0]!.requests)} sequential hot-key requests after a warm-up: KV reads (the KV host), Cache API lookups (the cache host), Durable Object calls (counted on the stubs of every Durable Object binding) and outbound fetches (every one passes a counting proxy).`,
    "",
  );
  push(
    "| gateway | KV reads | cache lookups | Durable Object calls | engine requests | other outbound fetches |",
    "|---|---:|---:|---:|---:|---|",
  );
  for (const c of io) {
    push(
      `| ${c.label} | ${perRequest(c.kvReads, c)} | ${perRequest(c.cacheLookups, c)} | ${perRequest(c.durableObjectCalls, c)} | ${perRequest(c.engineRequests, c)} | ${otherFetches(c)} |`,
    );
  }
  push("");
}

function startupAndBundle(push: Push, report: Report): void {
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
}

function microTable(push: Push, micro: MicroResult[]): void {
  if (micro.length === 0) return;
  push("### Signing and other per-request pieces (microbenchmarks in workerd)", "");
  push("CPU per operation, from n back-to-back operations in one request minus n empty ones.", "");
  push("| operation | what | µs/op (median) | runs |", "|---|---|---:|---|");
  for (const r of micro) {
    push(
      `| ${r.op} | ${MICRO_DESCRIPTIONS[r.op] ?? ""} | ${f2(r.usPerOp)} | ${r.samples.map(f1).join(", ")} (n=${f0(r.n)}) |`,
    );
  }
  push("");
}

function ladderTable(push: Push, ladder: LadderStep[]): void {
  if (ladder.length === 0) return;
  push("### Cost ladder: what each piece costs in context (c=32)", "");
  push(
    "A passthrough Worker that adds the gateway's own request functions one rung at a time (scripts/bench/workers/ladder.ts calls them; it copies none); pieces of the forwarding path added alone to the passthrough; and the real gateway — measured in short runs interleaved in random order. Median CPU per request; single increments are noisy to ±10–20 µs (compare several runs).",
    "",
  );
  push("| rung | CPU µs/req | + over | × passthrough |", "|---|---:|---:|---:|");
  const base = ladder[0]!.cpuUsPerRequest;
  let previous = base;
  ladder.forEach((step, i) => {
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

function profileTable(push: Push, title: string, summary: ProfileSummary | undefined): void {
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
}

/** The whole generated file: numbers and tables only (the analysis is docs/BENCHMARKS.md). */
export function markdown(report: Report): string {
  const lines: string[] = [];
  const push: Push = (...l) => lines.push(...l);
  push("# The last benchmark run (generated)", "");
  push(
    `Generated by \`${report.command}\` on ${report.date}; every run of \`npm run bench\` rewrites this file. What the numbers mean, and why: [../BENCHMARKS.md](../BENCHMARKS.md).`,
    "",
  );
  push("### Targets", "", "| target | goal | measured | |", "|---|---|---|---|");
  for (const t of report.targets)
    push(`| ${t.target} | ${t.goal} | ${t.measured} | ${t.met === null ? "–" : t.met ? "met" : "**missed**"} |`);
  push("");
  baselineTable(push, report);
  ioTable(push, report.io);
  scenarioTable(push, report);
  startupAndBundle(push, report);
  microTable(push, report.micro);
  ladderTable(push, report.ladder);
  profileTable(
    push,
    "CPU profile: gateway, hot key, c=32 (the same source bundled unminified, so functions keep their names)",
    report.profile,
  );
  profileTable(push, "CPU profile: passthrough, c=32", report.passthroughProfile);
  push("### Machine and versions", "");
  for (const [k, v] of Object.entries({ ...report.machine, ...report.versions, ...report.setup })) push(`- ${k}: ${v}`);
  return `${lines.join("\n")}\n`;
}

/** Writes the generated file whole: nothing in it is anyone's prose. */
export function writeReport(path: string, report: Report): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, markdown(report));
}

export function writeJson(path: string, report: Report): void {
  writeFileSync(
    path,
    JSON.stringify(report, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v), 2),
  );
}

/** The console summary: one line per scenario and concurrency, then the comparison and the targets. */
export function printSummary(report: Report): void {
  const { rows, settings } = report;
  say("");
  say(
    `${"scenario".padEnd(20)} ${"c".padStart(3)} ${"req/s".padStart(8)} ${"p50ms".padStart(7)} ${"p99ms".padStart(7)} ${"CPUµs".padStart(7)} ${"KVr/req".padStart(8)} ${"CPU×".padStart(6)} ${"rps×".padStart(6)}`,
  );
  for (const c of settings.concurrencies) {
    for (const row of rows) {
      const m = row.byConcurrency.get(c);
      if (!m) continue;
      const base = rowFor(rows, row.scenario.comparedWith)?.byConcurrency.get(c);
      say(
        `${row.scenario.name.padEnd(20)} ${String(c).padStart(3)} ${f0(m.rps).padStart(8)} ${ms(m.p50Us).padStart(7)} ${ms(m.p99Us).padStart(7)} ${f0(m.cpuUsPerRequest).padStart(7)} ${f2(m.kvReadsPerRequest).padStart(8)} ${(base ? f2(m.cpuUsPerRequest / base.cpuUsPerRequest) : "-").padStart(6)} ${(base ? f2(m.rps / base.rps) : "-").padStart(6)}`,
      );
    }
  }
  say("");
  if (report.comparison.length > 0) {
    say(`Working tree / baseline ${report.baseline!.ref} (hot key):`);
    for (const m of report.comparison) {
      say(
        `  ${m.metric.padEnd(19)} c=${String(m.c).padEnd(2)} tree ${metricValue(m, m.head)} (${ratio(m.head, m.passthrough)}× passthrough), baseline ${metricValue(m, m.baseline)} (${ratio(m.baseline, m.passthrough)}×), tree/baseline ${ratio(m.head, m.baseline)}`,
      );
    }
  }
  for (const c of report.io) {
    say(
      `Blocking I/O per forwarded request, ${c.label}: KV ${perRequest(c.kvReads, c)}, cache ${perRequest(c.cacheLookups, c)}, Durable Object ${perRequest(c.durableObjectCalls, c)}, engine ${perRequest(c.engineRequests, c)}, other fetches ${otherFetches(c)}`,
    );
  }
  say("Targets:");
  for (const t of report.targets) say(`  ${t.met ? "met   " : "MISSED"} ${t.target}: ${t.measured} (goal ${t.goal})`);
}
