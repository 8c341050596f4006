/**
 * Runs a Worker in workerd directly — no `wrangler dev`, no Miniflare entry worker in
 * front — with a hand-written Cap'n Proto config: one socket straight to the Worker,
 * KV namespaces served by a counting local KV host (kv-server.ts), an in-isolate
 * rate-limit binding, and an outbound network that may reach loopback (the origin).
 *
 * Reusable: the benchmark and the soak test both start their Workers through
 * `startWorkerd`, and read the process's CPU time through the handle it returns.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startKvServer, type KvServer } from "./kv-server.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const WORKERD_BIN = join(REPO_ROOT, "node_modules/workerd/bin/workerd");

/** A binding, as the Worker sees it on `env`. A plain string is a text var. */
export type WorkerdBinding =
  | string
  | { text: string }
  | { json: unknown }
  /** A KV namespace served by the KV host of this workerd (the name keys its store). */
  | { kvNamespace: string }
  /** A Workers Rate Limiting binding, counted in the isolate (fixed window per key). */
  | { ratelimit: { limit: number; period: number } }
  /** A namespace of a Durable Object class the Worker exports, SQLite-backed, stored in the run's temporary directory. */
  | { durableObject: { className: string } };

export interface StartWorkerdOptions {
  /** A bundle directory (`wrangler deploy --dry-run --outdir`): `index.js` is the main module. */
  bundleDir?: string;
  /** Or a single ES module file. */
  script?: string;
  bindings?: Record<string, WorkerdBinding>;
  /** Where KV namespaces persist across runs; without it KV lives in memory only. */
  kvPersistDir?: string;
  /** Share an existing KV host instead of starting one (e.g. two Workers, one store). */
  kv?: KvServer;
  /** Port of the Worker's HTTP socket on 127.0.0.1; 0 or absent: a free port. */
  port?: number;
  compatibilityDate?: string;
  compatibilityFlags?: string[];
  /** CPU list for `taskset -c` (e.g. "0"); absent: no pinning. */
  cpus?: string;
  /** Open the V8 inspector on this port (for CPU profiles). */
  inspectorPort?: number;
  /**
   * Where workerd's output (the Worker's log lines) goes: a file path (written by workerd
   * itself, so reading it costs no CPU here), or "memory" (last 200 lines, the default).
   */
  logTo?: string;
}

export interface Workerd {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  pid: number;
  kv: KvServer;
  /** Milliseconds from spawn until the socket accepted a connection. */
  listeningMs: number;
  /** `performance.now()` at spawn, to time the first answer from. */
  spawnedAt: number;
  /** CPU time (user + system, all threads) of the workerd process so far, in µs. */
  cpuTimeUs(): number;
  /** The last lines workerd printed (when logging to memory). */
  recentOutput(): string[];
  stop(): Promise<void>;
}

const RATELIMIT_MODULE = "nixflex-bench:ratelimit";
// The shape of the Workers Rate Limiting binding (`limit({ key }) → { success }`), as a
// fixed window per key kept in the isolate. Production's binding is a per-location
// counter service; this one costs less, which the benchmark documents.
const RATELIMIT_SOURCE = `
export default function (env) {
  const limit = env.limit, periodMs = env.period * 1000, windows = new Map();
  return {
    async limit({ key }) {
      const now = Date.now();
      let w = windows.get(key);
      if (w === undefined || w.until <= now) {
        if (windows.size > 100000) windows.clear();
        w = { until: now - (now % periodMs) + periodMs, count: 0 };
        windows.set(key, w);
      }
      w.count++;
      return { success: w.count <= limit };
    },
  };
}
`;

/** A free TCP port on 127.0.0.1 (there is a small race until workerd binds it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((res) => server.close(() => res()));
  return port;
}

const capnpString = (value: string): string => JSON.stringify(value);

function moduleFiles(options: StartWorkerdOptions): string[] {
  if (options.script !== undefined) return [resolve(options.script)];
  if (options.bundleDir === undefined) throw new Error("startWorkerd needs bundleDir or script");
  const dir = resolve(options.bundleDir);
  const main = join(dir, "index.js");
  if (!existsSync(main)) throw new Error(`${main} does not exist`);
  const others = readdirSync(dir)
    .filter((f) => (f.endsWith(".js") || f.endsWith(".mjs")) && f !== "index.js")
    .map((f) => join(dir, f));
  return [main, ...others];
}

/** Writes the workerd config into `dir` and returns its path. */
function writeConfig(
  dir: string,
  options: StartWorkerdOptions,
  port: number,
  kvAddresses: Map<string, string>,
): string {
  const files = moduleFiles(options);
  const base = options.script !== undefined ? dirname(files[0]!) : resolve(options.bundleDir!);
  const modules = files.map(
    (file) => `(name = ${capnpString(relative(base, file))}, esModule = embed ${capnpString(relative(dir, file))})`,
  );
  writeFileSync(join(dir, "ratelimit.js"), RATELIMIT_SOURCE);

  const bindings: string[] = [];
  const services: string[] = [];
  const durableClasses: string[] = [];
  for (const [name, binding] of Object.entries(options.bindings ?? {})) {
    if (typeof binding === "string") bindings.push(`(name = ${capnpString(name)}, text = ${capnpString(binding)})`);
    else if ("text" in binding) bindings.push(`(name = ${capnpString(name)}, text = ${capnpString(binding.text)})`);
    else if ("json" in binding)
      bindings.push(`(name = ${capnpString(name)}, json = ${capnpString(JSON.stringify(binding.json))})`);
    else if ("kvNamespace" in binding) {
      const service = `kv-${binding.kvNamespace}`;
      bindings.push(`(name = ${capnpString(name)}, kvNamespace = ${capnpString(service)})`);
      if (!services.some((s) => s.includes(`name = ${capnpString(service)}`))) {
        services.push(
          `(name = ${capnpString(service)}, external = (address = ${capnpString(kvAddresses.get(binding.kvNamespace)!)}, http = ()))`,
        );
      }
    } else if ("durableObject" in binding) {
      const className = capnpString(binding.durableObject.className);
      bindings.push(`(name = ${capnpString(name)}, durableObjectNamespace = (className = ${className}))`);
      durableClasses.push(
        `(className = ${className}, uniqueKey = ${capnpString(`bench-${binding.durableObject.className}`)}, enableSql = true)`,
      );
      if (!services.some((s) => s.includes('name = "durable-objects"'))) {
        mkdirSync(join(dir, "durable-objects"), { recursive: true });
        services.push(
          `(name = "durable-objects", disk = (path = ${capnpString(join(dir, "durable-objects"))}, writable = true))`,
        );
      }
    } else if ("ratelimit" in binding) {
      bindings.push(
        `(name = ${capnpString(name)}, wrapped = (moduleName = ${capnpString(RATELIMIT_MODULE)}, innerBindings = [` +
          `(name = "limit", json = ${capnpString(String(binding.ratelimit.limit))}), ` +
          `(name = "period", json = ${capnpString(String(binding.ratelimit.period))})]))`,
      );
    }
  }

  const config = `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    # The default outbound may reach loopback: the origin is 127.0.0.1.
    (name = "internet", network = (allow = ["public", "private", "local"])),
    ${services.join(",\n    ")}
  ],
  sockets = [(name = "http", address = ${capnpString(`127.0.0.1:${port}`)}, http = (), service = "main")],
  extensions = [(modules = [(name = ${capnpString(RATELIMIT_MODULE)}, esModule = embed "ratelimit.js", internal = true)])],
);

const worker :Workerd.Worker = (
  modules = [
    ${modules.join(",\n    ")}
  ],
  compatibilityDate = ${capnpString(options.compatibilityDate ?? "2026-11-01")},
  compatibilityFlags = [${(options.compatibilityFlags ?? ["nodejs_compat"]).map(capnpString).join(", ")}],
  bindings = [
    ${bindings.join(",\n    ")}
  ],${
    durableClasses.length === 0
      ? ""
      : `
  durableObjectNamespaces = [${durableClasses.join(", ")}],
  durableObjectStorage = (localDisk = "durable-objects"),`
  }
);
`;
  const path = join(dir, "config.capnp");
  writeFileSync(path, config);
  return path;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * CPU time of a process (all its threads, including finished ones) in µs, from
 * utime + stime in /proc/<pid>/stat (clock-tick resolution, 10 ms at 100 Hz).
 */
export function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1_000_000) / ticksPerSecond();
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`workerd exited with code ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((res) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        res(true);
      });
      socket.once("error", () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`workerd did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Every workerd this process started and has not stopped; killed if this process exits first. */
const live = new Map<ChildProcess, string>();
process.once("exit", () => {
  for (const [child, dir] of live) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Starts workerd with the Worker and its bindings; resolves once its socket accepts connections. */
export async function startWorkerd(options: StartWorkerdOptions): Promise<Workerd> {
  if (!existsSync(WORKERD_BIN)) throw new Error(`workerd is missing at ${WORKERD_BIN}: run npm install`);
  const ownKv = options.kv === undefined;
  const kv = options.kv ?? startKvServer({ persistDir: options.kvPersistDir });
  const kvAddresses = new Map<string, string>();
  for (const binding of Object.values(options.bindings ?? {})) {
    if (typeof binding === "object" && "kvNamespace" in binding && !kvAddresses.has(binding.kvNamespace)) {
      kvAddresses.set(binding.kvNamespace, await kv.serve(binding.kvNamespace));
    }
  }

  const port = options.port || (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "nixflex-workerd-"));
  let configPath: string;
  try {
    configPath = writeConfig(dir, options, port, kvAddresses);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    if (ownKv) await kv.close();
    throw error;
  }

  const args = ["serve", configPath, "--experimental"];
  if (options.inspectorPort !== undefined) args.push(`--inspector-addr=127.0.0.1:${options.inspectorPort}`);
  const [command, commandArgs] =
    options.cpus !== undefined ? ["taskset", ["-c", options.cpus, WORKERD_BIN, ...args]] : [WORKERD_BIN, args];

  const lines: string[] = [];
  const toFile = options.logTo !== undefined && options.logTo !== "memory";
  let logFd: number | undefined;
  if (toFile) {
    mkdirSync(dirname(options.logTo!), { recursive: true });
    logFd = openSync(options.logTo!, "a");
  }
  const spawnedAt = performance.now();
  const child = spawn(command, commandArgs as string[], {
    stdio: ["ignore", logFd ?? "pipe", logFd ?? "pipe"],
  });
  if (logFd !== undefined) closeSync(logFd);
  live.set(child, dir);
  child.once("exit", () => live.delete(child));
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (line === "") continue;
      lines.push(line);
      if (lines.length > 200) lines.shift();
    }
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);

  try {
    await waitForPort(port, child, 15_000);
  } catch (error) {
    child.kill("SIGKILL");
    if (ownKv) await kv.close();
    throw new Error(`${(error as Error).message}\n${lines.join("\n")}`);
  }
  const listeningMs = performance.now() - spawnedAt;
  const pid = child.pid!;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid,
    kv,
    listeningMs,
    spawnedAt,
    cpuTimeUs: () => processCpuUs(pid),
    recentOutput: () => [...lines],
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise<void>((res) => child.once("exit", () => res()));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
        await exited;
        clearTimeout(timer);
      }
      if (ownKv) await kv.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
