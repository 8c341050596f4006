/**
 * `GET /v1/keys/{key_id}` (SPEC §5): one key of the caller's account. A key of another
 * account is indistinguishable from one that never existed.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env.ts";
import { GatewayError } from "../errors.ts";
import { NO_STORE } from "./keys-http.ts";
import { COMMON_HEADERS, errorResponses, KeyIdParams, KeyObjectSchema, SECURITY } from "./keys-schemas.ts";

export const getKeyRoute = createRoute({
  method: "get",
  path: "/v1/keys/{key_id}",
  operationId: "getKey",
  summary: "Retrieve an API key",
  description: "One key of the caller's account, without its secret.",
  tags: ["API keys"],
  security: SECURITY,
  request: { params: KeyIdParams },
  responses: {
    200: {
      description: "The key.",
      headers: COMMON_HEADERS,
      content: { "application/json": { schema: KeyObjectSchema } },
    },
    ...errorResponses(["key_not_found"]),
  },
});

/** Registers `GET /v1/keys/{key_id}`. */
export function registerGetKey(app: OpenAPIHono<AppEnv>): void {
  app.openapi(getKeyRoute, async (c) => {
    const { key_id } = c.req.valid("param");
    const key = await c.var.services.store.get(c.var.principal.accountId, key_id);
    if (key === null) throw new GatewayError("key_not_found");
    return c.json(key, 200, NO_STORE);
  });
}
