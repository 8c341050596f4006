/**
 * The load generator: wrk (Debian package `wrk`), driven by wrk.lua with prebuilt
 * requests. `ensureWrk` installs it with apt-get when it is missing and that is possible,
 * and otherwise says exactly what is missing.
 */
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const LUA = join(dirname(fileURLToPath(import.meta.url)), "wrk.lua");

function has(command: string, args: string[] = ["--version"]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore" });
    return true;
  } catch (error) {
    // `wrk -v` prints its version and exits 1; only a missing binary is "missing".
    return (error as NodeJS.ErrnoException).code !== "ENOENT";
  }
}

/** The wrk version line; installs wrk with apt-get when missing and running as root. */
export function ensureWrk(log: (line: string) => void = console.log): string {
  if (!has("wrk", ["-v"])) {
    const root = process.getuid?.() === 0;
    if (root && has("apt-get", ["--version"])) {
      log("wrk is missing; installing the Debian package (apt-get update && apt-get install -y wrk)…");
      try {
        execFileSync("apt-get", ["update"], { stdio: "ignore" });
        execFileSync("apt-get", ["install", "-y", "wrk"], {
          stdio: "ignore",
          env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
        });
      } catch {
        throw new Error(
          "wrk is missing and `apt-get install -y wrk` failed. Install wrk (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk) and rerun.",
        );
      }
    } else {
      throw new Error(
        "wrk is missing. Install it (Debian/Ubuntu: sudo apt-get install wrk; macOS: brew install wrk) and rerun `npm run bench`.",
      );
    }
  }
  try {
    execFileSync("wrk", ["-v"], { stdio: "pipe" });
  } catch (error) {
    const out = String((error as { stdout?: Buffer }).stdout ?? "");
    return out.split("\n")[0]?.trim() ?? "wrk";
  }
  return "wrk";
}

/** What one request looks like; `variants` are rotated through (one request each). */
export interface RequestSpec {
  method: string;
  path: string;
  headers: Record<string, string>;
  bodyBytes?: number;
  /** Extra headers per request, e.g. a different Authorization each. */
  variants?: Array<Record<string, string>>;
}

/** Writes the spec file wrk.lua reads. */
export function writeRequestSpec(file: string, spec: RequestSpec): void {
  const clean = (s: string) => s.replace(/[\t\r\n]/g, " ");
  const lines = [`method ${spec.method}`, `path ${spec.path}`];
  for (const [name, value] of Object.entries(spec.headers)) lines.push(`header ${clean(name)}: ${clean(value)}`);
  if (spec.bodyBytes) lines.push(`body ${spec.bodyBytes}`);
  for (const variant of spec.variants ?? []) {
    lines.push(
      `variant ${Object.entries(variant)
        .map(([n, v]) => `${clean(n)}: ${clean(v)}`)
        .join("\t")}`,
    );
  }
  writeFileSync(file, `${lines.join("\n")}\n`);
}

export interface WrkResult {
  requests: number;
  durationS: number;
  rps: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  meanUs: number;
  maxUs: number;
  /** Socket errors and timeouts. */
  socketErrors: number;
  /** Responses that were not 2xx/3xx. */
  non2xx: number;
}

/** Runs wrk against `url` (origin only; the path comes from the spec). */
export async function runWrk(options: {
  url: string;
  specFile: string;
  connections: number;
  threads?: number;
  durationS: number;
  /** CPU list for `taskset -c`. */
  cpus?: string;
  /** Where in the rotation of variants to start (e.g. the requests sent so far). */
  startAt?: number;
}): Promise<WrkResult> {
  const args = [
    `-t${options.threads ?? 1}`,
    `-c${options.connections}`,
    `-d${options.durationS}s`,
    "--timeout",
    "10s",
    "-s",
    LUA,
    options.url,
    "--",
    options.specFile,
    String(options.startAt ?? 0),
  ];
  const [command, commandArgs] =
    options.cpus !== undefined ? ["taskset", ["-c", options.cpus, "wrk", ...args]] : ["wrk", args];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(command, commandArgs as string[], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}: ${out}`))));
  });
  const line = output.split("\n").find((l) => l.startsWith("WRKJSON "));
  if (line === undefined) throw new Error(`wrk printed no result:\n${output}`);
  const r = JSON.parse(line.slice("WRKJSON ".length)) as Record<string, number>;
  const durationS = r.duration_us! / 1e6;
  return {
    requests: r.requests!,
    durationS,
    rps: r.requests! / durationS,
    p50Us: r.p50_us!,
    p90Us: r.p90_us!,
    p99Us: r.p99_us!,
    meanUs: r.mean_us!,
    maxUs: r.max_us!,
    socketErrors: r.connect! + r.read! + r.write! + r.timeout!,
    non2xx: r.status!,
  };
}
