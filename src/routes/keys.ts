/**
 * Key management (SPEC §5), answered at the edge. The gateway owns `/v1/keys` and
 * everything under it: nothing there is ever forwarded to the engine.
 *
 * `KEY_ROUTES` is the one table of the key routes: the gateway serves it here and
 * keys-openapi.ts writes docs/openapi.json from it.
 */
import type { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { errorResponse } from "../errors.ts";
import { type KeyRoute, serve } from "./keys-http.ts";
import { createKey } from "./v1_keys_createKey.ts";
import { getKey } from "./v1_keys_getKey.ts";
import { listKeys } from "./v1_keys_listKeys.ts";
import { revokeKey } from "./v1_keys_revokeKey.ts";
import { rollKey } from "./v1_keys_rollKey.ts";

/**
 * Every key route, in the order the document lists them. Each was type-checked against its
 * own input schema by `keyRoute()`; the table forgets which schema is whose.
 */
export const KEY_ROUTES = [createKey, listKeys, getKey, revokeKey, rollKey] as readonly KeyRoute[];

/** Hono's form of an OpenAPI path template: `/v1/keys/{key_id}` → `/v1/keys/:key_id`. */
export const routingPath = (template: string): string => template.replace(/\{(\w+)\}/g, ":$1");

/** `Allow` for each routing path of `routes`, e.g. `/v1/keys/:key_id` → `GET, HEAD, DELETE`. */
export function allowedMethods(routes: readonly Pick<KeyRoute, "method" | "path">[]): Map<string, string> {
  const order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
  const byPath = new Map<string, string[]>();
  for (const route of routes) {
    const methods = byPath.get(routingPath(route.path)) ?? [];
    // Hono answers HEAD with the GET handler (RFC 9110 §9.3.2).
    methods.push(...(route.method === "get" ? ["GET", "HEAD"] : [route.method.toUpperCase()]));
    byPath.set(routingPath(route.path), methods);
  }
  const sorted = (methods: string[]) => methods.sort((a, b) => order.indexOf(a) - order.indexOf(b)).join(", ");
  return new Map([...byPath].map(([path, methods]) => [path, sorted(methods)]));
}

/**
 * Registers every key-management route, after authentication (router.ts): known paths
 * with another method answer 405 with `Allow`, any other path under `/v1/keys/` 404.
 */
export function registerKeyRoutes(app: Hono<AppEnv>): void {
  for (const route of KEY_ROUTES) app.on(route.method.toUpperCase(), routingPath(route.path), serve(route));
  for (const [path, allow] of allowedMethods(KEY_ROUTES)) {
    app.all(path, function methodNotAllowed(c) {
      return errorResponse("method_not_allowed", c.var.requestId, { headers: { Allow: allow } });
    });
  }
  app.all("/v1/keys/*", function keyPathNotFound(c) {
    return errorResponse("not_found", c.var.requestId);
  });
}
