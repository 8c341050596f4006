/**
 * The real local stack for end-to-end tests: a real `wrangler dev` gateway and an engine
 * on free loopback ports, with their own temp KV state, signing keys and operator token,
 * plus the keys CLI pointed at that gateway.
 *
 * ```ts
 * const stack = await startStack();                 // demo engine (scripts/demo-engine.ts) in its own process
 * const key = await stack.createKey("acct_1");      // `npm run keys -- create … --json`, through the gateway's operator API
 * await fetch(`${stack.gatewayUrl}/v1/x`, { headers: { authorization: key.authorization } });
 * await stack.stop();                               // also runs at process exit if a test forgot
 * ```
 *
 * `engine` may instead be a node:http handler, served in-process (faults, slow engines).
 * `dashboard: true` also starts examples/dashboard in a second `wrangler dev`, bound to
 * this gateway's `KeyAdmin` entrypoint through a dev registry of this stack's own.
 * `env` sets Worker vars (`--var NAME:value`); IDENTITY_SIGNING_KEYS, a secret, goes
 * through a temp env file (`--env-file`), never argv. An `ENGINE_URL` in `env` replaces
 * the engine's URL (e.g. a closed port), while the engine still runs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freeLoopbackPort } from "../../scripts/lib/local-gateway.ts";
import { openLocalKv } from "../../scripts/lib/kv-local.ts";
import { generateOperatorToken } from "../../scripts/lib/local-secrets.ts";
import { PROJECT_ROOT, WRANGLER_CONFIG, wranglerCommand, wranglerEnv } from "../../scripts/lib/project.ts";
import { generateSigningJwk, serializeSet } from "../../scripts/lib/signing.ts";
import { KeyStore } from "../../src/keys/store.ts";
import { runScript, type ScriptResult } from "./run.ts";

export type EngineHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface StartStackOptions {
  /** "demo" (default): scripts/demo-engine.ts as a process. A function: an in-process node:http engine. */
  engine?: EngineHandler | "demo";
  /** Worker vars; `IDENTITY_SIGNING_KEYS` replaces the generated signing key set. */
  env?: Record<string, string>;
  /** How long to wait for `/healthz` to answer at all (default 90 s: two cores, shared). */
  readyTimeoutMs?: number;
  /** Also start the example dashboard (examples/dashboard) bound to this gateway. */
  dashboard?: boolean;
}

export type KeysResult = ScriptResult;

export interface CreatedKey {
  keyId: string;
  secret: string;
  /** `Bearer KEY_ID:KEY_SECRET` */
  authorization: string;
  /** The CLI's whole `--json` answer. */
  key: Record<string, unknown>;
}

export interface Stack {
  gatewayUrl: string;
  engineUrl: string;
  /** The dashboard's URL, when started with `dashboard: true`. */
  dashboardUrl?: string;
  /** The `--persist-to` directory of this gateway (KV state lives in <persistDir>/v3). */
  persistDir: string;
  /** The IDENTITY_SIGNING_KEYS the gateway runs with (private; for tests that sign or compare). */
  signingKeys: string;
  /** The gateway's .dev.vars stand-in (`--env-file`): its signing keys and OPERATOR_TOKEN. */
  envFile: string;
  /** The local operator token this gateway accepts. */
  operatorToken: string;
  /** Runs `scripts/keys.ts ARGS` against this gateway (`--gateway`, `--dev-vars`; unless ARGS say --remote or --gateway). */
  keys(args: string[]): Promise<KeysResult>;
  /** Creates a key through the CLI; throws with the CLI's stderr when it fails. */
  createKey(accountId: string, name?: string): Promise<CreatedKey>;
  /**
   * Writes a key straight into this gateway's KV state, as `npm start` seeds its demo key:
   * for a gateway that cannot take the operator call (a misconfigured one answers 500 to all).
   */
  seedKey(accountId: string, name?: string): Promise<CreatedKey>;
  /** Everything `wrangler dev` printed so far (stdout + stderr). */
  gatewayLog(): string;
  /** wrangler's own debug log files of this gateway (WRANGLER_LOG_PATH), concatenated. */
  gatewayDebugLog(): string;
  /** Everything the demo engine process printed so far ("" for an in-process engine). */
  engineLog(): string;
  /** Everything the dashboard's `wrangler dev` printed so far ("" without a dashboard). */
  dashboardLog(): string;
  stop(): Promise<void>;
}

const DEMO_ENGINE_SCRIPT = join(PROJECT_ROOT, "scripts", "demo-engine.ts");
const DASHBOARD_CONFIG = join(PROJECT_ROOT, "examples", "dashboard", "wrangler.toml");
const ANSI = /\u001b\[[0-9;]*m/g;

/** Every stack not yet stopped, so a crashed test run still kills its processes. */
const live = new Set<{ groups: number[]; dirs: string[] }>();
let exitHookInstalled = false;

function killAllLive(): void {
  for (const entry of live) {
    for (const pid of entry.groups) killGroup(pid, "SIGKILL");
    for (const dir of entry.dirs) rmSync(dir, { recursive: true, force: true });
  }
  live.clear();
}

/**
 * Children run in their own process groups (so a whole group, workerd included, can be
 * killed), which also means a Ctrl-C on the test run does not reach them: clean up on
 * exit and on the usual termination signals, then let the signal do what it would have.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", killAllLive);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      killAllLive();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

/** Signals the process group we started (children are spawned detached, as group leaders). */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.pid === undefined) return;
  if (exited(child)) {
    killGroup(child.pid, "SIGKILL"); // grandchildren (workerd) may outlive their parent
    return;
  }
  const done = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  killGroup(child.pid, "SIGTERM");
  const timer = setTimeout(() => killGroup(child.pid!, "SIGKILL"), 5_000);
  await done;
  clearTimeout(timer);
  killGroup(child.pid, "SIGKILL");
}

/** A free loopback port (closed again at once; the OS does not hand it out again right away). */
export const freePort = freeLoopbackPort;

function capture(child: ChildProcess, sink: string[]): void {
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => sink.push(chunk.replace(ANSI, "")));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => sink.push(chunk.replace(ANSI, "")));
}

async function startDemoEngineProcess(
  jwksUrl: string,
  env: Record<string, string>,
  sink: string[],
): Promise<{ child: ChildProcess; url: string }> {
  const args = [DEMO_ENGINE_SCRIPT, "--port", "0", "--jwks-url", jwksUrl];
  if (env.IDENTITY_ISSUER !== undefined) args.push("--issuer", env.IDENTITY_ISSUER);
  if (env.IDENTITY_AUDIENCE !== undefined) args.push("--audience", env.IDENTITY_AUDIENCE);
  const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  capture(child, sink);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo engine did not start:\n${sink.join("")}`)), 30_000);
    const onData = () => {
      const match = /"event":"engine_listening","url":"([^"]+)"/.exec(sink.join(""));
      if (match) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        resolve(match[1]!);
      }
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`demo engine exited (${code}) before listening:\n${sink.join("")}`));
    });
  });
  return { child, url };
}

async function startInProcessEngine(handler: EngineHandler): Promise<{ server: Server; url: string }> {
  const server = createHttpServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}` };
}

async function waitForGateway(url: string, gateway: ChildProcess, log: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited(gateway))
      throw new Error(
        `wrangler dev exited (${gateway.exitCode ?? gateway.signalCode}) before it was ready:\n${log.join("")}`,
      );
    try {
      // Any answer means the Worker runs; a misconfigured one answers 500 here, on purpose.
      await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  }
  throw new Error(`wrangler dev did not answer ${url}/healthz within ${timeoutMs} ms:\n${log.join("")}`);
}

/** Waits until the dashboard answers its list page, which it can only do once the binding to the gateway works. */
async function waitForDashboard(url: string, dashboard: ChildProcess, log: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (exited(dashboard))
      throw new Error(
        `the dashboard's wrangler dev exited (${dashboard.exitCode ?? dashboard.signalCode}):\n${log.join("")}`,
      );
    try {
      const response = await fetch(`${url}/keys`, { signal: AbortSignal.timeout(5_000) });
      last = `${response.status}`;
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the dashboard did not list keys within ${timeoutMs} ms (last: ${last}):\n${log.join("")}`);
}

/** The keys CLI aimed at this stack's gateway, with its token file (unless ARGS name another gateway). */
function runKeys(args: string[], target: { gatewayUrl: string; envFile: string; persistDir: string }) {
  const full = [...args];
  if (!args.includes("--remote") && !args.includes("--gateway")) {
    full.push("--gateway", target.gatewayUrl, "--dev-vars", target.envFile, "--persist-to", target.persistDir);
  }
  return runScript("keys", full);
}

/** Starts gateway + engine; rejects (after cleaning up) when either does not come up. */
export async function startStack(options: StartStackOptions = {}): Promise<Stack> {
  installExitHook();
  const env = { ...options.env };
  const dir = mkdtempSync(join(tmpdir(), "nixflex-stack-"));
  const persistDir = join(dir, "state");
  const entry = { groups: [] as number[], dirs: [dir] };
  live.add(entry);

  const gatewayLog: string[] = [];
  const engineLog: string[] = [];
  const dashboardLog: string[] = [];
  let engineChild: ChildProcess | undefined;
  let engineServer: Server | undefined;
  let gateway: ChildProcess | undefined;
  let dashboard: ChildProcess | undefined;
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all([
      stopChild(gateway),
      stopChild(dashboard),
      stopChild(engineChild),
      engineServer === undefined
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            engineServer!.close(() => resolve());
            engineServer!.closeAllConnections();
          }),
    ]);
    rmSync(dir, { recursive: true, force: true });
    live.delete(entry);
  };

  try {
    const gatewayPort = await freePort();
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;

    let engineUrl: string;
    if (options.engine === undefined || options.engine === "demo") {
      const started = await startDemoEngineProcess(`${gatewayUrl}/.well-known/jwks.json`, env, engineLog);
      engineChild = started.child;
      entry.groups.push(started.child.pid!);
      engineUrl = started.url;
    } else {
      const started = await startInProcessEngine(options.engine);
      engineServer = started.server;
      engineUrl = started.url;
    }

    const signingKeys = env.IDENTITY_SIGNING_KEYS ?? serializeSet({ keys: [await generateSigningJwk("EdDSA")] });
    delete env.IDENTITY_SIGNING_KEYS;
    const envFile = join(dir, "gateway.env");
    const operatorToken = generateOperatorToken();
    // Single-quoted: dotenv keeps the JSON verbatim. The file replaces .dev.vars for this gateway
    // (and is the keys CLI's --dev-vars: its OPERATOR_TOKEN).
    writeFileSync(
      envFile,
      `IDENTITY_SIGNING_KEYS='${signingKeys.replace(/'/g, "")}'\nOPERATOR_TOKEN='${operatorToken}'\n`,
      { mode: 0o600 },
    );

    const vars = { ENGINE_URL: engineUrl, ...env };
    const args = ["dev", "--config", WRANGLER_CONFIG, "--ip", "127.0.0.1", "--port", String(gatewayPort)];
    args.push("--persist-to", persistDir, "--env-file", envFile, "--show-interactive-dev-session=false");
    for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
    // Two sessions find each other in this stack's own dev registry, never another stack's
    // gateway; each gets its own inspector port (two sessions starting at once race for 9229).
    const extra: Record<string, string> = options.dashboard
      ? { WRANGLER_REGISTRY_PATH: join(dir, "dev-registry") }
      : {};
    if (options.dashboard) args.push("--inspector-port", String(await freePort()));
    // wrangler also writes a debug log file per run; keep it with this stack (and out of ~/.config).
    const childEnv = wranglerEnv({ WRANGLER_LOG_PATH: join(dir, "wrangler-logs"), ...extra });
    const spawnWrangler = (wranglerArgs: string[], sink: string[]): ChildProcess => {
      const [file, argv] = wranglerCommand(wranglerArgs);
      const child = spawn(file, argv, {
        cwd: PROJECT_ROOT,
        env: childEnv,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      entry.groups.push(child.pid!);
      capture(child, sink);
      return child;
    };
    gateway = spawnWrangler(args, gatewayLog);

    let dashboardUrl: string | undefined;
    if (options.dashboard) {
      const port = await freePort();
      dashboardUrl = `http://127.0.0.1:${port}`;
      const dashArgs = ["dev", "--config", DASHBOARD_CONFIG, "--ip", "127.0.0.1", "--port", String(port)];
      dashArgs.push("--inspector-port", String(await freePort()), "--persist-to", join(dir, "dashboard-state"));
      dashArgs.push("--var", `API_BASE_URL:${gatewayUrl}`, "--show-interactive-dev-session=false");
      dashboard = spawnWrangler(dashArgs, dashboardLog);
    }
    await waitForGateway(gatewayUrl, gateway, gatewayLog, options.readyTimeoutMs ?? 90_000);
    if (dashboard !== undefined && dashboardUrl !== undefined) {
      await waitForDashboard(dashboardUrl, dashboard, dashboardLog, options.readyTimeoutMs ?? 90_000);
    }

    const keys = (args: string[]) => runKeys(args, { gatewayUrl, envFile, persistDir });
    return {
      gatewayUrl,
      engineUrl,
      dashboardUrl,
      persistDir,
      envFile,
      operatorToken,
      signingKeys,
      keys,
      async createKey(accountId, name = "e2e key") {
        const result = await keys(["create", "--account", accountId, "--name", name, "--json"]);
        if (result.code !== 0 || typeof result.json?.key_secret !== "string") {
          throw new Error(`keys create failed (exit ${result.code}): ${result.stderr}`);
        }
        const keyId = result.json.key_id as string;
        const secret = result.json.key_secret as string;
        return { keyId, secret, authorization: `Bearer ${keyId}:${secret}`, key: result.json };
      },
      async seedKey(accountId, name = "seeded key") {
        const local = await openLocalKv({ persistTo: persistDir });
        try {
          const { key, secret } = await new KeyStore(local.kv).create(accountId, { name, expiresAt: null });
          return {
            keyId: key.key_id,
            secret,
            authorization: `Bearer ${key.key_id}:${secret}`,
            key: { ...key, key_secret: secret },
          };
        } finally {
          await local.close();
        }
      },
      gatewayLog: () => gatewayLog.join(""),
      gatewayDebugLog: () => {
        const logs = join(dir, "wrangler-logs");
        if (!existsSync(logs)) return "";
        return readdirSync(logs)
          .sort()
          .map((name) => readFileSync(join(logs, name), "utf8"))
          .join("\n");
      },
      engineLog: () => engineLog.join(""),
      dashboardLog: () => dashboardLog.join(""),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
