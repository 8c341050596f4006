/** CPU profiles of the gateway (bundled unminified, so functions keep their names) and the passthrough under load. */
import { join } from "node:path";
import { bundleWorker } from "./bundle.ts";
import { say } from "./format.ts";
import type { Pins } from "./measure.ts";
import { type ProfileSummary, recordCpuProfile, summarizeProfile } from "./profile.ts";
import type { Stack } from "./stack.ts";
import { freePort, REPO_ROOT, startWorkerd, type Workerd } from "./workerd.ts";
import { runWrk } from "./wrk.ts";

async function take(
  start: (port: number) => Promise<Workerd>,
  specFile: string,
  pins: Pins,
  bundleFile?: string,
): Promise<ProfileSummary> {
  const port = await freePort();
  const w = await start(port);
  try {
    await runWrk({ url: w.url, specFile, connections: 32, durationS: 1, cpus: pins.load });
    const p = await recordCpuProfile(port, async () => {
      await runWrk({ url: w.url, specFile, connections: 32, durationS: 4, cpus: pins.load });
    });
    return summarizeProfile(p, bundleFile);
  } finally {
    await w.stop();
  }
}

export async function profileHotKey(
  stack: Stack,
  specFiles: { hot: string; passthrough: string },
  pins: Pins,
): Promise<{ profile: ProfileSummary; passthroughProfile: ProfileSummary }> {
  say("CPU profiles (hot key and passthrough, c=32, 4 s each)…");
  const readable = await bundleWorker(
    join(REPO_ROOT, "src/index.ts"),
    join(stack.workDir, "gateway-readable/index.js"),
  );
  const startReadable = (port: number) =>
    startWorkerd({
      script: readable,
      bindings: stack.gateway.bindings,
      kv: stack.kv,
      cpus: pins.workerd,
      logTo: join(stack.workDir, "gateway.log"),
      inspectorPort: port,
    });
  const profile = await take(startReadable, specFiles.hot, pins, readable);
  const passthroughProfile = await take(
    (port) => stack.start("passthrough", { inspectorPort: port }),
    specFiles.passthrough,
    pins,
  );
  return { profile, passthroughProfile };
}
