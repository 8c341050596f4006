/**
 * Where things live in this checkout, and how to run wrangler from a script.
 *
 * Every path is absolute and derived from this file's location, so the scripts behave
 * the same from any working directory (npm runs them from the project root; tests do not).
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root: the directory holding wrangler.toml. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const WRANGLER_CONFIG = join(PROJECT_ROOT, "wrangler.toml");
/** wrangler dev's default `--persist-to` (relative to the config file's directory). */
export const DEFAULT_PERSIST_DIR = join(PROJECT_ROOT, ".wrangler", "state");
export const DEV_VARS = join(PROJECT_ROOT, ".dev.vars");
/** The demo key pair `npm start` creates; under .wrangler/, which git ignores. */
export const DEMO_KEY_FILE = join(PROJECT_ROOT, ".wrangler", "demo-key.json");
export const WRANGLER_BIN = join(PROJECT_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
/** The KV binding of wrangler.toml that holds key records. */
export const KV_BINDING = "API_KEYS";

/**
 * `--persist-to DIR` means what it means to `wrangler dev`: the state lives in DIR/v3.
 * getPlatformProxy wants that inner directory, wrangler's own commands want DIR.
 */
export function persistRoot(persistTo: string | undefined): string {
  return persistTo === undefined ? DEFAULT_PERSIST_DIR : resolve(process.cwd(), persistTo);
}

/**
 * The environment for every wrangler child: no telemetry, and no attempt to download
 * the `Request.cf` fixture (it needs the internet and prints a stack trace without it).
 */
export function wranglerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    ...extra,
  };
  // wrangler.toml declares IDENTITY_SIGNING_KEYS and OPERATOR_TOKEN required secrets, which makes
  // wrangler read them from process.env too: a stray value there must not override the one we hand it.
  delete env.IDENTITY_SIGNING_KEYS;
  delete env.OPERATOR_TOKEN;
  return env;
}

/**
 * Wrangler needs Node ≥ 22; `node` on PATH may be older, so wrangler always runs under the
 * Node that runs this script (npm puts the node@22 devDependency first on PATH).
 */
export function wranglerCommand(args: string[]): [string, string[]] {
  return [process.execPath, [WRANGLER_BIN, ...args]];
}
