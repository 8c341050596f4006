/**
 * `POST /v1/keys` (SPEC §5): creates a key in the caller's account and answers its
 * secret, the only time the secret exists in clear.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env.ts";
import { GatewayError } from "../errors.ts";
import { audit, jsonBody, NO_STORE } from "./keys-http.ts";
import { COMMON_HEADERS, CreateKeyBody, errorResponses, KeyWithSecretSchema, SECURITY } from "./keys-schemas.ts";

export const createKeyRoute = createRoute({
  method: "post",
  path: "/v1/keys",
  operationId: "createKey",
  summary: "Create an API key",
  description:
    "Creates a key in the caller's account. The answer carries `key_secret`, shown this once: it is stored only as a hash and cannot be retrieved later. The new key works at once. Every create writes an audit log line (never the secret).",
  tags: ["API keys"],
  security: SECURITY,
  middleware: jsonBody(),
  request: {
    body: { required: true, content: { "application/json": { schema: CreateKeyBody } } },
  },
  responses: {
    201: {
      description: "The key, with its secret.",
      headers: COMMON_HEADERS,
      content: { "application/json": { schema: KeyWithSecretSchema } },
    },
    ...errorResponses(["invalid_json", "invalid_content_type", "invalid_parameters", "payload_too_large"]),
  },
});

/** Registers `POST /v1/keys`. */
export function registerCreateKey(app: OpenAPIHono<AppEnv>): void {
  app.openapi(createKeyRoute, async (c) => {
    const { name, expires_at } = c.req.valid("json");
    const { store } = c.var.services;
    const now = store.now();
    let expiresAt: string | null = null;
    if (expires_at != null) {
      const at = Date.parse(expires_at);
      // "Future" by the store's clock, the same clock verification uses (SPEC §5).
      if (!(at > now)) {
        throw new GatewayError("invalid_parameters", {
          message: `expires_at: must be in the future (the gateway's time is ${new Date(now).toISOString()})`,
        });
      }
      expiresAt = new Date(at).toISOString();
    }
    const { key, secret } = await store.create(c.var.principal.accountId, { name, expiresAt });
    audit(c, "create", key.key_id);
    return c.json({ ...key, key_secret: secret }, 201, NO_STORE);
  });
}
