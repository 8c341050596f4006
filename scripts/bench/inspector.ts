/**
 * A minimal client for workerd's inspector (Chrome DevTools Protocol over a WebSocket),
 * shared by the CPU profile of `npm run bench` and the heap probe of `npm run soak`.
 */

export interface InspectorReply {
  result?: unknown;
  error?: { message?: string };
}

export interface Inspector {
  /** Sends one protocol command and resolves with its reply (errors come back in `error`). */
  call(method: string, params?: object): Promise<InspectorReply>;
  close(): void;
}

/** Connects to the first target workerd's inspector on `port` lists. */
export async function connectInspector(port: number): Promise<Inspector> {
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
  const pending = new Map<number, (reply: InspectorReply) => void>();
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as InspectorReply & { id?: number };
    if (message.id === undefined) return;
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    waiter?.(message);
  });
  return {
    call: (method, params = {}) =>
      new Promise<InspectorReply>((resolve) => {
        const id = ++next;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}
