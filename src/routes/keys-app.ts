/**
 * The key-management sub-app (SPEC §5): every route under `/v1/keys`, built with
 * @hono/zod-openapi so the schemas that validate requests also generate the document.
 * Loaded on the first `/v1/keys` request of an isolate (keys.ts), so isolates that only
 * forward never evaluate zod.
 *
 * It owns `/v1/keys` and everything under it: known paths with another method answer
 * 405 with `Allow`; any other path answers 404. Errors are rethrown to the gateway's one
 * error handler (src/app.ts), so there is still a single envelope writer.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
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

/** The gateway context of each request handed to the sub-app (see `dispatchKeys`). */
const gatewayContexts = new WeakMap<Request, Context<AppEnv>>();

/** The key routes as an OpenAPI app: what both the gateway and the document generator build. */
export function createKeysApp(): OpenAPIHono<AppEnv> {
  const keys = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  // The caller, services and request id come from the gateway's own context.
  keys.use(async function fromGateway(c, next) {
    const gateway = gatewayContexts.get(c.req.raw);
    if (gateway === undefined) throw new Error("key routes are served only through the gateway");
    c.set("services", gateway.var.services);
    c.set("principal", gateway.var.principal);
    c.set("requestId", gateway.var.requestId);
    await next();
  });
  registerCreateKey(keys);
  registerListKeys(keys);
  registerGetKey(keys);
  registerRevokeKey(keys);
  registerRollKey(keys);
  for (const [path, allow] of allowedMethods()) {
    keys.all(path, (c) => errorResponse("method_not_allowed", c.var.requestId, { headers: { Allow: allow } }));
  }
  keys.notFound((c) => errorResponse("not_found", c.var.requestId));
  keys.onError((error) => {
    throw error;
  });
  return keys;
}

let app: OpenAPIHono<AppEnv> | undefined;

/** Answers one `/v1/keys` request of the gateway, authenticated already. */
export function dispatchKeys(c: Context<AppEnv>): Promise<Response> {
  app ??= createKeysApp();
  gatewayContexts.set(c.req.raw, c);
  return Promise.resolve(app.fetch(c.req.raw, c.env, c.executionCtx));
}
