/** The bench's command line (`npm run bench -- …`), parsed once into plain settings. */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT } from "./workerd.ts";

/** Where the bench writes its numbers: a file it alone owns (docs/BENCHMARKS.md links to it). */
export const DEFAULT_OUT = join(REPO_ROOT, "docs/benchmarks/latest.md");

export interface BenchSettings {
  durationS: number;
  warmupS: number;
  rounds: number;
  concurrencies: number[];
  /** Scenario names to run (their passthroughs come along); absent: every scenario. */
  only?: string[];
  profile: boolean;
  micro: boolean;
  write: boolean;
  pin: boolean;
  json?: string;
  keepLogs: boolean;
  ladder: boolean;
  ladderRounds: number;
  out: string;
  /** A git ref whose gateway is measured beside the working tree's, in the same rounds. */
  baseline?: string;
  /** How the bench was invoked, for the report. */
  command: string;
}

const text = (fallback: string) => ({ type: "string", default: fallback }) as const;
const OPTIONAL = { type: "string" } as const;
const FLAG = { type: "boolean", default: false } as const;

export function readSettings(argv: string[] = process.argv.slice(2)): BenchSettings {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      duration: text("2"),
      warmup: text("1"),
      rounds: text("3"),
      concurrency: text("1,32"),
      "ladder-rounds": text("10"),
      out: text(DEFAULT_OUT),
      only: OPTIONAL,
      json: OPTIONAL,
      baseline: OPTIONAL,
      ladder: FLAG,
      "keep-logs": FLAG,
      "no-profile": FLAG,
      "no-micro": FLAG,
      "no-write": FLAG,
      "no-pin": FLAG,
    },
  });
  return {
    durationS: Number(a.duration),
    warmupS: Number(a.warmup),
    rounds: Math.max(1, Number(a.rounds)),
    concurrencies: a.concurrency!.split(",").map(Number),
    only: a.only?.split(","),
    profile: !a["no-profile"],
    micro: !a["no-micro"],
    write: !a["no-write"],
    pin: !a["no-pin"],
    json: a.json,
    keepLogs: a["keep-logs"]!,
    ladder: a.ladder!,
    ladderRounds: Number(a["ladder-rounds"]),
    out: a.out!,
    baseline: a.baseline,
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`,
  };
}
