/**
 * The V8 heap of the Worker's isolate, through workerd's inspector (started with
 * `startWorkerd({ inspectorPort })`): `Runtime.getHeapUsage`, which costs the isolate
 * next to nothing. (workerd's inspector never answers `HeapProfiler.collectGarbage`, and a
 * heap snapshot, which would force a full GC, stalls a loaded isolate for seconds, so
 * the soak reads the heap's troughs instead of forcing collections.)
 */

import { connectInspector } from "../bench/inspector.ts";

export interface HeapUsage {
  usedBytes: number;
  totalBytes: number;
}

export interface HeapProbe {
  /** Heap in use now (garbage not yet collected included). */
  usage(): Promise<HeapUsage>;
  close(): void;
}

/** Connects to the first target of workerd's inspector on `port`. */
export async function connectHeapProbe(port: number): Promise<HeapProbe> {
  const inspector = await connectInspector(port);
  const usage = async (): Promise<HeapUsage> => {
    const reply = await inspector.call("Runtime.getHeapUsage");
    if (reply.error !== undefined) throw new Error(`inspector: ${reply.error.message ?? "error"}`);
    const r = reply.result as { usedSize: number; totalSize: number };
    return { usedBytes: r.usedSize, totalBytes: r.totalSize };
  };
  return {
    usage,
    close: () => inspector.close(),
  };
}
