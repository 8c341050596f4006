/**
 * A local gateway (`wrangler dev`) started by a script for as long as it needs one: the
 * keys CLI starts one when no gateway answers at the local address, so a key change still
 * goes through the gateway's operator API, on the same local state `npm start` uses.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { redact } from "../../src/log.ts";
import { PROJECT_ROOT, WRANGLER_CONFIG, persistRoot, wranglerCommand, wranglerEnv } from "./project.ts";

const ANSI = /\u001b\[[0-9;]*m/g;

export interface LocalGateway {
  url: string;
  /** How long it took to answer /healthz, in ms. */
  startedInMs: number;
  stop(): Promise<void>;
}

export interface LocalGatewayOptions {
  /** `wrangler dev --persist-to` (default .wrangler/state, as `npm start`). */
  persistTo?: string;
  /** The .dev.vars file the Worker reads its secrets from (`--env-file`). */
  envFile: string;
  readyTimeoutMs?: number;
}

/** A free loopback port (closed again at once; the OS does not hand it out again right away). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** Signals the child's whole process group (workerd included); it was spawned detached, as its leader. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/** Starts `wrangler dev` on a free loopback port and waits until /healthz answers. */
export async function startLocalGateway(options: LocalGatewayOptions): Promise<LocalGateway> {
  const started = performance.now();
  const port = await freeLoopbackPort();
  const url = `http://127.0.0.1:${port}`;
  const args = ["dev", "--config", WRANGLER_CONFIG, "--ip", "127.0.0.1", "--port", String(port)];
  args.push("--persist-to", persistRoot(options.persistTo), "--env-file", options.envFile);
  args.push("--show-interactive-dev-session=false");
  const [file, argv] = wranglerCommand(args);
  const child = spawn(file, argv, {
    cwd: PROJECT_ROOT,
    env: wranglerEnv(),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding("utf8").on("data", (chunk: string) => output.push(chunk.replace(ANSI, "")));
  }
  const stop = async () => {
    if (exited(child)) return signalGroup(child, "SIGKILL");
    const done = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    signalGroup(child, "SIGTERM");
    const killer = setTimeout(() => signalGroup(child, "SIGKILL"), 5_000);
    await done;
    clearTimeout(killer);
    signalGroup(child, "SIGKILL");
  };
  // A CLI that exits or is interrupted never leaves its gateway behind: the gateway runs in its
  // own process group, which a Ctrl-C on the CLI does not reach.
  const onExit = () => signalGroup(child, "SIGKILL");
  const onSignal = (signal: NodeJS.Signals) => {
    signalGroup(child, "SIGKILL");
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  const release = () => {
    process.off("exit", onExit);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
  process.once("exit", onExit);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
  while (Date.now() < deadline) {
    if (exited(child)) break;
    try {
      await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      return {
        url,
        startedInMs: Math.round(performance.now() - started),
        stop: async () => {
          await stop();
          release();
        },
      };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await stop();
  release();
  const tail = redact(output.join("").split("\n").slice(-12).join("\n"));
  throw new Error(`could not start a local gateway (wrangler dev) on ${url}:\n${tail}`);
}
