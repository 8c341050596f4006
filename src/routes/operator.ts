/**
 * The operator API (SPEC §5): the key calls of `/v1/keys` for an explicit account, for
 * operators and the `npm run keys` CLI, never reachable with an API key.
 *
 * | call | the `/v1/keys` route it runs |
 * |---|---|
 * | `POST /v1/operator/accounts/{account_id}/keys` | createKey |
 * | `GET /v1/operator/accounts/{account_id}/keys` | listKeys |
 * | `GET /v1/operator/keys/{key_id}` | getKey |
 * | `DELETE /v1/operator/keys/{key_id}` | revokeKey |
 * | `POST /v1/operator/keys/{key_id}/roll` | rollKey |
 *
 * Each runs the very route object of KEY_ROUTES through `serve` (keys-http.ts), so input,
 * validation, answers and error codes are those of `/v1/keys`; only the account (from the
 * path, or from the key's record) and the actor (`operator:<subject>` in the audit line)
 * differ. Every request without an operator credential (src/operator/gate.ts) gets the
 * 404 of an unknown route, whatever its path or method, and nothing under the prefix is
 * ever forwarded to the engine.
 */
import type { Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { errorResponse, GatewayError } from "../errors.ts";
import { ACCOUNT_ID_PATTERN, KEY_ID_PATTERN } from "../keys/format.ts";
import { type KeyCall, type KeyRoute, serve } from "./keys-http.ts";
import { allowedMethods, KEY_ROUTES, routingPath } from "./keys.ts";

/** Every path of the operator API starts with this. */
export const OPERATOR_PREFIX = "/v1/operator";

function operatorCall(c: Context<AppEnv>, accountId: string): KeyCall {
  return {
    store: c.var.services.store,
    accountId,
    change: { actor: { type: "operator", subject: c.var.operator }, requestId: c.var.requestId },
  };
}

/** The account named in the path, checked as SPEC §5 defines account ids. */
function inNamedAccount(c: Context<AppEnv>): KeyCall {
  const accountId = c.req.param("account_id") ?? "";
  if (!ACCOUNT_ID_PATTERN.test(accountId)) {
    throw new GatewayError("invalid_parameters", {
      message: `account_id: must match ${ACCOUNT_ID_PATTERN.source} (letters, digits, _ and -, up to 64)`,
    });
  }
  return operatorCall(c, accountId);
}

/**
 * The account of the key in the path, as the gateway judges keys (the store's lookup).
 * A malformed key_id reads nothing: `runKeyRoute` answers it `key_not_found` before any
 * store call, whatever the account.
 */
async function inKeysAccount(c: Context<AppEnv>): Promise<KeyCall> {
  const keyId = c.req.param("key_id") ?? "";
  if (!KEY_ID_PATTERN.test(keyId)) return operatorCall(c, "");
  const found = await c.var.services.store.lookup(keyId);
  if (found === null) throw new GatewayError("key_not_found");
  return operatorCall(c, found.record.account_id);
}

/** The route of KEY_ROUTES with this operationId. */
function keyRoute(operationId: string): KeyRoute {
  const found = KEY_ROUTES.find((route) => route.operationId === operationId);
  if (found === undefined) throw new Error(`no key route ${operationId}`);
  return found;
}

/** One operator call: its method and path (a template, as in KEY_ROUTES), the key route it runs, its account. */
interface OperatorRoute {
  method: KeyRoute["method"];
  path: string;
  route: KeyRoute;
  callOf: (c: Context<AppEnv>) => KeyCall | Promise<KeyCall>;
}

/** The operator API: each entry runs a route of KEY_ROUTES. */
export const OPERATOR_ROUTES: readonly OperatorRoute[] = [
  {
    method: "post",
    path: `${OPERATOR_PREFIX}/accounts/{account_id}/keys`,
    route: keyRoute("createKey"),
    callOf: inNamedAccount,
  },
  {
    method: "get",
    path: `${OPERATOR_PREFIX}/accounts/{account_id}/keys`,
    route: keyRoute("listKeys"),
    callOf: inNamedAccount,
  },
  { method: "get", path: `${OPERATOR_PREFIX}/keys/{key_id}`, route: keyRoute("getKey"), callOf: inKeysAccount },
  { method: "delete", path: `${OPERATOR_PREFIX}/keys/{key_id}`, route: keyRoute("revokeKey"), callOf: inKeysAccount },
  { method: "post", path: `${OPERATOR_PREFIX}/keys/{key_id}/roll`, route: keyRoute("rollKey"), callOf: inKeysAccount },
];

/**
 * Registers the operator API. Must come before the API-key authentication of router.ts:
 * an operator request carries no API key, and an API key must never get past the gate.
 */
export function registerOperatorRoutes(app: Hono<AppEnv>): void {
  app.use(`${OPERATOR_PREFIX}/*`, async function operatorGate(c, next) {
    const subject = await c.var.services.operator.identify(c.req.raw);
    c.set("authOutcome", subject === null ? "operator_denied" : "operator");
    if (subject === null) return errorResponse("not_found", c.var.requestId);
    c.set("operator", subject);
    await next();
  });
  for (const { method, path, route, callOf } of OPERATOR_ROUTES) {
    app.on(method.toUpperCase(), routingPath(path), serve(route, callOf));
  }
  for (const [path, allow] of allowedMethods(OPERATOR_ROUTES)) {
    app.all(path, function methodNotAllowed(c) {
      return errorResponse("method_not_allowed", c.var.requestId, { headers: { Allow: allow } });
    });
  }
  app.all(`${OPERATOR_PREFIX}/*`, function operatorPathNotFound(c) {
    return errorResponse("not_found", c.var.requestId);
  });
}
