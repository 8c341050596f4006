/**
 * Log hygiene for the workers suite (TEAM rules; SPEC §2 "never logged"). Registered as
 * a `setupFiles` entry of the workers project in vitest.config.ts, so it runs in every
 * test file's isolate: it wraps the console, keeps every line the file writes, and fails
 * the test (afterEach) or the file (afterAll) that wrote a line carrying a key secret,
 * an Authorization value or a JWT. Lines still reach the console unchanged.
 *
 * Tests can register exact values that must never appear (every secret the harness
 * creates) in `globalThis.__nixflexSensitive`; `globalThis.__nixflexLogLines` exposes the
 * captured lines to tests that want to look at them.
 */
import { afterAll, afterEach } from "vitest";
import { forbiddenIn } from "./workers-log-shapes.ts";

type Global = typeof globalThis & {
  __nixflexSensitive?: Set<string>;
  __nixflexLogLines?: string[];
  __nixflexConsoleWrapped?: boolean;
};

const g = globalThis as Global;
g.__nixflexLogLines ??= [];
const lines: string[] = g.__nixflexLogLines;
// Lines already there were checked by the file that wrote them (test files may share an isolate).
let checked = lines.length;

function render(args: unknown[]): string {
  return args
    .map((arg) => {
      if (typeof arg === "string") return arg;
      if (arg instanceof Error) return `${arg.name}: ${arg.message}\n${arg.stack ?? ""}`;
      try {
        return JSON.stringify(arg);
      } catch {
        return String(arg);
      }
    })
    .join(" ");
}

// Once per isolate, even if the setup file runs again in it.
if (g.__nixflexConsoleWrapped !== true) {
  g.__nixflexConsoleWrapped = true;
  for (const method of ["log", "info", "warn", "error", "debug", "trace"] as const) {
    const original = console[method];
    console[method] = function captured(...args: unknown[]) {
      lines.push(render(args));
      return original.apply(console, args);
    };
  }
}

function check(when: string): void {
  const problems: string[] = [];
  for (; checked < lines.length; checked++) {
    const why = forbiddenIn(lines[checked]!, g.__nixflexSensitive);
    if (why !== null) problems.push(`console line ${checked + 1} contains ${why}`);
  }
  if (problems.length > 0) throw new Error(`Log hygiene (${when}): ${problems.join("; ")}`);
}

afterEach(() => check("after this test"));
afterAll(() => check("in a hook of this file"));
