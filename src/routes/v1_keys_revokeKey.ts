/**
 * `DELETE /v1/keys/{key_id}` (SPEC §5): revokes a key of the caller's account. Idempotent:
 * revoking again answers the same object with the first `revoked_at`.
 *
 * The store pins the revoked record in this isolate before writing KV, so the key fails
 * here on the very next request and no in-flight read can re-cache the old record; the
 * answer states the worst-case bound for everywhere else.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env.ts";
import { GatewayError } from "../errors.ts";
import { REVOCATION_BOUND_S } from "../keys/store.ts";
import { audit, NO_STORE } from "./keys-http.ts";
import { COMMON_HEADERS, errorResponses, KeyIdParams, RevokedKeySchema, SECURITY } from "./keys-schemas.ts";

export const revokeKeyRoute = createRoute({
  method: "delete",
  path: "/v1/keys/{key_id}",
  operationId: "revokeKey",
  summary: "Revoke an API key",
  description:
    `Revokes a key of the caller's account; idempotent (a second revoke keeps the first \`revoked_at\`). The key fails with the standard \`401\` on the very next request served by the gateway instance that answered, and everywhere within \`revocation_propagation_seconds\` (${REVOCATION_BOUND_S} s). ` +
    "A key may revoke itself. Revoked keys stay listed. Every revoke writes an audit log line.",
  tags: ["API keys"],
  security: SECURITY,
  request: { params: KeyIdParams },
  responses: {
    200: {
      description: "The revoked key.",
      headers: COMMON_HEADERS,
      content: { "application/json": { schema: RevokedKeySchema } },
    },
    ...errorResponses(["key_not_found"]),
  },
});

/** Registers `DELETE /v1/keys/{key_id}`. */
export function registerRevokeKey(app: OpenAPIHono<AppEnv>): void {
  app.openapi(revokeKeyRoute, async (c) => {
    const { key_id } = c.req.valid("param");
    const result = await c.var.services.store.revoke(c.var.principal.accountId, key_id);
    if (!result.ok) throw new GatewayError(result.code);
    audit(c, "revoke", key_id);
    return c.json({ ...result.key, revocation_propagation_seconds: REVOCATION_BOUND_S }, 200, NO_STORE);
  });
}
