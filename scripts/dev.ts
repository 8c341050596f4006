/**
 * `npm start`: the whole local stack, offline, in one command.
 *
 * 1. .dev.vars: on first run, written with a fresh EdDSA IDENTITY_SIGNING_KEYS and the
 *    OPERATOR_TOKEN the keys CLI authenticates with (scripts/lib/local-secrets.ts).
 * 2. A demo API key for account `acct_demo` in the local KV state (remembered, secret
 *    included, in .wrangler/demo-key.json, which git ignores; re-created when the state
 *    was wiped or the key revoked).
 * 3. The demo engine (scripts/demo-engine.ts) on 127.0.0.1:8788, verifying every request
 *    with the shipped verifier against the gateway's JWKS.
 * 4. `wrangler dev` on 127.0.0.1:8787; once /healthz answers, a ready-to-paste curl line.
 * 5. The example dashboard (examples/dashboard) in a second `wrangler dev` on 127.0.0.1:8789,
 *    bound to the gateway's KeyAdmin entrypoint through the local dev registry (one session
 *    with both configs would give only the first Worker a port); its URL beside the curl line.
 * Ctrl-C stops all three.
 *
 *   npm start [-- --port 8787] [--engine-port 8788] [--dashboard-port 8789] [--persist-to DIR]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { hashSecret } from "../src/keys/hash.ts";
import { isKeyRecord, kvKeys } from "../src/keys/record.ts";
import { KeyStore } from "../src/keys/store.ts";
import { CliError, UsageError, note, out, parse, runMain } from "./lib/cli.ts";
import { openLocalKv } from "./lib/kv-local.ts";
import {
  DEFAULT_PERSIST_DIR,
  DEMO_KEY_FILE,
  DEV_VARS,
  PROJECT_ROOT,
  WRANGLER_CONFIG,
  persistRoot,
  wranglerCommand,
  wranglerEnv,
} from "./lib/project.ts";
import { ensureLocalSecrets } from "./lib/local-secrets.ts";
import { startDemoEngine } from "./demo-engine.ts";

const USAGE = `Usage: npm start [-- --port 8787] [--engine-port 8788] [--dashboard-port 8789] [--persist-to DIR]

Starts the demo engine, the gateway and the example dashboard (\`wrangler dev\`, local mode,
no internet needed), creating .dev.vars and a demo key for account acct_demo on first run,
and prints a curl line and the dashboard's URL.
  --port N            the gateway's port (default 8787)
  --engine-port N     the demo engine's port (default 8788); ENGINE_URL follows it
  --dashboard-port N  the example dashboard's port (default 8789)
  --persist-to DIR    local state directory (default .wrangler/state, as wrangler dev)
Ctrl-C stops all three.`;

const DEMO_ACCOUNT = "acct_demo";
const DASHBOARD_CONFIG = join(PROJECT_ROOT, "examples", "dashboard", "wrangler.toml");
// This checkout's own dev registry: the dashboard binds to this gateway, never another checkout's.
const DEV_REGISTRY = join(PROJECT_ROOT, ".wrangler", "dev-registry");
const READY_TIMEOUT_MS = 60_000;
const started = performance.now();

interface DemoKey {
  account_id: string;
  key_id: string;
  key_secret: string;
}

function portOption(raw: string | undefined, fallback: number, flag: string): number {
  if (raw === undefined) return fallback;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) throw new UsageError(`${flag} must be a port number 1-65535`);
  return port;
}

/** Fails early, with a fix, when a port is taken (wrangler would otherwise pick another one silently or fail late). */
async function assertPortFree(port: number, flag: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", () =>
      reject(new CliError(`127.0.0.1:${port} is in use (another npm start?); stop it or pass ${flag} N`)),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}

/** A demo key that the local state still accepts, creating one if needed. */
async function ensureDemoKey(persistTo: string | undefined): Promise<DemoKey> {
  const file = persistTo === undefined ? DEMO_KEY_FILE : join(persistRoot(persistTo), "demo-key.json");
  let remembered: DemoKey | undefined;
  if (existsSync(file)) {
    try {
      remembered = JSON.parse(readFileSync(file, "utf8")) as DemoKey;
    } catch {
      remembered = undefined;
    }
  }
  const local = await openLocalKv({ persistTo });
  try {
    if (
      remembered !== undefined &&
      typeof remembered.key_id === "string" &&
      typeof remembered.key_secret === "string"
    ) {
      const record = await local.kv.get(kvKeys.record(remembered.key_id), "json");
      const usable =
        isKeyRecord(record) &&
        record.account_id === DEMO_ACCOUNT &&
        record.revoked_at === null &&
        (record.expires_at === null || Date.parse(record.expires_at) > Date.now()) &&
        record.secret_hash === (await hashSecret(remembered.key_secret));
      if (usable) return remembered;
    }
    const { key, secret } = await new KeyStore(local.kv).create(DEMO_ACCOUNT, {
      name: "Demo key (npm start)",
      expiresAt: null,
    });
    const demo: DemoKey = { account_id: DEMO_ACCOUNT, key_id: key.key_id, key_secret: secret };
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(demo, null, 2)}\n`, { mode: 0o600 });
    note(
      `Created a demo key ${key.key_id} for account ${DEMO_ACCOUNT} (remembered in ${file.replace(`${PROJECT_ROOT}/`, "")}).`,
    );
    return demo;
  } finally {
    await local.close();
  }
}

/** Waits for a 2xx from `url` (the gateway's /healthz; the dashboard's list, which needs its binding). */
async function waitForOk(url: string, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new CliError(`wrangler dev exited before the ${what} was ready (see its output above)`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new CliError(`the ${what} did not answer ${url} within ${READY_TIMEOUT_MS / 1000} s`);
}

async function main(): Promise<number> {
  const { values, positionals } = parse(process.argv.slice(2), {
    port: { type: "string" },
    "engine-port": { type: "string" },
    "dashboard-port": { type: "string" },
    "persist-to": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError("npm start takes no positional arguments");
  const port = portOption(values.port, 8787, "--port");
  const enginePort = portOption(values["engine-port"], 8788, "--engine-port");
  const dashboardPort = portOption(values["dashboard-port"], 8789, "--dashboard-port");
  if (new Set([port, enginePort, dashboardPort]).size < 3)
    throw new UsageError("--port, --engine-port and --dashboard-port must differ");
  await assertPortFree(port, "--port");
  await assertPortFree(enginePort, "--engine-port");
  await assertPortFree(dashboardPort, "--dashboard-port");

  await ensureLocalSecrets(DEV_VARS);
  const demo = await ensureDemoKey(values["persist-to"]);

  const gatewayUrl = `http://127.0.0.1:${port}`;
  const engine = await startDemoEngine({ port: enginePort, jwksUrl: `${gatewayUrl}/.well-known/jwks.json` });

  const args = ["dev", "--config", WRANGLER_CONFIG, "--ip", "127.0.0.1", "--port", String(port)];
  args.push("--var", `ENGINE_URL:${engine.url}`, "--show-interactive-dev-session=false");
  if (values["persist-to"] !== undefined) args.push("--persist-to", persistRoot(values["persist-to"]));
  const dashboardUrl = `http://127.0.0.1:${dashboardPort}`;
  const dashboardArgs = ["dev", "--config", DASHBOARD_CONFIG, "--ip", "127.0.0.1", "--port", String(dashboardPort)];
  dashboardArgs.push("--var", `API_BASE_URL:${gatewayUrl}`, "--show-interactive-dev-session=false");
  // Two sessions starting at once would both pick the inspector's default port 9229; 0 = any free port.
  args.push("--inspector-port", "0");
  dashboardArgs.push("--inspector-port", "0");
  const startWrangler = (wranglerArgs: string[]) => {
    const [file, argv] = wranglerCommand(wranglerArgs);
    const env = wranglerEnv({ WRANGLER_REGISTRY_PATH: DEV_REGISTRY });
    return spawn(file, argv, { cwd: PROJECT_ROOT, env, stdio: ["ignore", "inherit", "inherit"] });
  };
  const gateway = startWrangler(args);
  const dashboard = startWrangler(dashboardArgs);

  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    const running = [gateway, dashboard].filter((child) => child.exitCode === null && child.signalCode === null);
    const killer = setTimeout(() => {
      for (const child of running) child.kill("SIGKILL");
    }, 5_000);
    void Promise.all(
      running.map((child) => {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGINT");
        return exited;
      }),
    ).then(() => {
      clearTimeout(killer);
      void engine.close().then(() => process.exit(code));
    });
  };
  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));
  for (const [child, what] of [
    [gateway, "gateway"],
    [dashboard, "dashboard"],
  ] as const) {
    child.once("exit", (code) => {
      if (!stopping) {
        note(`wrangler dev (${what}) exited (${code ?? "signal"}); stopping the rest.`);
        stop(code ?? 1);
      }
    });
  }

  const authorization = `Bearer ${demo.key_id}:${demo.key_secret}`;
  const body = '{"hello":"nixflex"}';
  let probe: Response;
  let probeText: string;
  try {
    await waitForOk(`${gatewayUrl}/healthz`, gateway, "gateway");
    probe = await fetch(`${gatewayUrl}/v1/echo`, {
      method: "POST",
      headers: { authorization, "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(15_000),
    });
    probeText = await probe.text();
    await waitForOk(`${dashboardUrl}/keys`, dashboard, "dashboard");
  } catch (error) {
    // Never leave wrangler running behind a failed start.
    stopping = true;
    gateway.kill("SIGKILL");
    dashboard.kill("SIGKILL");
    await engine.close();
    throw error;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const persistNote =
    values["persist-to"] === undefined
      ? DEFAULT_PERSIST_DIR.replace(`${PROJECT_ROOT}/`, "")
      : persistRoot(values["persist-to"]);
  const lines = [
    "",
    `Nixflex gateway ready on ${gatewayUrl} (engine ${engine.url}, state ${persistNote}) in ${seconds} s.`,
    "",
    `Try it with the demo key of account ${DEMO_ACCOUNT} — the demo engine echoes what it verified:`,
    "",
    `  curl -sS ${gatewayUrl}/v1/echo -H 'Authorization: ${authorization}' -H 'Content-Type: application/json' -d '${body}'`,
    "",
    `Dashboard:  ${dashboardUrl}/keys  (API Keys of ${DEMO_ACCOUNT}, as a local stand-in user; no sign-in)`,
    `More keys:  npm run keys -- create --account ${DEMO_ACCOUNT} --name "My key"`,
    "Ctrl-C stops the gateway, the dashboard and the engine.",
    "",
  ];
  if (probe.status !== 200) {
    lines.push(`warning: the self-check through the gateway answered ${probe.status}: ${probeText.slice(0, 300)}`, "");
  }
  out(lines.join("\n"));
  return new Promise<number>(() => {});
}

await runMain(main, "Run `npm start -- --help` for usage.");
