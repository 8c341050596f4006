/**
 * Runs one of the project's scripts (`scripts/<name>.ts`) as a real process under the
 * same Node as the tests, and collects what it printed.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT, wranglerEnv } from "../../scripts/lib/project.ts";

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when it is JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read the CLI's JSON answers field by field
  json: any;
}

const ANSI = /\u001b\[[0-9;]*m/g;

/** `node scripts/<script>.ts ...args`, optionally fed `input` on stdin, with `env` added to its environment. */
export function runScript(
  script: string,
  args: string[],
  options: { input?: string; cwd?: string; env?: Record<string, string> } = {},
): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, "scripts", `${script}.ts`), ...args], {
      cwd: options.cwd ?? PROJECT_ROOT,
      env: wranglerEnv(options.env),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.once("error", reject);
    child.stdin.end(options.input ?? "");
    child.once("close", (code) => {
      let json: unknown;
      try {
        json = stdout.trim() === "" ? undefined : JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? 1, stdout, stderr: stderr.replace(ANSI, ""), json });
    });
  });
}
