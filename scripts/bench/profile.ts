/**
 * A V8 CPU profile of a Worker running in workerd, taken through workerd's inspector
 * (`startWorkerd({ inspectorPort })`), and a summary of where the JavaScript time goes:
 * by source module of the bundle (wrangler marks each with a `// path` comment) and by
 * function. Runtime work outside JavaScript shows up as "(program)"; time with no
 * JavaScript running as "(idle)".
 */
import { readFileSync } from "node:fs";
import { connectInspector } from "./inspector.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Records a CPU profile while `during` runs. */
export async function recordCpuProfile(
  inspectorPort: number,
  during: () => Promise<void>,
  intervalUs = 250,
): Promise<CpuProfile> {
  const inspector = await connectInspector(inspectorPort);
  const call = inspector.call;
  try {
    await call("Profiler.enable");
    await call("Profiler.setSamplingInterval", { interval: intervalUs });
    await call("Profiler.start");
    await during();
    const stopped = await call("Profiler.stop");
    const profile = (stopped.result as { profile?: CpuProfile } | undefined)?.profile;
    if (profile === undefined) throw new Error(`Profiler.stop returned no profile: ${JSON.stringify(stopped.error)}`);
    return profile;
  } finally {
    inspector.close();
  }
}

export interface ProfileShare {
  name: string;
  /** Share of the samples in which JavaScript or the runtime under it was busy (idle excluded). */
  percent: number;
}

export interface ProfileSummary {
  samples: number;
  idlePercent: number;
  byModule: ProfileShare[];
  selfByFunction: ProfileShare[];
  totalByFunction: ProfileShare[];
}

/** Maps a bundle line to the source module wrangler's `// path` comments say it came from. */
function moduleMapper(bundleFile: string | undefined): (line: number) => string {
  if (bundleFile === undefined) return () => "bundle";
  const marks: Array<[number, string]> = [];
  readFileSync(bundleFile, "utf8")
    .split("\n")
    .forEach((text, i) => {
      // "// src/log.ts", "// node_modules/jose/…" (or "../../node_modules/…" when linked).
      const m = /^\/\/ (\S+\.[cm]?[jt]s)$/.exec(text);
      if (m === null) return;
      const path = m[1]!;
      const at = path.lastIndexOf("node_modules/");
      marks.push([i + 1, at !== -1 ? path.slice(at) : path.replace(/^(?:\.\.\/)+/, "")]);
    });
  return (line) => {
    let lo = 0;
    let hi = marks.length - 1;
    let found = "bundle";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (marks[mid]![0] <= line) {
        found = marks[mid]![1];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found.replace(/^node_modules\/((?:@[^/]+\/)?[^/]+)\/.*$/, "$1 (package)");
  };
}

/** Where the busy samples went. */
export function summarizeProfile(profile: CpuProfile, bundleFile?: string, top = 15): ProfileSummary {
  const moduleOf = moduleMapper(bundleFile);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hits = new Map<number, number>();
  for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);

  const label = (n: ProfileNode) => {
    const f = n.callFrame;
    if (f.url === "" || !f.url.endsWith(".js"))
      return f.functionName.startsWith("(") ? f.functionName : `${f.functionName || "(anonymous)"} [runtime]`;
    return `${f.functionName || "(anonymous)"} (${moduleOf(f.lineNumber + 1)})`;
  };
  const moduleLabel = (n: ProfileNode) => {
    const f = n.callFrame;
    if (f.functionName.startsWith("(")) return f.functionName;
    if (f.url === "" || !f.url.endsWith(".js")) return "runtime APIs (Headers, fetch, crypto, streams, timers…)";
    return moduleOf(f.lineNumber + 1);
  };

  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const modules = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const [id, count] of hits) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === "(idle)") {
      idle += count;
      continue;
    }
    busy += count;
    self.set(label(node), (self.get(label(node)) ?? 0) + count);
    modules.set(moduleLabel(node), (modules.get(moduleLabel(node)) ?? 0) + count);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (l === "(root)" || seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + count);
    }
  }
  const rank = (m: Map<string, number>, n: number): ProfileShare[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, c]) => ({ name, percent: (100 * c) / Math.max(1, busy) }));
  return {
    samples: busy + idle,
    idlePercent: (100 * idle) / Math.max(1, busy + idle),
    byModule: rank(modules, top),
    selfByFunction: rank(self, top),
    totalByFunction: rank(total, top),
  };
}
