/**
 * `npm run soak`: the gateway in workerd at saturation for a while, with valid, invalid
 * and key-management traffic at once; every answer is checked against its class, and
 * workerd's resident memory must not grow beyond a stated bound (docs/SOAK.md).
 *
 *   npm run soak [-- --duration 10m --connections 32 --warmup auto --rss-bound-mb 64 --heap-bound-mb 8
 *                    --cycle-ms 250 --failure-limit 60 --json-out soak.json --workerd-log gw.log
 *                    --bundle-dir <prebuilt bundle> --fault kv-down]
 *
 * Exits 0 only when clean: no unexpected status or body, no socket error or timeout, the
 * failure limiter behaved as configured, nothing unauthenticated reached the origin,
 * workerd's RSS growth (median of the last 5 s under load minus median of the 5 s after
 * warm-up) stayed within --rss-bound-mb, and the isolate's V8 heap after collections
 * (lowest reading of the first and last 10 s, through workerd's inspector) within
 * --heap-bound-mb. Exits 1 when a check fails or the soak cannot run.
 *
 * Built on the benchmark harness (scripts/bench/lib.ts): the gateway bundled as wrangler
 * would upload it, run in workerd directly, KV served by the counting local KV host, the
 * loopback origin as the engine, wrk as the load generator (one process per class).
 * scripts/soak/ holds the pieces: settings, keys, traffic, stack, load, verdict, report.
 */
import { loadavg } from "node:os";
import { ensureWrk } from "./bench/lib.ts";
import { runLoad } from "./soak/load.ts";
import { printReport, writeSummary } from "./soak/report.ts";
import { readSettings, USAGE } from "./soak/settings.ts";
import { type Defer, say, startSoakStack } from "./soak/stack.ts";
import { judge } from "./soak/verdict.ts";

const startedAt = performance.now();

/** What to undo at the end, newest first; also run on SIGINT/SIGTERM/SIGHUP. */
const undo: Array<() => Promise<void> | void> = [];
const defer: Defer = (step) => undo.push(step);
async function cleanup(): Promise<void> {
  while (undo.length > 0) {
    try {
      await undo.pop()!();
    } catch {}
  }
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    void cleanup().then(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  const settings = readSettings();
  if (settings.help) {
    say(USAGE);
    return 0;
  }
  say(
    `Soak: ${settings.durationS} s at saturation, ${settings.connections} connections, warm-up ${settings.warmupS} s`,
  );
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  say(`  wrk: ${ensureWrk(say)}; load average ${load}`);
  const stack = await startSoakStack(settings, defer);
  const outcome = await runLoad(stack, settings, defer);
  const verdict = judge(outcome, settings);
  const run = { settings, stack, load: outcome, verdict, endToEndS: (performance.now() - startedAt) / 1000 };
  printReport(run);
  if (settings.jsonOut !== undefined) writeSummary(settings.jsonOut, run);
  return verdict.problems.length === 0 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  say(`soak failed to run: ${(error as Error).stack ?? error}`);
}
await cleanup();
process.exit(code);
