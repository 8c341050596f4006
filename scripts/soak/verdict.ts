/**
 * The soak's verdict: every check that makes it fail (unexpected answers, socket errors,
 * the limiter, unauthenticated traffic at the origin, RSS and heap growth), and the
 * figures the report prints beside them.
 */
import { unexpectedCount } from "./classes.ts";
import type { LoadOutcome } from "./load.ts";
import { medianKb, minKb, rssSlopeKbPerMin } from "./memory.ts";
import type { SoakSettings } from "./settings.ts";
import { f0, f1, mb } from "./stack.ts";

export interface Verdict {
  problems: string[];
  unexpected: number;
  socketErrors: number;
  limiter: { limit: number; periodS: number; abuser401: number; abuser429: number; max401: number };
  forwarded200: number;
  originExcess: number;
  memory: {
    startKb: number | null;
    endKb: number | null;
    peakKb: number | null;
    slope: number | null;
    growthKb: number | null;
    heapStartKb: number | null;
    heapEndKb: number | null;
    heapPeakKb: number;
    heapGrowthKb: number | null;
  };
}

const socketErrorsOf = (e: { connect: number; read: number; write: number; timeout: number }) =>
  e.connect + e.read + e.write + e.timeout;

/** Unexpected answers and socket errors, per class and of the lifecycles. */
function answers(load: LoadOutcome, problems: string[]): { unexpected: number; socketErrors: number } {
  const { lifecycle } = load;
  const byName = new Map(load.results.map((r) => [r.name, r]));
  let unexpected = lifecycle.unexpected - lifecycle.socketErrors;
  let socketErrors = lifecycle.socketErrors;
  for (const cls of load.traffic) {
    const r = byName.get(cls.name);
    if (r === undefined) continue;
    const n = unexpectedCount(cls, r);
    unexpected += n;
    if (n > 0) {
      const when = `t=${f0(r.badFirstS - load.loadStartedS)}–${f0(r.badLastS - load.loadStartedS)} s`;
      problems.push(`${cls.name}: ${n} unexpected answers at ${when} (first: ${r.badSample})`);
    }
    const e = socketErrorsOf(r.socketErrors);
    socketErrors += e;
    if (e > 0) problems.push(`${cls.name}: socket errors ${JSON.stringify(r.socketErrors)}`);
  }
  if (lifecycle.unexpected > 0)
    problems.push(
      `lifecycle: ${lifecycle.unexpected} failed checks (first: ${lifecycle.failures
        .slice(0, 3)
        .map((f) => f.slice(0, 120))
        .join(" | ")})`,
    );
  if (lifecycle.cycles === 0) problems.push("lifecycle: no cycle ran");
  return { unexpected, socketErrors };
}

/** The limiter, as configured: the abuser's 401s are bounded by the windows the run touched. */
function limiterCheck(load: LoadOutcome, settings: SoakSettings, problems: string[]): Verdict["limiter"] {
  const abuser = load.results.find((r) => r.name === "abuser");
  const windows = Math.ceil(settings.durationS / settings.failurePeriodS) + 1;
  const limiter = {
    limit: settings.failureLimit,
    periodS: settings.failurePeriodS,
    abuser401: abuser?.counts["401"] ?? 0,
    abuser429: abuser?.counts["429"] ?? 0,
    max401: settings.failureLimit * windows,
  };
  if (abuser !== undefined) {
    if (limiter.abuser401 > limiter.max401)
      problems.push(
        `limiter: the abuser got ${limiter.abuser401} 401s, more than ${limiter.max401} (${windows} windows)`,
      );
    if (limiter.abuser401 < Math.min(abuser.requests, settings.failureLimit))
      problems.push(`limiter: the abuser got only ${limiter.abuser401} 401s before its first 429`);
    if (abuser.requests > limiter.max401 && limiter.abuser429 === 0)
      problems.push("limiter: the abuser never got a 429");
  }
  return limiter;
}

/** RSS (medians of windows) and the isolate's heap after collections (lowest of windows). */
function memoryCheck(load: LoadOutcome, settings: SoakSettings, problems: string[]): Verdict["memory"] {
  const { samples } = load;
  const { warmupS, durationS, rssWindowS, heapWindowS } = settings;
  const startKb = medianKb(samples, warmupS, warmupS + rssWindowS);
  const endKb = medianKb(samples, durationS - rssWindowS, durationS);
  const measured = samples.filter((s) => s.t >= warmupS && s.t <= durationS);
  const peakKb = measured.length > 0 ? Math.max(...measured.map((s) => s.rssKb)) : null;
  // The trend of the second half, when the start-up climb is over (MB/min, informational).
  const slope = rssSlopeKbPerMin(
    samples.filter((s) => s.t <= durationS),
    Math.max(warmupS, durationS / 2),
  );
  const growthKb = startKb !== null && endKb !== null ? endKb - startKb : null;
  if (growthKb === null) problems.push("RSS: not enough samples");
  else if (growthKb > settings.rssBoundMb * 1024)
    problems.push(`RSS grew ${f1(mb(growthKb))} MB under load, more than the bound of ${settings.rssBoundMb} MB`);

  // What the gateway's JavaScript retains: a leak in the gateway's code shows here first.
  const heapStartKb = minKb(samples, warmupS, warmupS + heapWindowS, "heapKb");
  const heapEndKb = minKb(samples, durationS - heapWindowS, durationS, "heapKb");
  const heapPeakKb = Math.max(0, ...measured.map((s) => s.heapKb ?? 0));
  const heapGrowthKb = heapStartKb !== null && heapEndKb !== null ? heapEndKb - heapStartKb : null;
  if (heapGrowthKb === null) problems.push("heap: no readings from workerd's inspector");
  else if (heapGrowthKb > settings.heapBoundMb * 1024)
    problems.push(
      `the isolate's heap grew ${f1(mb(heapGrowthKb))} MB under load, more than the bound of ${settings.heapBoundMb} MB`,
    );
  return { startKb, endKb, peakKb, slope, growthKb, heapStartKb, heapEndKb, heapPeakKb, heapGrowthKb };
}

export function judge(load: LoadOutcome, settings: SoakSettings): Verdict {
  const problems: string[] = [];
  if (load.wrkError !== undefined) problems.push(`wrk failed: ${load.wrkError}`);
  if (!load.workerdAlive) problems.push("workerd exited during the soak");
  const { unexpected, socketErrors } = answers(load, problems);
  const limiter = limiterCheck(load, settings, problems);

  // Nothing but authenticated traffic may reach the engine. Requests in flight when wrk
  // stopped reached the origin without wrk counting the answer: at most one per connection.
  const forwardCls = load.traffic.find((c) => c.name === "forward")!;
  const forward = load.results.find((r) => r.name === "forward");
  const forwarded200 = (forward?.counts["200"] ?? 0) + load.lifecycle.forwarded;
  const originExcess = load.originCount - forwarded200;
  if (originExcess < 0 || originExcess > forwardCls.connections + 1)
    problems.push(`origin saw ${load.originCount} requests for ${forwarded200} authenticated forwards answered`);

  const memory = memoryCheck(load, settings, problems);
  return { problems, unexpected, socketErrors, limiter, forwarded200, originExcess, memory };
}
