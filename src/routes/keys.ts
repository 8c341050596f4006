/**
 * Key management (SPEC §5), answered at the edge. The gateway owns `/v1/keys` and
 * everything under it: nothing there is ever forwarded to the engine. Known paths with
 * another method answer 405 with `Allow`; any other path under `/v1/keys/` answers 404.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { errorResponse } from "../errors.ts";
import { validationHook } from "./keys-http.ts";
import { createKeyRoute, registerCreateKey } from "./v1_keys_createKey.ts";
import { getKeyRoute, registerGetKey } from "./v1_keys_getKey.ts";
import { listKeysRoute, registerListKeys } from "./v1_keys_listKeys.ts";
import { registerRevokeKey, revokeKeyRoute } from "./v1_keys_revokeKey.ts";
import { registerRollKey, rollKeyRoute } from "./v1_keys_rollKey.ts";

/** Every key route's definition: the document and the 405 `Allow` lists come from here. */
export const KEY_ROUTES = [createKeyRoute, listKeysRoute, getKeyRoute, revokeKeyRoute, rollKeyRoute] as const;

/** The key routes as an OpenAPI app: what both the gateway and the document generator build. */
export function createKeysApp(): OpenAPIHono<AppEnv> {
  const keys = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  registerCreateKey(keys);
  registerListKeys(keys);
  registerGetKey(keys);
  registerRevokeKey(keys);
  registerRollKey(keys);
  return keys;
}

/** `Allow` for each routing path, e.g. `/v1/keys/:key_id` → `GET, HEAD, DELETE`. */
export function allowedMethods(): Map<string, string> {
  const byPath = new Map<string, string[]>();
  for (const route of KEY_ROUTES) {
    const methods = byPath.get(route.getRoutingPath()) ?? [];
    const method = route.method.toUpperCase();
    // Hono answers HEAD with the GET handler (RFC 9110 §9.3.2).
    methods.push(...(method === "GET" ? ["GET", "HEAD"] : [method]));
    byPath.set(route.getRoutingPath(), methods);
  }
  const order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
  const sorted = (methods: string[]) => [...methods].sort((a, b) => order.indexOf(a) - order.indexOf(b)).join(", ");
  return new Map([...byPath].map(([path, methods]) => [path, sorted(methods)]));
}

/** Registers every key-management route, after authentication (src/app.ts). */
export function registerKeyRoutes(app: Hono<AppEnv>): void {
  app.route("/", createKeysApp());
  for (const [path, allow] of allowedMethods()) {
    app.all(path, (c: Context<AppEnv>) =>
      errorResponse("method_not_allowed", c.var.requestId, { headers: { Allow: allow } }),
    );
  }
  app.all("/v1/keys/*", (c: Context<AppEnv>) => errorResponse("not_found", c.var.requestId));
}
