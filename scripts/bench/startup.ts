/** Cold starts: spawn → listening → first 200 → first and second forwarded request. */
import { median } from "./format.ts";
import type { Workerd } from "./workerd.ts";

export interface Startup {
  listeningMs: number;
  firstOkMs: number;
  firstRequestMs: number;
  secondRequestMs: number;
}

async function measureStartup(
  start: () => Promise<Workerd>,
  firstPath: string,
  firstHeaders: Record<string, string>,
  readyPath: string,
): Promise<Startup> {
  const w = await start();
  try {
    let status = 0;
    while (status !== 200) {
      status = await fetch(w.url + readyPath).then(
        async (r) => {
          await r.arrayBuffer();
          return r.status;
        },
        () => 0,
      );
    }
    const firstOkMs = performance.now() - w.spawnedAt;
    const timed = async () => {
      const t0 = performance.now();
      const r = await fetch(w.url + firstPath, { headers: firstHeaders });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`startup request answered ${r.status}`);
      return performance.now() - t0;
    };
    const firstRequestMs = await timed();
    const secondRequestMs = await timed();
    return { listeningMs: w.listeningMs, firstOkMs, firstRequestMs, secondRequestMs };
  } finally {
    await w.stop();
  }
}

const medianStartup = (list: Startup[]): Startup => ({
  listeningMs: median(list.map((x) => x.listeningMs)),
  firstOkMs: median(list.map((x) => x.firstOkMs)),
  firstRequestMs: median(list.map((x) => x.firstRequestMs)),
  secondRequestMs: median(list.map((x) => x.secondRequestMs)),
});

/** Three cold starts of each Worker, alternating; the median of every column. */
export async function measureStartups(
  starters: { gateway: () => Promise<Workerd>; passthrough: () => Promise<Workerd> },
  gatewayHeaders: Record<string, string>,
): Promise<{ gateway: Startup; passthrough: Startup }> {
  const starts: { gateway: Startup[]; passthrough: Startup[] } = { gateway: [], passthrough: [] };
  for (let i = 0; i < 3; i++) {
    starts.gateway.push(await measureStartup(starters.gateway, "/v1/agents/a1", gatewayHeaders, "/healthz"));
    starts.passthrough.push(await measureStartup(starters.passthrough, "/v1/agents/a1", {}, "/healthz"));
  }
  return { gateway: medianStartup(starts.gateway), passthrough: medianStartup(starts.passthrough) };
}
