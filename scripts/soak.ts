/**
 * `npm run soak`: the gateway in workerd at saturation for a while, with valid, invalid
 * and key-management traffic at once; every answer is checked against its class, and
 * workerd's resident memory must not grow beyond a stated bound (docs/SOAK.md).
 *
 *   npm run soak [-- --duration 10m --connections 32 --warmup auto --rss-bound-mb 64 --heap-bound-mb 8
 *                    --cycle-ms 250 --json-out soak.json --workerd-log gw.log
 *                    --bundle-dir <prebuilt bundle> --fault kv-down]
 *
 * Exits 0 only when clean: no unexpected status or body, no socket error or timeout, the
 * failure limiter behaved as configured, nothing unauthenticated reached the origin,
 * workerd's RSS growth (median of the last 5 s under load minus median of the 5 s after
 * warm-up) stayed within --rss-bound-mb, and the isolate's V8 heap after collections
 * (lowest reading of the first and last 10 s, through workerd's inspector) within
 * --heap-bound-mb. docs/SOAK.md explains the traffic, the bounds and the figures.
 *
 * Built on the benchmark harness (scripts/bench/lib.ts): the gateway bundled as wrangler
 * would upload it, run in workerd directly, KV served by the counting local KV host, the
 * loopback origin as the engine, wrk as the load generator (one process per class).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { UNAUTHORIZED_BODY } from "../src/errors.ts";
import { generateKeyId, generateSecret } from "../src/keys/format.ts";
import { KeyStore } from "../src/keys/store.ts";
import {
  type BenchKey,
  benchSigningKeys,
  bundleGateway,
  ensureWrk,
  kvAdapter,
  seedKeys,
  startKvServer,
  startOrigin,
  startWorkerd,
  freePort,
} from "./bench/lib.ts";
import {
  type ClassResult,
  type RunningClass,
  type SoakRequest,
  startClass,
  type TrafficClass,
  unexpectedCount,
  writeClassSpec,
} from "./soak/classes.ts";
import { type LifecycleResult, runLifecycles } from "./soak/lifecycle.ts";
import { connectHeapProbe } from "./soak/heap.ts";
import { medianKb, minKb, readRss, rssSlopeKbPerMin, startRssSampler } from "./soak/memory.ts";

const startedAt = performance.now();
const say = (line = "") => process.stdout.write(`${line}\n`);

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "10m" },
    warmup: { type: "string", default: "auto" },
    connections: { type: "string", default: "32" },
    "rss-bound-mb": { type: "string", default: "64" },
    "heap-bound-mb": { type: "string", default: "8" },
    "cycle-ms": { type: "string", default: "250" },
    "failure-limit": { type: "string", default: "60" },
    "json-out": { type: "string" },
    "workerd-log": { type: "string" },
    "bundle-dir": { type: "string" },
    fault: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (args.help) {
  say(
    "npm run soak -- [--duration 10m|30s|1h|90] [--connections 32] [--warmup auto|60s] [--rss-bound-mb 64]\n" +
      "               [--heap-bound-mb 8]\n" +
      "               [--cycle-ms 250] [--failure-limit 60] [--json-out file] [--workerd-log file]\n" +
      "               [--bundle-dir dir] [--fault kv-down]",
  );
  process.exit(0);
}

/** "30s", "10m", "1h", "1500ms" or plain seconds → seconds. */
function seconds(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new Error(`--${option}: expected a duration like 30s, 10m, 1h or 90, got ${text}`);
  const scale = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] ?? "s"]!;
  return Number(match[1]) * scale;
}

const DURATION_S = Math.round(seconds(args.duration!, "duration"));
/** Default: a third of the run, at most 60 s (RSS climbs for about a minute; docs/SOAK.md). */
const WARMUP_S = args.warmup === "auto" ? Math.min(60, Math.round(DURATION_S / 3)) : seconds(args.warmup!, "warmup");
const CONNECTIONS = Number(args.connections);
const RSS_BOUND_MB = Number(args["rss-bound-mb"]);
const HEAP_BOUND_MB = Number(args["heap-bound-mb"]);
const CYCLE_MS = Number(args["cycle-ms"]);
const FAILURE_LIMIT = Number(args["failure-limit"]);
const FAILURE_PERIOD_S = 60;
/**
 * How often RSS and the heap are read. The heap drops to what is live only for a moment
 * after each full collection; reading it four times a second catches that trough.
 */
const SAMPLE_MS = 250;
/** RSS start/end are medians over this many seconds of samples. */
const RSS_WINDOW_S = 5;
/**
 * Heap start/end are the lowest reading over this many seconds: the level after a full
 * collection, which comes every 10–15 s at saturation here. 20 s when the run is long
 * enough, so a window rarely misses one.
 */
const HEAP_WINDOW_S = Math.max(10, Math.min(20, Math.floor((DURATION_S - WARMUP_S) / 2)));

if (!Number.isInteger(CONNECTIONS) || CONNECTIONS < 4) throw new Error("--connections must be an integer ≥ 4");
if (DURATION_S < WARMUP_S + 20) throw new Error(`--duration must be at least warm-up + 20 s (${WARMUP_S + 20} s)`);
if (!(RSS_BOUND_MB >= 0)) throw new Error("--rss-bound-mb must be a number ≥ 0");
if (!(HEAP_BOUND_MB >= 0)) throw new Error("--heap-bound-mb must be a number ≥ 0");
if (args.fault !== undefined && args.fault !== "kv-down") throw new Error("--fault: the only fault is kv-down");

// ---------------------------------------------------------------------------------------
// Accounts and keys
// ---------------------------------------------------------------------------------------

const ACCOUNT = "acct_soak";
const CYCLE_ACCOUNT = "acct_soak_cycle";
const OTHER_ACCOUNT = "acct_soak_other";
/** Keys the valid traffic rotates through (all cached in the isolate after warm-up). */
const VALID_KEYS = 64;
/**
 * Unknown well-formed key_ids: twice the isolate's negative-cache bound (10 000), so a
 * sweep misses every time and the cache's eviction runs for the whole soak.
 */
const UNKNOWN_IDS = 20_000;
/**
 * The invalid class spreads over this many client addresses, so each sees
 * rps × 60 / 8192 failures a minute: under the limit of 60 up to 8192 failures/s, about
 * twice what this gateway answers in total on the test machine. A 429 there is unexpected.
 */
const INVALID_ADDRESSES = 8192;
/** One address sending only failures: it must get `limit` 401s per window, then 429s. */
const ABUSER_ADDRESS = "198.51.100.66";

const bearer = (k: BenchKey) => `Bearer ${k.keyId}:${k.secret}`;

interface Keys {
  valid: BenchKey[];
  revoked: BenchKey[];
  expired: BenchKey[];
  admin: BenchKey;
  foreign: BenchKey;
}

async function seed(store: ReturnType<ReturnType<typeof startKvServer>["namespace"]>): Promise<Keys> {
  const valid = await seedKeys(store, VALID_KEYS, ACCOUNT);
  const [admin] = await seedKeys(store, 1, CYCLE_ACCOUNT);
  const [foreign] = await seedKeys(store, 1, OTHER_ACCOUNT);
  const keyStore = new KeyStore(kvAdapter(store));
  const revoked = await seedKeys(store, 8, ACCOUNT);
  for (const k of revoked) {
    const change = await keyStore.revoke(ACCOUNT, k.keyId);
    if (!change.ok) throw new Error(`seeding: could not revoke ${k.keyId}`);
  }
  const expired: BenchKey[] = [];
  for (let i = 0; i < 8; i++) {
    const made = await keyStore.create(ACCOUNT, {
      name: `soak expired ${i}`,
      expiresAt: new Date(Date.now() - 3_600_000).toISOString(),
    });
    expired.push({ keyId: made.key.key_id, secret: made.secret });
  }
  return { valid, revoked, expired, admin: admin!, foreign: foreign! };
}

// ---------------------------------------------------------------------------------------
// Traffic classes
// ---------------------------------------------------------------------------------------

const COMMON = { "User-Agent": "nixflex-soak/1", Accept: "application/json" };
const OK_BODY = '{"ok":true}';

function splitConnections(total: number): { forward: number; keysRead: number; invalid: number; abuser: number } {
  const abuser = 1;
  const keysRead = Math.max(1, Math.round(total * 0.2));
  const invalid = Math.max(1, Math.round(total * 0.25));
  const forward = total - abuser - keysRead - invalid;
  return { forward, keysRead, invalid, abuser };
}

/** Authorization values of every failure kind of SPEC §3, in a rotation (null: header missing). */
function failureAuthorizations(keys: Keys): Array<{ kind: string; authorization: string | null }> {
  const id = generateKeyId();
  const secret = generateSecret();
  const badChecksum = secret.slice(0, -1) + (secret.endsWith("0") ? "1" : "0");
  const others: Array<{ kind: string; authorization: string | null }> = [
    { kind: "missing", authorization: null },
    { kind: "garbage", authorization: "Bearer hello" },
    { kind: "bad checksum", authorization: `Bearer ${id}:${badChecksum}` },
    { kind: "wrong scheme", authorization: `Basic ${btoa(`${id}:${secret}`)}` },
    { kind: "space", authorization: `Bearer ${id} ${secret}` },
    { kind: "bad format", authorization: `Bearer ${id}:nxfs_${"x".repeat(40)}` },
    { kind: "garbage", authorization: `Bearer ${"A".repeat(300)}` },
  ];
  let w = 0;
  for (const k of keys.valid)
    others.push({ kind: "wrong secret", authorization: `Bearer ${k.keyId}:${generateSecret()}` });
  for (const k of keys.revoked) others.push({ kind: "revoked", authorization: bearer(k) });
  for (const k of keys.expired) others.push({ kind: "expired", authorization: bearer(k) });
  // Half the failures are unknown ids (each a KV read once the negative cache has evicted
  // it); the other half rotate through every other kind.
  const out: Array<{ kind: string; authorization: string | null }> = [];
  for (let i = 0; i < UNKNOWN_IDS; i++) {
    out.push({ kind: "unknown id", authorization: `Bearer ${generateKeyId()}:${generateSecret()}` });
    out.push(others[w++ % others.length]!);
  }
  return out;
}

function classes(keys: Keys): TrafficClass[] {
  const split = splitConnections(CONNECTIONS);
  const unauthorized = { status: 401, mode: "exact", text: UNAUTHORIZED_BODY, headers: ["WWW-Authenticate"] } as const;

  const forward: SoakRequest[] = [];
  keys.valid.forEach((k, i) => {
    forward.push({
      method: "GET",
      path: `/v1/agents/a${i}?limit=10`,
      headers: { ...COMMON, Authorization: bearer(k) },
    });
    forward.push({
      method: "POST",
      path: `/v1/agents/a${i}/runs`,
      headers: { ...COMMON, Authorization: bearer(k), "Content-Type": "application/json" },
      body: JSON.stringify({ input: `soak request ${i}`, options: { temperature: 0.2, tags: ["soak", `k${i}`] } }),
    });
  });

  const keysRead: SoakRequest[] = [];
  keys.valid.forEach((k, i) => {
    const other = keys.valid[(i * 7 + 3) % keys.valid.length]!;
    keysRead.push({ method: "GET", path: "/v1/keys?limit=10", headers: { ...COMMON, Authorization: bearer(k) } });
    keysRead.push({ method: "GET", path: `/v1/keys/${other.keyId}`, headers: { ...COMMON, Authorization: bearer(k) } });
  });

  const failures = failureAuthorizations(keys);
  const invalid: SoakRequest[] = failures.map((f, i) => ({
    method: i % 3 === 0 ? "POST" : "GET",
    path: i % 3 === 0 ? "/v1/agents/x/runs" : `/v1/agents/x${i % 50}`,
    headers: f.authorization === null ? { ...COMMON } : { ...COMMON, Authorization: f.authorization },
    body: i % 3 === 0 ? '{"input":"nope"}' : undefined,
  }));
  if (invalid.some((r) => r.method === "POST"))
    for (const r of invalid) if (r.body !== undefined) r.headers["Content-Type"] = "application/json";

  const abuser: SoakRequest[] = failures.slice(0, 200).map((f) => ({
    method: "GET",
    path: "/v1/agents/x",
    headers: f.authorization === null ? { ...COMMON } : { ...COMMON, Authorization: f.authorization },
  }));

  return [
    {
      name: "forward",
      description: `authenticated GET and POST (small JSON body) with ${keys.valid.length} valid keys → origin`,
      address: { fixed: "203.0.113.10" },
      expect: [{ status: 200, mode: "exact", text: OK_BODY, headers: ["X-Request-Id"] }],
      requests: forward,
      connections: split.forward,
    },
    {
      name: "keys-read",
      description: "GET /v1/keys?limit=10 and GET /v1/keys/:id with valid keys",
      address: { fixed: "203.0.113.11" },
      expect: [
        { status: 200, mode: "prefix", text: '{"data":[{"object":"api_key","key_id":"nxf_' },
        { status: 200, mode: "prefix", text: '{"object":"api_key","key_id":"nxf_' },
      ],
      requests: keysRead,
      connections: split.keysRead,
    },
    {
      name: "invalid",
      description: `every failure kind (half unknown ids, ${UNKNOWN_IDS} of them) over ${INVALID_ADDRESSES} addresses`,
      address: { prefix: "10.77", count: INVALID_ADDRESSES },
      expect: [unauthorized],
      requests: invalid,
      connections: split.invalid,
    },
    {
      name: "abuser",
      description: `failures from one address (${ABUSER_ADDRESS}): ${FAILURE_LIMIT} 401s per ${FAILURE_PERIOD_S} s window, then 429`,
      address: { fixed: ABUSER_ADDRESS },
      expect: [
        unauthorized,
        { status: 429, mode: "contains", text: '"type":"rate_limit_error"', headers: ["Retry-After"] },
      ],
      requests: abuser,
      connections: split.abuser,
    },
  ];
}

// ---------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------

const cleanups: Array<() => Promise<void> | void> = [];
async function cleanup(): Promise<void> {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch {}
  }
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    void cleanup().then(() => process.exit(130));
  });
}

const mb = (kb: number) => kb / 1024;
const f0 = (n: number) => Math.round(n).toLocaleString("en-US");
const f1 = (n: number) => n.toFixed(1);

async function main(): Promise<number> {
  say(`Soak: ${DURATION_S} s at saturation, ${CONNECTIONS} connections, warm-up ${WARMUP_S} s`);
  say(
    `  wrk: ${ensureWrk(say)}; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  const work = mkdtempSync(join(tmpdir(), "nixflex-soak-"));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));

  let bundleDir = args["bundle-dir"] === undefined ? undefined : resolve(args["bundle-dir"]);
  if (bundleDir === undefined) {
    const t = performance.now();
    const bundle = await bundleGateway(join(work, "bundle"));
    bundleDir = bundle.dir;
    say(
      `  bundled the gateway (wrangler deploy --dry-run) in ${f0(performance.now() - t)} ms: ${f0(bundle.bytes)} bytes`,
    );
  } else say(`  using the bundle in ${bundleDir}`);

  const origin = await startOrigin();
  cleanups.push(() => origin.close());
  const kv = startKvServer();
  cleanups.push(() => kv.close());
  const store = kv.namespace("api-keys");
  const keys = await seed(store);

  const inspectorPort = await freePort();
  const gw = await startWorkerd({
    bundleDir,
    kv,
    inspectorPort,
    bindings: {
      API_KEYS: { kvNamespace: "api-keys" },
      ENGINE_URL: origin.url,
      ENGINE_TIMEOUT_MS: "30000",
      IDENTITY_ISSUER: "https://api.nixflex.com",
      IDENTITY_AUDIENCE: "nixflex-engine",
      IDENTITY_SIGNING_KEYS: benchSigningKeys(),
      AUTH_FAILURE_LIMITER: { ratelimit: { limit: FAILURE_LIMIT, period: FAILURE_PERIOD_S } },
      KEY_CHANGES: { durableObject: { className: "KeyChangeLog" } },
    },
    // Every request logs a JSON line: ~1 MB/s at saturation. Kept only when asked.
    logTo: args["workerd-log"] === undefined ? "/dev/null" : resolve(args["workerd-log"]),
  });
  cleanups.push(() => gw.stop());
  const idle = readRss(gw.pid);
  say(`  workerd pid ${gw.pid} listening after ${f0(gw.listeningMs)} ms; RSS ${f1(mb(idle.rssKb))} MB idle`);

  // Fail fast, before any load, when the stack is not what the classes assume.
  const probe = async (path: string, key: BenchKey | null, status: number) => {
    const headers: Record<string, string> = { "cf-connecting-ip": "203.0.113.99" };
    if (key !== null) headers.authorization = bearer(key);
    const res = await fetch(`${gw.url}${path}`, { headers });
    await res.arrayBuffer();
    if (res.status !== status) throw new Error(`sanity check: ${path} answered ${res.status}, expected ${status}`);
  };
  await probe("/healthz", null, 200);
  await probe("/v1/agents/sanity", keys.valid[0]!, 200);
  await probe("/v1/keys?limit=1", keys.valid[0]!, 200);
  await probe("/v1/agents/sanity", keys.revoked[0]!, 401);
  await probe("/v1/agents/sanity", keys.expired[0]!, 401);
  store.takeCounts();
  origin.takeCount();

  const traffic = classes(keys);
  const running: Array<{ cls: TrafficClass; run: RunningClass }> = [];
  cleanups.push(() => {
    for (const r of running) r.run.kill();
  });
  const heap = await connectHeapProbe(inspectorPort);
  cleanups.push(() => heap.close());
  const sampler = startRssSampler(gw.pid, SAMPLE_MS, async () => {
    const h = await heap.usage();
    return { usedKb: h.usedBytes / 1024, totalKb: h.totalBytes / 1024 };
  });
  const loadStartedS = Date.now() / 1000;
  cleanups.push(() => sampler.stop());
  for (const cls of traffic) {
    const specFile = join(work, `${cls.name}.spec`);
    writeClassSpec(specFile, `127.0.0.1:${gw.port}`, cls);
    running.push({ cls, run: startClass({ url: gw.url, specFile, cls, durationS: DURATION_S }) });
  }
  const stopCycles = new AbortController();
  const cycles = runLifecycles(
    {
      url: gw.url,
      admin: keys.admin,
      foreign: keys.foreign,
      intervalMs: CYCLE_MS,
      addressPrefix: "198.18",
    },
    stopCycles.signal,
  );
  say(
    `  load: ${traffic.map((c) => `${c.name} ×${c.connections}`).join(", ")}, lifecycle every ${CYCLE_MS} ms; ` +
      `for ${DURATION_S} s…`,
  );

  let faultNote: string | undefined;
  if (args.fault === "kv-down") {
    // Self-test of the check: KV fails for 2 s in the middle; the 503s must fail the soak.
    setTimeout(
      () => {
        store.failing = true;
        setTimeout(() => (store.failing = false), 2000);
      },
      (DURATION_S / 2) * 1000,
    );
    faultNote = "fault injected: KV answered 500 for 2 s in the middle of the run";
  }

  const progress = setInterval(() => {
    const last = sampler.samples.at(-1);
    if (last !== undefined) say(`  t=${f0(last.t)} s  workerd RSS ${f1(mb(last.rssKb))} MB`);
  }, 60_000);

  const results: ClassResult[] = [];
  let wrkError: string | undefined;
  for (const { run } of running) {
    try {
      results.push(await run.result);
    } catch (error) {
      wrkError = (error as Error).message;
    }
  }
  clearInterval(progress);
  stopCycles.abort();
  const lifecycle: LifecycleResult = await cycles;
  let workerdAlive = true;
  try {
    sampler.sample();
  } catch {
    workerdAlive = false;
  }
  sampler.stop();
  const kvCounts = store.takeCounts();
  const originCount = origin.takeCount();
  let afterKb: number | null = null;
  if (workerdAlive) {
    await new Promise((r) => setTimeout(r, 2000));
    afterKb = readRss(gw.pid).rssKb;
  }
  const hwmKb = workerdAlive ? readRss(gw.pid).hwmKb : null;

  // -------------------------------------------------------------------------------------
  // Verdict
  // -------------------------------------------------------------------------------------
  const problems: string[] = [];
  if (wrkError !== undefined) problems.push(`wrk failed: ${wrkError}`);
  if (!workerdAlive) problems.push("workerd exited during the soak");
  if (faultNote !== undefined) say(`  ${faultNote}`);

  const byName = new Map(results.map((r) => [r.name, r]));
  let unexpected = lifecycle.unexpected - lifecycle.socketErrors;
  let socketErrors = lifecycle.socketErrors;
  for (const cls of traffic) {
    const r = byName.get(cls.name);
    if (r === undefined) continue;
    const n = unexpectedCount(cls, r);
    unexpected += n;
    if (n > 0) {
      const when = `t=${f0(r.badFirstS - loadStartedS)}–${f0(r.badLastS - loadStartedS)} s`;
      problems.push(`${cls.name}: ${n} unexpected answers at ${when} (first: ${r.badSample})`);
    }
    const e = r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout;
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

  // The limiter, as configured: the abuser's 401s are bounded by the windows the run touched.
  const abuser = byName.get("abuser");
  const windows = Math.ceil(DURATION_S / FAILURE_PERIOD_S) + 1;
  const limiter = {
    limit: FAILURE_LIMIT,
    periodS: FAILURE_PERIOD_S,
    abuser401: abuser?.counts["401"] ?? 0,
    abuser429: abuser?.counts["429"] ?? 0,
    max401: FAILURE_LIMIT * windows,
  };
  if (abuser !== undefined) {
    if (limiter.abuser401 > limiter.max401)
      problems.push(
        `limiter: the abuser got ${limiter.abuser401} 401s, more than ${limiter.max401} (${windows} windows)`,
      );
    if (limiter.abuser401 < Math.min(abuser.requests, FAILURE_LIMIT))
      problems.push(`limiter: the abuser got only ${limiter.abuser401} 401s before its first 429`);
    if (abuser.requests > limiter.max401 && limiter.abuser429 === 0)
      problems.push("limiter: the abuser never got a 429");
  }

  // Nothing but authenticated traffic may reach the engine. Requests in flight when wrk
  // stopped reached the origin without wrk counting the answer: at most one per connection.
  const forwardCls = traffic.find((c) => c.name === "forward")!;
  const forwarded200 = (byName.get("forward")?.counts["200"] ?? 0) + lifecycle.forwarded;
  const originExcess = originCount - forwarded200;
  if (originExcess < 0 || originExcess > forwardCls.connections + 1)
    problems.push(`origin saw ${originCount} requests for ${forwarded200} authenticated forwards answered`);

  // Memory: medians over the first RSS_WINDOW_S seconds after warm-up and the last ones under load.
  const startKb = medianKb(sampler.samples, WARMUP_S, WARMUP_S + RSS_WINDOW_S);
  const endKb = medianKb(sampler.samples, DURATION_S - RSS_WINDOW_S, DURATION_S);
  const measured = sampler.samples.filter((s) => s.t >= WARMUP_S && s.t <= DURATION_S);
  const peakKb = measured.length > 0 ? Math.max(...measured.map((s) => s.rssKb)) : null;
  // The trend of the second half, when the start-up climb is over (MB/min, informational).
  const slope = rssSlopeKbPerMin(
    sampler.samples.filter((s) => s.t <= DURATION_S),
    Math.max(WARMUP_S, DURATION_S / 2),
  );
  const growthKb = startKb !== null && endKb !== null ? endKb - startKb : null;
  if (growthKb === null) problems.push("RSS: not enough samples");
  else if (growthKb > RSS_BOUND_MB * 1024)
    problems.push(`RSS grew ${f1(mb(growthKb))} MB under load, more than the bound of ${RSS_BOUND_MB} MB`);

  // The isolate's heap after collections (the lowest reading of a window): what the
  // gateway's JavaScript retains. A leak in the gateway's code shows here first.
  const heapStartKb = minKb(sampler.samples, WARMUP_S, WARMUP_S + HEAP_WINDOW_S, "heapKb");
  const heapEndKb = minKb(sampler.samples, DURATION_S - HEAP_WINDOW_S, DURATION_S, "heapKb");
  const heapPeakKb = Math.max(0, ...measured.map((s) => s.heapKb ?? 0));
  const heapGrowthKb = heapStartKb !== null && heapEndKb !== null ? heapEndKb - heapStartKb : null;
  if (heapGrowthKb === null) problems.push("heap: no readings from workerd's inspector");
  else if (heapGrowthKb > HEAP_BOUND_MB * 1024)
    problems.push(
      `the isolate's heap grew ${f1(mb(heapGrowthKb))} MB under load, more than the bound of ${HEAP_BOUND_MB} MB`,
    );

  // -------------------------------------------------------------------------------------
  // Report
  // -------------------------------------------------------------------------------------
  const totalRequests = results.reduce((a, r) => a + r.requests, 0) + lifecycle.requests;
  const statuses = (counts: Record<string, number>) =>
    Object.entries(counts)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([s, n]) => `${s}×${f0(n)}`)
      .join(" ");
  say();
  say(`Soak finished: ${DURATION_S} s of load, ${f0(totalRequests)} requests, ${f0(totalRequests / DURATION_S)} req/s`);
  say();
  const row = (cols: string[]) =>
    say(
      cols
        .map((c, i) =>
          i === 0 || i === cols.length - 1
            ? c.padEnd(i === 0 ? 10 : 0)
            : c.padStart([6, 10, 8, 7, 7, 11, 7][i - 1] ?? 8),
        )
        .join("  "),
    );
  row(["class", "conns", "requests", "req/s", "p50 ms", "p99 ms", "unexpected", "socket", "statuses"]);
  for (const cls of traffic) {
    const r = byName.get(cls.name);
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
  row([
    "lifecycle",
    "1",
    f0(lifecycle.requests),
    f0(lifecycle.requests / DURATION_S),
    "-",
    "-",
    f0(lifecycle.unexpected - lifecycle.socketErrors),
    f0(lifecycle.socketErrors),
    `${statuses(lifecycle.counts)} (${f0(lifecycle.cycles)} cycles)`,
  ]);
  say();
  say(
    `Limiter (${FAILURE_LIMIT}/${FAILURE_PERIOD_S} s per address): abuser 401×${limiter.abuser401} (≤ ${limiter.max401}), 429×${f0(limiter.abuser429)}; ` +
      `invalid class ≈ ${f1(((byName.get("invalid")?.rps ?? 0) * FAILURE_PERIOD_S) / INVALID_ADDRESSES)} failures per address per window`,
  );
  say(
    `Origin: ${f0(originCount)} requests for ${f0(forwarded200)} authenticated forwards answered (in flight at stop: ${originExcess})`,
  );
  say(
    `KV (counted by the harness): ${f0(kvCounts.reads)} reads (${f0(kvCounts.get)} get, ${f0(kvCounts.bulkGetKeys)} bulk-get keys, ` +
      `${f0(kvCounts.list)} list), ${f0(kvCounts.put)} puts, ${f0(kvCounts.delete)} deletes; ${f0(store.size)} entries at the end`,
  );
  const mbOrDash = (kb: number | null) => (kb === null ? "-" : `${f1(mb(kb))} MB`);
  say(
    `workerd RSS: idle ${mbOrDash(idle.rssKb)}; start ${mbOrDash(startKb)} (median t=${WARMUP_S}–${WARMUP_S + RSS_WINDOW_S} s), ` +
      `peak ${mbOrDash(peakKb)}, end ${mbOrDash(endKb)} (median of the last ${RSS_WINDOW_S} s), after load ${mbOrDash(afterKb)}, high-water ${mbOrDash(hwmKb)}`,
  );
  say(
    `  growth ${growthKb === null ? "-" : `${f1(mb(growthKb))} MB`} (bound ${RSS_BOUND_MB} MB); ` +
      `trend over the second half ${slope === null ? "-" : `${f1(mb(slope))} MB/min`}`,
  );
  say(
    `V8 heap in use after collections: start ${mbOrDash(heapStartKb)} (lowest t=${WARMUP_S}–${WARMUP_S + HEAP_WINDOW_S} s), ` +
      `end ${mbOrDash(heapEndKb)} (lowest of the last ${HEAP_WINDOW_S} s), growth ${heapGrowthKb === null ? "-" : `${f1(mb(heapGrowthKb))} MB`} ` +
      `(bound ${HEAP_BOUND_MB} MB); highest reading ${f1(mb(heapPeakKb))} MB`,
  );
  const elapsedS = (performance.now() - startedAt) / 1000;
  say(`End to end ${f1(elapsedS)} s (bundling, startup, load, shutdown)`);
  say();
  if (problems.length === 0) say("CLEAN: every answer as expected, no socket error, memory within the bounds.");
  else {
    say("FAILED:");
    for (const p of problems) say(`  - ${p}`);
  }

  if (args["json-out"] !== undefined) {
    const summary = {
      ok: problems.length === 0,
      problems,
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      connections: CONNECTIONS,
      endToEndS: elapsedS,
      totalRequests,
      rps: totalRequests / DURATION_S,
      unexpected,
      socketErrors,
      classes: traffic.map((cls) => {
        const r = byName.get(cls.name);
        return {
          name: cls.name,
          description: cls.description,
          connections: cls.connections,
          expected: cls.expect.map((e) => e.status),
          ...(r ?? {}),
          unexpected: r === undefined ? null : unexpectedCount(cls, r),
        };
      }),
      lifecycle,
      limiter,
      origin: { requests: originCount, authenticatedForwards: forwarded200 },
      kv: { ...kvCounts, entriesAtEnd: store.size },
      rss: {
        pid: gw.pid,
        idleKb: idle.rssKb,
        startKb,
        endKb,
        peakKb,
        afterLoadKb: afterKb,
        highWaterKb: hwmKb,
        growthKb,
        boundKb: RSS_BOUND_MB * 1024,
        secondHalfSlopeKbPerMin: slope,
        /** [t s, RSS kB, heap used kB, heap reserved kB] */
        samples: sampler.samples.map((s) => [
          Math.round(s.t * 10) / 10,
          s.rssKb,
          s.heapKb === undefined ? null : Math.round(s.heapKb),
          s.heapTotalKb === undefined ? null : Math.round(s.heapTotalKb),
        ]),
      },
      heap: {
        startKb: heapStartKb,
        endKb: heapEndKb,
        growthKb: heapGrowthKb,
        boundKb: HEAP_BOUND_MB * 1024,
        highestKb: heapPeakKb,
      },
      fault: args.fault ?? null,
      loadAverage: loadavg(),
    };
    writeFileSync(resolve(args["json-out"]), `${JSON.stringify(summary, null, 2)}\n`);
    say(`Summary written to ${args["json-out"]}`);
  }
  return problems.length === 0 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  say(`soak failed to run: ${(error as Error).stack ?? error}`);
}
await cleanup();
process.exit(code);
