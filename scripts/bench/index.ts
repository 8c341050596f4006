/**
 * `npm run bench`: the gateway against a bare passthrough Worker, both in workerd run
 * directly, in the same run, on the same loopback origin.
 *
 *   npm run bench [-- --duration 2 --rounds 3 --concurrency 1,32 --only hot,garbage
 *                    --baseline main~3 --ladder --no-profile --no-micro --no-write --no-pin
 *                    --json out.json --out docs/benchmarks/latest.md --keep-logs]
 *
 * For every scenario and for c=1 and c=32 it measures requests/s and p50/p99 (wrk), the
 * workerd process's CPU per request (/proc/<pid>/stat around the run), the KV reads and
 * cache lookups per request (counted by the local KV and cache hosts) and the ratio to
 * the passthrough. With `--baseline <ref>` the gateway built from that commit runs in the
 * same interleaved rounds, and the report compares the two. It also measures bundle
 * size, startup, the signing options and a CPU profile, and writes its numbers to a file
 * of its own (docs/benchmarks/latest.md); the analysis is prose in docs/BENCHMARKS.md.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { headVsBaseline } from "./compare.ts";
import { f0, f1, f2, say } from "./format.ts";
import { tallyLog } from "./gateway-log.ts";
import { type IoCensus, ioCensus } from "./io-census.ts";
import { type LadderStep, runLadder } from "./ladder.ts";
import { choosePins, machine, versions } from "./machine.ts";
import { Measurer, type Pins, type Row } from "./measure.ts";
import { runMicrobenchmarks, SIGNING_OPS, type MicroResult } from "./microbench.ts";
import { profileHotKey } from "./profiles.ts";
import { printSummary, type Report, writeJson, writeReport } from "./report.ts";
import { bearer, chooseScenarios, scenarios, type Target } from "./scenarios.ts";
import { readSettings, type BenchSettings } from "./settings.ts";
import { buildStack, type Stack } from "./stack.ts";
import { measureStartups } from "./startup.ts";
import { evaluateTargets } from "./targets.ts";
import { WORKERD_BIN, type Workerd } from "./workerd.ts";
import { ensureWrk, writeRequestSpec } from "./wrk.ts";

/** wrk's version, or null (and a MISSING line) when wrk or workerd is not there. */
function checkTools(): string | null {
  try {
    const wrk = ensureWrk(say);
    if (existsSync(WORKERD_BIN)) return wrk;
    say(`MISSING: workerd at ${WORKERD_BIN}; run npm install.`);
  } catch (error) {
    say(`MISSING: ${(error as Error).message}`);
  }
  return null;
}

/** Cold starts of the gateway and the passthrough (the KV reads they make are not counted). */
async function startupOf(stack: Stack): Promise<Report["startup"]> {
  say("Startup…");
  const hotHeaders = { authorization: bearer(stack.keys.hot), "cf-connecting-ip": "203.0.113.7" };
  const startup = await measureStartups(
    { gateway: () => stack.start("gateway"), passthrough: () => stack.start("passthrough") },
    hotHeaders,
  );
  say(
    `  gateway: first 200 after ${f1(startup.gateway.firstOkMs)} ms, first forward ${f1(startup.gateway.firstRequestMs)} ms`,
  );
  stack.kv.namespace("api-keys").takeCounts();
  return startup;
}

/** The chosen scenarios as empty rows, each with its wrk request file. */
function prepareRows(stack: Stack, settings: BenchSettings): { rows: Row[]; specFiles: Map<string, string> } {
  const all = chooseScenarios(scenarios(stack.keys, stack.baseline?.ref), settings.only);
  const specFiles = new Map<string, string>();
  for (const s of all) {
    const file = join(stack.workDir, `${s.name.replace("@", "-")}.spec`);
    writeRequestSpec(file, s.spec);
    specFiles.set(s.name, file);
  }
  return { rows: all.map((scenario) => ({ scenario, byConcurrency: new Map(), runs: new Map() })), specFiles };
}

/** Starts every target the rows need, runs the rounds (and the ladder), and stops them. */
async function measureRows(
  stack: Stack,
  rows: Row[],
  specFiles: Map<string, string>,
  settings: BenchSettings,
  pins: Pins,
): Promise<{ measurer: Measurer; ladder: LadderStep[] }> {
  const measurer = new Measurer(settings, stack.origin, pins, stack.hotRecordKey);
  const targets = new Map<Target, Workerd>();
  let ladder: LadderStep[] = [];
  try {
    for (const target of new Set(rows.map((r) => r.scenario.target))) targets.set(target, await stack.start(target));
    await measurer.runRounds(rows, targets, specFiles);
    if (settings.ladder && specFiles.has("hot")) {
      say(`Cost ladder (c=32, ${settings.ladderRounds} interleaved runs of ${settings.durationS} s per rung)…`);
      ladder = await runLadder({
        stack,
        specFile: specFiles.get("hot")!,
        gateway: targets.get("gateway")!,
        settings,
        pins,
      });
      for (const step of ladder) say(`  ${step.rung.padEnd(24)} ${f0(step.cpuUsPerRequest).padStart(5)} µs/req`);
    }
  } finally {
    for (const w of targets.values()) await w.stop();
  }
  return { measurer, ladder };
}

async function microbenchmarks(stack: Stack, pins: Pins): Promise<MicroResult[]> {
  say("Microbenchmarks (signing options and other pieces)…");
  const micro = await runMicrobenchmarks({
    workDir: stack.workDir,
    signingKeys: stack.signingKeys,
    authorization: bearer(stack.keys.hot),
    cpus: pins.workerd,
    repeat: 3,
  });
  for (const r of micro) say(`  ${r.op.padEnd(24)} ${f2(r.usPerOp).padStart(8)} µs/op`);
  return micro;
}

function publish(report: Report, settings: BenchSettings): void {
  printSummary(report);
  const signing = report.micro.filter((r) => SIGNING_OPS.includes(r.op));
  if (signing.length > 0) say(`Signing: ${signing.map((r) => `${r.op} ${f1(r.usPerOp)} µs`).join(", ")}`);
  if (settings.json) writeJson(settings.json, report);
  if (settings.write) {
    writeReport(settings.out, report);
    say(`Wrote ${settings.out}`);
  }
}

/** Everything the run measured, with the machine, the versions and the targets checked. */
function assemble(run: {
  settings: BenchSettings;
  started: number;
  pins: Pins;
  wrkVersion: string;
  stack: Stack;
  startup: Report["startup"];
  rows: Row[];
  measurer: Measurer;
  ladder: LadderStep[];
  micro: MicroResult[];
  io: IoCensus[];
  profiles: Pick<Report, "profile" | "passthroughProfile">;
}): Report {
  const { settings, pins, stack, rows } = run;
  return {
    date: `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
    command: settings.command,
    machine: machine(),
    versions: versions(run.wrkVersion),
    setup: {
      runs: `${settings.rounds} interleaved runs of ${settings.durationS} s per scenario and concurrency (a ${settings.warmupS} s warm-up before the first)`,
      pinning: pins.workerd ? `workerd on CPU ${pins.workerd}; wrk, origin and KV host on CPU ${pins.load}` : "none",
      "wall time of the bench": `${f0((performance.now() - run.started) / 1000)} s`,
    },
    settings,
    bundle: stack.bundle,
    composition: stack.composition,
    answers: tallyLog(join(stack.workDir, "gateway.log")),
    startup: run.startup,
    rows,
    micro: run.micro,
    io: run.io,
    ladder: run.ladder,
    ...run.profiles,
    targets: evaluateTargets(rows, stack.bundle, stack.composition, settings, run.measurer.kvReadLog),
    baseline: stack.baseline,
    comparison: headVsBaseline(rows, settings.concurrencies),
  };
}

async function main(): Promise<number> {
  const started = performance.now();
  const settings = readSettings();
  say("Nixflex gateway benchmark");
  const wrkVersion = checkTools();
  if (wrkVersion === null) return 2;
  const pins = choosePins(settings.pin);
  say(pins.workerd ? "Pinning: workerd on CPU 0; wrk, origin and KV host on CPU 1." : "No CPU pinning.");
  const workDir = mkdtempSync(join(tmpdir(), "nixflex-bench-"));
  try {
    const stack = await buildStack(workDir, pins, settings.baseline);
    let report: Report;
    try {
      const startup = await startupOf(stack);
      const { rows, specFiles } = prepareRows(stack, settings);
      const { measurer, ladder } = await measureRows(stack, rows, specFiles, settings, pins);
      const io = specFiles.has("hot") ? await ioCensus(stack) : [];
      const profiles =
        settings.profile && specFiles.has("hot") && specFiles.has("passthrough")
          ? await profileHotKey(stack, { hot: specFiles.get("hot")!, passthrough: specFiles.get("passthrough")! }, pins)
          : {};
      const micro = settings.micro ? await microbenchmarks(stack, pins) : [];

      report = assemble({
        settings,
        started,
        pins,
        wrkVersion,
        stack,
        startup,
        rows,
        measurer,
        ladder,
        micro,
        io,
        profiles,
      });
    } finally {
      await stack.close();
    }
    publish(report, settings);
  } finally {
    if (settings.keepLogs) say(`Logs and specs kept in ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
  say(`Done in ${f0((performance.now() - started) / 1000)} s.`);
  return 0;
}

process.exitCode = await main();
