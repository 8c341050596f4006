/**
 * `POST /v1/keys/{key_id}/roll` (SPEC §5): a new secret for the same key_id. The old
 * secret keeps working for `grace_period_seconds` (0 = stops at once).
 */
import { GatewayError } from "../errors.ts";
import { keyRoute } from "./keys-http.ts";
import { ref, RollKeyRequest } from "./keys-schemas.ts";

export const rollKey = keyRoute({
  method: "post",
  path: "/v1/keys/{key_id}/roll",
  operationId: "rollKey",
  summary: "Roll an API key's secret",
  description:
    "Gives the key a new secret, shown in this answer only; the key_id, name and expiry stay. The replaced secret keeps working for `grace_period_seconds` (default 0: it stops at once). Only the secret replaced by the latest roll has a grace period. A revoked or expired key cannot be rolled. Every roll writes an audit log line (never a secret). The body is optional.",
  input: {
    in: "body",
    required: false,
    schema: RollKeyRequest,
    rules: { noun: "field", messages: { "": 'must be a JSON object, e.g. {"grace_period_seconds":3600}' } },
  },
  success: { status: 200, description: "The key, with its new secret.", schema: ref("ApiKeyWithSecret") },
  errors: [
    "invalid_json",
    "invalid_content_type",
    "invalid_parameters",
    "key_revoked",
    "key_expired",
    "key_not_found",
    "payload_too_large",
  ],
  async handle({ store, accountId, change }, { grace_period_seconds }, keyId) {
    const result = await store.roll(accountId, keyId, grace_period_seconds, change);
    if (!result.ok) throw new GatewayError(result.code);
    return { status: 200, body: { ...result.key, key_secret: result.secret! } };
  },
});
