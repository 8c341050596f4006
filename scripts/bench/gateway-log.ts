/** What the gateway logged over the whole run, read from workerd's log file afterwards. */
import { existsSync, readFileSync } from "node:fs";

export interface LogTally {
  /** Statuses of the access lines. */
  statuses: Record<string, number>;
  /** Other events the gateway logged. */
  events: Record<string, number>;
  /** Lines workerd itself printed (uncaught exceptions, resource limits…), by first line. */
  runtime: Record<string, number>;
}

export function tallyLog(path: string): LogTally {
  const statuses: Record<string, number> = {};
  const events: Record<string, number> = {};
  const runtime: Record<string, number> = {};
  if (!existsSync(path)) return { statuses, events, runtime };
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.startsWith("{")) {
      if (line.trim() === "" || line.startsWith("    at ") || line.includes("nodejs_compat became the default"))
        continue;
      const key = line.slice(0, 160);
      runtime[key] = (runtime[key] ?? 0) + 1;
      continue;
    }
    const event = /"event":"([^"]+)"/.exec(line)?.[1] ?? "?";
    if (event === "request") {
      const status = /"status":(\d+)/.exec(line)?.[1] ?? "?";
      statuses[status] = (statuses[status] ?? 0) + 1;
    } else {
      events[event] = (events[event] ?? 0) + 1;
    }
  }
  return { statuses, events, runtime };
}
