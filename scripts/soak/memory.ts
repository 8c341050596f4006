/**
 * Resident memory of a process over time, from /proc/<pid>/status (Linux): VmRSS (now)
 * and VmHWM (the kernel's high-water mark, so a peak between two samples is not missed).
 */
import { readFileSync } from "node:fs";

export interface RssSample {
  /** Seconds since the sampler started. */
  t: number;
  rssKb: number;
  hwmKb: number;
  /** V8 heap in use and reserved (kB), when a heap reader was given and answered. */
  heapKb?: number;
  heapTotalKb?: number;
}

/** Reads VmRSS and VmHWM of `pid` in kB. */
export function readRss(pid: number): { rssKb: number; hwmKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
    if (match === null) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(match[1]);
  };
  return { rssKb: field("VmRSS"), hwmKb: field("VmHWM") };
}

export interface RssSampler {
  samples: RssSample[];
  /** Takes one sample now (also what the timer does). */
  sample(): RssSample;
  stop(): void;
}

/** Samples `pid` every `everyMs` from now on (and the isolate's heap, when `heap` is given). */
export function startRssSampler(
  pid: number,
  everyMs = 1000,
  heap?: () => Promise<{ usedKb: number; totalKb: number }>,
): RssSampler {
  const t0 = performance.now();
  const samples: RssSample[] = [];
  const sample = (): RssSample => {
    const s: RssSample = { t: (performance.now() - t0) / 1000, ...readRss(pid) };
    samples.push(s);
    heap?.().then(
      (h) => {
        s.heapKb = h.usedKb;
        s.heapTotalKb = h.totalKb;
      },
      () => {},
    );
    return s;
  };
  sample();
  const timer = setInterval(() => {
    try {
      sample();
    } catch {
      // The process is gone; the caller notices through its own handle.
    }
  }, everyMs);
  return { samples, sample, stop: () => clearInterval(timer) };
}

type Field = "rssKb" | "heapKb";

/** Median of `field` over the samples with `from <= t < to` (null when none). */
export function medianKb(samples: RssSample[], from: number, to: number, field: Field = "rssKb"): number | null {
  const values = samples
    .filter((s) => s.t >= from && s.t < to && s[field] !== undefined)
    .map((s) => s[field]!)
    .sort((a, b) => a - b);
  if (values.length === 0) return null;
  const mid = values.length >> 1;
  return values.length % 2 === 1 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2;
}

/** Least-squares slope of RSS over time, in kB per minute, for samples with `t >= from`. */
export function rssSlopeKbPerMin(samples: RssSample[], from: number): number | null {
  const xs = samples.filter((s) => s.t >= from);
  if (xs.length < 3) return null;
  const n = xs.length;
  const mt = xs.reduce((a, s) => a + s.t, 0) / n;
  const mr = xs.reduce((a, s) => a + s.rssKb, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of xs) {
    num += (s.t - mt) * (s.rssKb - mr);
    den += (s.t - mt) ** 2;
  }
  return den === 0 ? null : (num / den) * 60;
}

/** Smallest `field` over the samples with `from <= t < to`: the trough after a collection. */
export function minKb(samples: RssSample[], from: number, to: number, field: Field = "rssKb"): number | null {
  const values = samples.filter((s) => s.t >= from && s.t < to && s[field] !== undefined).map((s) => s[field]!);
  return values.length === 0 ? null : Math.min(...values);
}
