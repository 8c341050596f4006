/** The soak's command line (`npm run soak -- …`), parsed and checked into plain settings. */
import { parseArgs } from "node:util";

export const USAGE =
  "npm run soak -- [--duration 10m|30s|1h|90] [--connections 32] [--warmup auto|60s] [--rss-bound-mb 64]\n" +
  "               [--heap-bound-mb 8]\n" +
  "               [--cycle-ms 250] [--failure-limit 60] [--json-out file] [--workerd-log file]\n" +
  "               [--bundle-dir dir] [--fault kv-down]";

export interface SoakSettings {
  help: boolean;
  durationS: number;
  /** When the memory baseline is taken. */
  warmupS: number;
  connections: number;
  rssBoundMb: number;
  heapBoundMb: number;
  cycleMs: number;
  failureLimit: number;
  failurePeriodS: number;
  /**
   * How often RSS and the heap are read. The heap drops to what is live only for a moment
   * after each full collection; reading it four times a second catches that trough.
   */
  sampleMs: number;
  /** RSS start/end are medians over this many seconds of samples. */
  rssWindowS: number;
  /**
   * Heap start/end are the lowest reading over this many seconds: the level after a full
   * collection, which comes every 10–15 s at saturation here. 20 s when the run is long
   * enough, so a window rarely misses one.
   */
  heapWindowS: number;
  jsonOut?: string;
  workerdLog?: string;
  bundleDir?: string;
  fault?: "kv-down";
}

/** "30s", "10m", "1h", "1500ms" or plain seconds → seconds. */
function seconds(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new Error(`--${option}: expected a duration like 30s, 10m, 1h or 90, got ${text}`);
  const scale = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] ?? "s"]!;
  return Number(match[1]) * scale;
}

/** Throws a one-line error naming the first bad option. */
export function readSettings(argv: string[] = process.argv.slice(2)): SoakSettings {
  const { values: args } = parseArgs({
    args: argv,
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
  const durationS = Math.round(seconds(args.duration!, "duration"));
  // Default: a third of the run, at most 60 s (RSS climbs for about a minute; docs/SOAK.md).
  const warmupS = args.warmup === "auto" ? Math.min(60, Math.round(durationS / 3)) : seconds(args.warmup!, "warmup");
  const settings: SoakSettings = {
    help: args.help!,
    durationS,
    warmupS,
    connections: Number(args.connections),
    rssBoundMb: Number(args["rss-bound-mb"]),
    heapBoundMb: Number(args["heap-bound-mb"]),
    cycleMs: Number(args["cycle-ms"]),
    failureLimit: Number(args["failure-limit"]),
    failurePeriodS: 60,
    sampleMs: 250,
    rssWindowS: 5,
    heapWindowS: Math.max(10, Math.min(20, Math.floor((durationS - warmupS) / 2))),
    jsonOut: args["json-out"],
    workerdLog: args["workerd-log"],
    bundleDir: args["bundle-dir"],
    fault: args.fault as SoakSettings["fault"],
  };
  if (settings.help) return settings;
  if (!Number.isInteger(settings.connections) || settings.connections < 4)
    throw new Error("--connections must be an integer ≥ 4");
  if (durationS < warmupS + 20) throw new Error(`--duration must be at least warm-up + 20 s (${warmupS + 20} s)`);
  if (!(settings.rssBoundMb >= 0)) throw new Error("--rss-bound-mb must be a number ≥ 0");
  if (!(settings.heapBoundMb >= 0)) throw new Error("--heap-bound-mb must be a number ≥ 0");
  if (args.fault !== undefined && args.fault !== "kv-down") throw new Error("--fault: the only fault is kv-down");
  return settings;
}
