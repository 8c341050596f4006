/**
 * `GET /v1/keys` (SPEC §5): one page of the caller's keys, newest first, read from the
 * per-account index (docs/kv-schema.md) — O(keys of that account), never a scan.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env.ts";
import { NO_STORE } from "./keys-http.ts";
import { COMMON_HEADERS, errorResponses, KeyListSchema, ListKeysQuery, SECURITY } from "./keys-schemas.ts";

export const listKeysRoute = createRoute({
  method: "get",
  path: "/v1/keys",
  operationId: "listKeys",
  summary: "List API keys",
  description:
    "The caller's account's keys, newest first, revoked and expired ones included. Cursor pagination: while `has_more` is true, pass `next_cursor` as `cursor` to get the next page. A page may hold fewer than `limit` keys even when `has_more` is true.",
  tags: ["API keys"],
  security: SECURITY,
  request: { query: ListKeysQuery },
  responses: {
    200: {
      description: "One page of keys.",
      headers: COMMON_HEADERS,
      content: { "application/json": { schema: KeyListSchema } },
    },
    ...errorResponses(["invalid_parameters"]),
  },
});

/** Registers `GET /v1/keys`. */
export function registerListKeys(app: OpenAPIHono<AppEnv>): void {
  app.openapi(listKeysRoute, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const page = await c.var.services.store.list(c.var.principal.accountId, { limit, cursor: cursor ?? null });
    return c.json(page, 200, NO_STORE);
  });
}
