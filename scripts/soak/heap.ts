/**
 * The V8 heap of the Worker's isolate, through workerd's inspector (started with
 * `startWorkerd({ inspectorPort })`): `Runtime.getHeapUsage`, which costs the isolate
 * next to nothing. (workerd's inspector never answers `HeapProfiler.collectGarbage`, and a
 * heap snapshot, which would force a full GC, stalls a loaded isolate for seconds, so
 * the soak reads the heap's troughs instead of forcing collections.)
 */

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
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
    webSocketDebuggerUrl: string;
  }>;
  if (targets.length === 0) throw new Error("workerd's inspector lists no target");
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("error", () => reject(new Error("could not connect to workerd's inspector")));
  });
  let next = 0;
  const pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message?: string } };
    if (message.id === undefined) return;
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) waiter?.reject(new Error(`inspector: ${message.error.message ?? "error"}`));
    else waiter?.resolve(message.result);
  });
  const call = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const usage = async (): Promise<HeapUsage> => {
    const r = (await call("Runtime.getHeapUsage")) as { usedSize: number; totalSize: number };
    return { usedBytes: r.usedSize, totalBytes: r.totalSize };
  };
  return {
    usage,
    close: () => ws.close(),
  };
}
