/**
 * `POST /v1/keys/{key_id}/roll` (SPEC §5): a new secret for the same key_id. The old
 * secret keeps working for `grace_period_seconds` (0 = stops at once).
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env.ts";
import { GatewayError } from "../errors.ts";
import { audit, jsonBody, NO_STORE } from "./keys-http.ts";
import {
  COMMON_HEADERS,
  errorResponses,
  KeyIdParams,
  KeyWithSecretSchema,
  RollKeyBody,
  SECURITY,
} from "./keys-schemas.ts";

export const rollKeyRoute = createRoute({
  method: "post",
  path: "/v1/keys/{key_id}/roll",
  operationId: "rollKey",
  summary: "Roll an API key's secret",
  description:
    "Gives the key a new secret, shown in this answer only; the key_id, name and expiry stay. The replaced secret keeps working for `grace_period_seconds` (default 0: it stops at once). Only the secret replaced by the latest roll has a grace period. A revoked or expired key cannot be rolled. Every roll writes an audit log line (never a secret). The body is optional.",
  tags: ["API keys"],
  security: SECURITY,
  middleware: jsonBody(),
  request: {
    params: KeyIdParams,
    body: { required: false, content: { "application/json": { schema: RollKeyBody } } },
  },
  responses: {
    200: {
      description: "The key, with its new secret.",
      headers: COMMON_HEADERS,
      content: { "application/json": { schema: KeyWithSecretSchema } },
    },
    ...errorResponses([
      "invalid_json",
      "invalid_content_type",
      "invalid_parameters",
      "key_revoked",
      "key_expired",
      "key_not_found",
      "payload_too_large",
    ]),
  },
});

/** Registers `POST /v1/keys/{key_id}/roll`. */
export function registerRollKey(app: OpenAPIHono<AppEnv>): void {
  app.openapi(rollKeyRoute, async (c) => {
    const { key_id } = c.req.valid("param");
    const { grace_period_seconds } = c.req.valid("json");
    const result = await c.var.services.store.roll(c.var.principal.accountId, key_id, grace_period_seconds);
    if (!result.ok) throw new GatewayError(result.code);
    audit(c, "roll", key_id);
    return c.json({ ...result.key, key_secret: result.secret! }, 200, NO_STORE);
  });
}
