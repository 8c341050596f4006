/**
 * The OpenAPI 3.1 document of the key-management API, generated from the same route
 * definitions and zod schemas that validate requests. `npm run openapi` writes it to
 * docs/openapi.json; test/workers/keys-openapi.test.ts fails when the file drifts.
 */
import { LAST_USED_PRECISION_MS, REVOCATION_BOUND_S } from "../keys/store.ts";
import { createKeysApp } from "./keys-app.ts";
import { BODY_LIMIT_BYTES, SECURITY_SCHEME } from "./keys-schemas.ts";

export const OPENAPI_VERSION = "3.1.0";

const DESCRIPTION = [
  "Key management for api.nixflex.com, answered by the edge gateway itself (nothing under `/v1/keys` reaches the engine).",
  "",
  "- **Authentication**: `Authorization: Bearer KEY_ID:KEY_SECRET`. Any failure is the same `401` (see each operation).",
  "- **Account scope**: every call acts only inside the caller's account. A key_id of another account answers `404` `key_not_found`, byte for byte as an unknown one, and is left untouched.",
  "- **Errors**: always the `Error` envelope, `Content-Type: application/json`, with `X-Request-Id`. Validation errors are `400` `invalid_request_error` with code `invalid_json`, `invalid_content_type` or `invalid_parameters` and a message naming the field and what to fix; unknown fields are rejected. " +
    `Bodies over ${BODY_LIMIT_BYTES} bytes answer \`413\` \`payload_too_large\`. A known path with another method answers \`405\` \`method_not_allowed\` with \`Allow\`; any other path under \`/v1/keys/\` answers \`404\` \`not_found\`.`,
  "- **Caching**: every answer is `Cache-Control: no-store`.",
  `- **Revocation**: the revoking gateway instance refuses the key on the very next request; everywhere within ${REVOCATION_BOUND_S} s (\`revocation_propagation_seconds\`).`,
  `- **last_used_at**: precise to ${LAST_USED_PRECISION_MS / 1000} s, written after the response.`,
  "- **Audit**: create, roll and revoke each write one structured log line (account, acting key_id, target key_id, action, time), never a secret.",
].join("\n");

/** Builds the document. Deterministic: the same code always yields the same bytes. */
export function buildOpenApiDocument(): Record<string, unknown> {
  const app = createKeysApp();
  app.openAPIRegistry.registerComponent("securitySchemes", SECURITY_SCHEME, {
    type: "http",
    scheme: "bearer",
    description: "`Authorization: Bearer KEY_ID:KEY_SECRET` — the key_id and key_secret joined by a colon.",
  });
  return app.getOpenAPI31Document({
    openapi: OPENAPI_VERSION,
    info: { title: "Nixflex API — key management", version: "1.0.0", description: DESCRIPTION },
    servers: [{ url: "https://api.nixflex.com" }],
    tags: [{ name: "API keys", description: "Create, list, retrieve, roll and revoke the API keys of your account." }],
  }) as unknown as Record<string, unknown>;
}

/** The document as JSON text; scripts/openapi.ts writes it and formats it with Biome. */
export function openApiText(): string {
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
}
