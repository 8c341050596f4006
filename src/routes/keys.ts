/**
 * Key management (SPEC §5), answered at the edge. The gateway owns `/v1/keys` and
 * everything under it: nothing there is ever forwarded to the engine.
 *
 * The routes (keys-app.ts) are loaded on the first `/v1/keys` request of an isolate:
 * they bring zod and the OpenAPI generator, which would otherwise add tens of
 * milliseconds to the cold start of every isolate, including those that only forward.
 */
import type { Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";

let loading: Promise<typeof import("./keys-app.ts")> | undefined;

function loadKeysApp(): Promise<typeof import("./keys-app.ts")> {
  loading ??= import("./keys-app.ts").catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}

/** Registers every key-management route, after authentication (src/app.ts). */
export function registerKeyRoutes(app: Hono<AppEnv>): void {
  const keys = async (c: Context<AppEnv>) => (await loadKeysApp()).dispatchKeys(c);
  app.all("/v1/keys", keys);
  app.all("/v1/keys/*", keys);
}
