/**
 * `GET /v1/keys/{key_id}` (SPEC §5): one key of the caller's account. A key of another
 * account is indistinguishable from one that never existed.
 */
import { GatewayError } from "../errors.ts";
import { keyRoute } from "./keys-http.ts";
import { ref } from "./keys-schemas.ts";

export const getKey = keyRoute({
  method: "get",
  path: "/v1/keys/{key_id}",
  operationId: "getKey",
  summary: "Retrieve an API key",
  description: "One key of the caller's account, without its secret.",
  success: { status: 200, description: "The key.", schema: ref("ApiKey") },
  errors: ["key_not_found"],
  async handle({ store, accountId }, _input, keyId) {
    const key = await store.get(accountId, keyId);
    if (key === null) throw new GatewayError("key_not_found");
    return { status: 200, body: key };
  },
});
