/**
 * `GET /v1/keys` (SPEC §5): one page of the caller's keys, newest first, read from the
 * per-account index (docs/kv-schema.md) — O(keys of that account), never a scan.
 */
import { keyRoute } from "./keys-http.ts";
import { ListKeysQuery, ref } from "./keys-schemas.ts";

export const listKeys = keyRoute({
  method: "get",
  path: "/v1/keys",
  operationId: "listKeys",
  summary: "List API keys",
  description:
    "The caller's account's keys, newest first, revoked and expired ones included. Cursor pagination: while `has_more` is true, pass `next_cursor` as `cursor` to get the next page. A page may hold fewer than `limit` keys even when `has_more` is true.",
  input: {
    in: "query",
    schema: ListKeysQuery,
    rules: {
      noun: "query parameter",
      messages: { cursor: "must be the next_cursor of the previous page, unchanged" },
    },
  },
  success: { status: 200, description: "One page of keys.", schema: ref("ApiKeyList") },
  errors: ["invalid_parameters", "invalid_cursor"],
  async handle({ store, accountId }, { limit, cursor }) {
    return { status: 200, body: await store.list(accountId, { limit, cursor: cursor ?? null }) };
  },
});
