/** The machine and the versions a run used, and where its processes are pinned. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import type { Pins } from "./measure.ts";
import { REPO_ROOT, WORKERD_BIN } from "./workerd.ts";

/** A command's trimmed stdout, or "" when it fails. */
export function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {
    return "";
  }
}

/** workerd alone on CPU 0; wrk, the origin and the KV host (this process) on CPU 1. */
export function choosePins(pin: boolean): Pins {
  if (!pin || cpus().length < 2) return {};
  if (sh("taskset", ["-p", "-c", "1", String(process.pid)]) === "") return {};
  return { workerd: "0", load: "1" };
}

const packageVersion = (name: string): string =>
  JSON.parse(readFileSync(join(REPO_ROOT, "node_modules", name, "package.json"), "utf8")).version;

export function versions(wrkVersion: string): Record<string, string> {
  return {
    node: process.version,
    workerd: sh(WORKERD_BIN, ["--version"]),
    wrk: wrkVersion,
    wrangler: packageVersion("wrangler"),
    hono: packageVersion("hono"),
    jose: packageVersion("jose"),
    "gateway commit":
      sh("git", ["-C", REPO_ROOT, "rev-parse", "--short", "HEAD"]) +
      (sh("git", ["-C", REPO_ROOT, "status", "--porcelain", "src"]) ? " (with uncommitted src changes)" : ""),
  };
}

export function machine(): Record<string, string> {
  return {
    cpu: `${cpus()[0]?.model ?? "?"} × ${cpus().length}`,
    kernel: sh("uname", ["-sr"]),
    os: readFileSync("/etc/os-release", "utf8").match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1] ?? "?",
    "load average at the end": loadavg()
      .map((x) => x.toFixed(2))
      .join(" "),
  };
}
