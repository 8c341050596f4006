/**
 * The soak test's wrk traffic classes: what each sends, what it may get back, and the
 * wrk process that runs it (one process per class, so every response is tallied
 * against its own class's expectations — wrk's Lua API cannot tell which request a
 * response answers when several kinds share one process).
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const LUA = join(dirname(fileURLToPath(import.meta.url)), "soak.lua");

/** One acceptable answer for a status: a body check and the headers it must carry. */
export interface Expectation {
  status: number;
  mode: "exact" | "prefix" | "contains" | "any";
  text?: string;
  headers?: readonly string[];
}

export interface SoakRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface TrafficClass {
  name: string;
  description: string;
  /** CF-Connecting-IP: one address, or a rotation through `count` addresses under `prefix` (two octets). */
  address: { fixed: string } | { prefix: string; count: number };
  expect: Expectation[];
  requests: SoakRequest[];
  connections: number;
}

export interface ClassResult {
  name: string;
  requests: number;
  durationS: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Responses by status. */
  counts: Record<string, number>;
  /** Responses whose status was expected but whose body or headers were not. */
  badBodies: Record<string, number>;
  /** The first unexpected answer (status and up to 200 characters of body). */
  badSample: string;
  /** Epoch seconds of the first and last unexpected answer (0: none). */
  badFirstS: number;
  badLastS: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

const clean = (s: string): string => {
  if (/[\t\r\n]/.test(s)) throw new Error(`soak spec values cannot contain tabs or newlines: ${JSON.stringify(s)}`);
  return s;
};

/** Writes the spec file soak.lua reads. */
export function writeClassSpec(file: string, host: string, cls: TrafficClass): void {
  const lines = [`host\t${host}`];
  if ("fixed" in cls.address) lines.push(`ip\tfixed\t${cls.address.fixed}`);
  else lines.push(`ip\trotate\t${cls.address.prefix}\t${cls.address.count}`);
  for (const e of cls.expect) {
    const text = e.mode === "any" ? "-" : clean(e.text ?? "");
    lines.push(["expect", String(e.status), e.mode, text, ...(e.headers ?? [])].join("\t"));
  }
  for (const r of cls.requests) {
    const headers = Object.entries(r.headers).map(([n, v]) => `${clean(n)}: ${clean(v)}`);
    lines.push(["request", r.method, clean(r.path), r.body === undefined ? "-" : clean(r.body), ...headers].join("\t"));
  }
  writeFileSync(file, `${lines.join("\n")}\n`);
}

/** A running wrk process for one class; `result` settles when wrk exits. */
export interface RunningClass {
  pid: number;
  result: Promise<ClassResult>;
  kill(): void;
}

/** Starts wrk for one class for `durationS` seconds against `url`. */
export function startClass(options: {
  url: string;
  specFile: string;
  cls: TrafficClass;
  durationS: number;
  timeoutS?: number;
}): RunningClass {
  const args = [
    "-t1",
    `-c${options.cls.connections}`,
    `-d${options.durationS}s`,
    "--timeout",
    `${options.timeoutS ?? 10}s`,
    "-s",
    LUA,
    options.url,
    "--",
    options.specFile,
    String(Math.floor(Math.random() * 1_000_000)),
  ];
  const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
  const result = new Promise<ClassResult>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      const line = out.split("\n").find((l) => l.startsWith("SOAKJSON "));
      if (code !== 0 || line === undefined) {
        reject(new Error(`wrk (${options.cls.name}) exited with ${code ?? signal}: ${out.slice(-2000)}`));
        return;
      }
      const r = JSON.parse(line.slice("SOAKJSON ".length)) as {
        requests: number;
        duration_us: number;
        connect: number;
        read: number;
        write: number;
        timeout: number;
        p50_us: number;
        p99_us: number;
        max_us: number;
        counts: Record<string, number>;
        bad: Record<string, number>;
        bad_sample: string;
        bad_first: number;
        bad_last: number;
      };
      const durationS = r.duration_us / 1e6;
      resolve({
        name: options.cls.name,
        requests: r.requests,
        durationS,
        rps: r.requests / durationS,
        p50Ms: r.p50_us / 1000,
        p99Ms: r.p99_us / 1000,
        maxMs: r.max_us / 1000,
        counts: r.counts,
        badBodies: r.bad,
        badSample: r.bad_sample,
        badFirstS: r.bad_first,
        badLastS: r.bad_last,
        socketErrors: { connect: r.connect, read: r.read, write: r.write, timeout: r.timeout },
      });
    });
  });
  // Awaited by the caller; this keeps a wrk killed on an interrupt from being an unhandled rejection.
  result.catch(() => {});
  return { pid: child.pid!, result, kill: () => child.kill("SIGKILL") };
}

/** Responses of a class that were not what the class allows (status, body or headers). */
export function unexpectedCount(cls: TrafficClass, result: ClassResult): number {
  const allowed = new Set(cls.expect.map((e) => String(e.status)));
  let n = 0;
  for (const [status, count] of Object.entries(result.counts)) if (!allowed.has(status)) n += count;
  for (const count of Object.values(result.badBodies)) n += count;
  return n;
}
