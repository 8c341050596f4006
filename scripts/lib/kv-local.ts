/**
 * The local `API_KEYS` namespace — the very state `wrangler dev` (and so `npm start`)
 * reads — opened through wrangler's own `getPlatformProxy`, so the CLI and the local
 * gateway can never disagree about where or how key records are stored.
 */
import { join } from "node:path";
import { getPlatformProxy } from "wrangler";
import { KV_BINDING, WRANGLER_CONFIG, persistRoot } from "./project.ts";

export interface OpenedKv {
  kv: KVNamespace;
  /** Where the state lives (the `--persist-to` directory). */
  where: string;
  close(): Promise<void>;
}

/**
 * Opens the local namespace. `persistTo` has `wrangler dev --persist-to` semantics
 * (default `.wrangler/state` next to wrangler.toml); `environment` selects a
 * `[env.<name>]` section of wrangler.toml.
 */
export async function openLocalKv(options: { persistTo?: string; environment?: string } = {}): Promise<OpenedKv> {
  const root = persistRoot(options.persistTo);
  // getPlatformProxy reads these from process.env like every wrangler entry point.
  process.env.WRANGLER_SEND_METRICS = "false";
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  // Its notices (which secrets it loaded, that the Worker's secret is missing) concern the
  // Worker, not key records; errors still show. Restored after, so a wrangler started later
  // by the same process (npm start) logs as usual.
  const logLevel = process.env.WRANGLER_LOG;
  process.env.WRANGLER_LOG ??= "error";
  let proxy: Awaited<ReturnType<typeof getPlatformProxy<Record<string, unknown>>>>;
  try {
    // Even starting can meet the database locked by another process: try again (see withRetry).
    proxy = await withRetry(() =>
      getPlatformProxy<Record<string, unknown>>({
        configPath: WRANGLER_CONFIG,
        environment: options.environment,
        // wrangler dev keeps its state in <persist-to>/v3; getPlatformProxy wants that inner path.
        persist: { path: join(root, "v3") },
        remoteBindings: false,
      }),
    );
  } finally {
    if (logLevel === undefined) delete process.env.WRANGLER_LOG;
    else process.env.WRANGLER_LOG = logLevel;
  }
  const kv = proxy.env[KV_BINDING] as KVNamespace | undefined;
  if (kv === undefined) {
    await proxy.dispose();
    throw new Error(`wrangler.toml has no KV binding named ${KV_BINDING}`);
  }
  return { kv: retryingWhenBusy(kv), where: root, close: () => proxy.dispose() };
}

/**
 * Local KV state is one SQLite database; when another process (`wrangler dev`, another
 * CLI) holds its lock, an operation fails with a 500 ("SQLITE_BUSY") instead of waiting.
 * Every operation KeyStore makes is idempotent, so a failed one is simply tried again.
 * The lock does not always surface as a recognisable message (CI once saw a bare "Error"
 * through the platform proxy), so any failure of the local store is retried; a real fault
 * still surfaces after the last attempt (≈ 6 s).
 */
const ATTEMPTS = 8;

async function withRetry<T>(operation: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt * (0.5 + Math.random())));
    }
  }
}

function retryingWhenBusy(kv: KVNamespace): KVNamespace {
  const call = kv as unknown as Record<
    "get" | "put" | "list" | "delete" | "getWithMetadata",
    (...args: unknown[]) => Promise<unknown>
  >;
  const wrapped = {
    get: (...args: unknown[]) => withRetry(() => call.get.apply(kv, args)),
    getWithMetadata: (...args: unknown[]) => withRetry(() => call.getWithMetadata.apply(kv, args)),
    put: (...args: unknown[]) => withRetry(() => call.put.apply(kv, args)),
    list: (...args: unknown[]) => withRetry(() => call.list.apply(kv, args)),
    delete: (...args: unknown[]) => withRetry(() => call.delete.apply(kv, args)),
  };
  return wrapped as unknown as KVNamespace;
}
