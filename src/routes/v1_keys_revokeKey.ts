/**
 * `DELETE /v1/keys/{key_id}` (SPEC §5): revokes a key of the caller's account. Idempotent:
 * revoking again answers the same object with the first `revoked_at`.
 *
 * The store pins the revoked record in this isolate before writing KV, so the key fails
 * here on the very next request and no in-flight read can re-cache the old record, then
 * logs it in the key change log; the answer states the bound in force for everywhere else.
 */
import { GatewayError } from "../errors.ts";
import { KV_BOUND_S } from "../keys/store.ts";
import { KEY_CHANGE_BOUND_S } from "../keys/sync.ts";
import { keyRoute } from "./keys-http.ts";
import { ref } from "./keys-schemas.ts";

export const revokeKey = keyRoute({
  method: "delete",
  path: "/v1/keys/{key_id}",
  operationId: "revokeKey",
  summary: "Revoke an API key",
  description:
    `Revokes a key of the caller's account; idempotent (a second revoke keeps the first \`revoked_at\`). The key fails with the standard \`401\` on the very next request served by the gateway instance that answered, and everywhere within \`revocation_propagation_seconds\`: ${KEY_CHANGE_BOUND_S} s once the key change log has the revoke, ${KV_BOUND_S} s if the log could not take it. ` +
    "A key may revoke itself. Revoked keys stay listed. Every revoke writes an audit log line.",
  success: { status: 200, description: "The revoked key.", schema: ref("RevokedApiKey") },
  errors: ["key_not_found"],
  async handle({ store, accountId, change }, _input, keyId) {
    const result = await store.revoke(accountId, keyId, change);
    if (!result.ok) throw new GatewayError(result.code);
    return {
      status: 200,
      body: { ...result.key, revocation_propagation_seconds: result.propagationSeconds ?? KV_BOUND_S },
    };
  },
});
