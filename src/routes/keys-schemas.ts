/**
 * The schemas of the key-management API (SPEC §5, §7) as plain JSON Schema (the 2020-12
 * dialect of OpenAPI 3.1). The request schemas validate requests (keys-validate.ts) and
 * every schema here is written as is into docs/openapi.json (keys-openapi.ts), so the
 * document cannot describe a rule the code does not enforce
 * (test/workers/keys-openapi.test.ts checks the drift).
 *
 * Rules JSON Schema cannot state (a name of spaces only or with control characters, an
 * expiry in the past by the gateway's clock) are code next to their route, and said in
 * the `description` here so the document tells clients too.
 */
import { ERRORS, type ErrorCode } from "../errors.ts";
import { KEY_ID_PATTERN } from "../keys/format.ts";
import { KV_BOUND_S, LAST_USED_PRECISION_MS } from "../keys/store.ts";
import { KEY_CHANGE_BOUND_S } from "../keys/sync.ts";
import type { JsonSchema } from "./keys-validate.ts";

export const NAME_MAX_CHARS = 100;
export const LIST_LIMIT_MAX = 100;
export const LIST_LIMIT_DEFAULT = 10;
export const GRACE_MAX_S = 86_400;
/** Largest request body a key route reads: far above any valid body. */
export const BODY_LIMIT_BYTES = 16 * 1024;
export const CURSOR_MAX_CHARS = 1024;
/** The latest expiry: its UTC form still has the four-digit year RFC 3339 requires. */
export const EXPIRES_AT_MAX = "9999-12-31T23:59:59.999Z";

/** The named schemas of the document (components/schemas; `COMPONENT_SCHEMAS` below). */
export type ComponentName =
  | "ApiKey"
  | "ApiKeyWithSecret"
  | "RevokedApiKey"
  | "ApiKeyList"
  | "CreateKeyRequest"
  | "RollKeyRequest"
  | "Error";

/** A reference to a named schema: how the route table names the schema of an answer. */
export const ref = <Name extends ComponentName>(name: Name) => ({ $ref: `#/components/schemas/${name}` }) as const;

const KeyId = {
  type: "string",
  pattern: KEY_ID_PATTERN.source,
  description: "The key's id: `nxf_` + 32 lowercase hex characters. Not secret.",
  example: "nxf_0123456789abcdef0123456789abcdef",
} as const satisfies JsonSchema;

/** The `{key_id}` path parameter. */
export const KeyIdParam = {
  ...KeyId,
  description:
    "The key to act on. A key_id of another account, a well-formed id that never existed and a malformed id all answer the same `404` `key_not_found`.",
} as const satisfies JsonSchema;

// Answers are documented, never validated: the schemas below that only describe answers are
// marked pure wherever they call a function, so the Worker bundle leaves them out.

const nullableInstant = <D extends string>(description: D) =>
  ({ type: ["string", "null"], format: "date-time", description }) as const;

const lastUsedAt = (precisionMs: number) =>
  nullableInstant(
    `When the key last authenticated a request, or \`null\` if never. Precision: ${precisionMs / 1000} s — ` +
      "each gateway instance writes it at most once per key per minute, after the response, so it may be up to " +
      `${precisionMs / 1000} s older than the latest use, plus up to 60 s of Workers KV propagation when read from another location.`,
  );

/** The key object of SPEC §5: exactly these fields, `null` where unset, never a hash. */
export const ApiKey = {
  type: "object",
  properties: {
    object: { type: "string", enum: ["api_key"] },
    key_id: KeyId,
    name: { type: "string", description: "The label given at creation (1–100 characters)." },
    created_at: { type: "string", format: "date-time", description: "When the key was created (UTC)." },
    expires_at: /* @__PURE__ */ nullableInstant(
      "From this instant on every request with the key gets the standard `401`; `null` = never expires.",
    ),
    revoked_at: /* @__PURE__ */ nullableInstant("When the key was revoked; `null` while it is active."),
    last_used_at: /* @__PURE__ */ lastUsedAt(LAST_USED_PRECISION_MS),
  },
  required: ["object", "key_id", "name", "created_at", "expires_at", "revoked_at", "last_used_at"],
  description: "An API key. The secret is never part of it except right after create or roll.",
} as const satisfies JsonSchema;

export const ApiKeyWithSecret = {
  allOf: [
    /* @__PURE__ */ ref("ApiKey"),
    {
      type: "object",
      properties: {
        key_secret: {
          type: "string",
          description:
            "The key secret: `nxfs_` + 58 random base62 characters + a 6-character base62 CRC-32 checksum. Shown only in this answer; store it now, it cannot be retrieved later.",
          example: "nxfs_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx000000",
        },
      },
      required: ["key_secret"],
    },
  ],
  description: "A key object plus its secret, answered only by create and roll.",
} as const satisfies JsonSchema;

export const RevokedApiKey = {
  allOf: [
    /* @__PURE__ */ ref("ApiKey"),
    {
      type: "object",
      properties: {
        revocation_propagation_seconds: {
          type: "integer",
          description:
            `Worst case, in seconds, until the revoked key fails in every gateway instance of every location: ${KEY_CHANGE_BOUND_S} when the gateway's key change log took the revoke; ${KV_BOUND_S} (the Workers KV edge cache TTL + a gateway instance's record cache) in the rare case it could not, and revoking again retries the log. ` +
            "The gateway instance that answered this call already refuses the key on the very next request.",
          example: KEY_CHANGE_BOUND_S,
        },
      },
      required: ["revocation_propagation_seconds"],
    },
  ],
  description: "The revoked key, with the global propagation bound.",
} as const satisfies JsonSchema;

export const ApiKeyList = {
  type: "object",
  properties: {
    data: {
      type: "array",
      items: /* @__PURE__ */ ref("ApiKey"),
      description: "Keys of the caller's account, newest first (revoked and expired keys included).",
    },
    has_more: { type: "boolean", description: "Whether another page follows; then pass `next_cursor` as `cursor`." },
    next_cursor: {
      type: ["string", "null"],
      description: "Opaque cursor for the next page, or `null` on the last page.",
    },
  },
  required: ["data", "has_more", "next_cursor"],
} as const satisfies JsonSchema;

/** `POST /v1/keys`; v1_keys_createKey.ts adds the rules stated in the descriptions only. */
export const CreateKeyRequest = {
  type: "object",
  properties: {
    name: {
      type: "string",
      minLength: 1,
      maxLength: NAME_MAX_CHARS,
      description:
        "A label for the key, e.g. `Production`: 1–100 characters (Unicode code points), at least one visible (not only spaces or invisible format characters), no control or bidirectional control characters.",
      example: "Production",
    },
    expires_at: {
      type: ["string", "null"],
      format: "date-time",
      description: `Optional expiry: an ISO 8601 date-time with \`Z\` or an offset (upper-case \`T\` and \`Z\`), strictly in the future and at most \`${EXPIRES_AT_MAX}\`. From that instant the key gets the standard \`401\`. Omitted or \`null\` = never expires. Stored in UTC with millisecond precision.`,
      example: "2030-01-01T00:00:00Z",
    },
  },
  required: ["name"],
  additionalProperties: false,
} as const satisfies JsonSchema;

/** `POST /v1/keys/{key_id}/roll`; the body is optional. */
export const RollKeyRequest = {
  type: "object",
  properties: {
    grace_period_seconds: {
      type: "integer",
      minimum: 0,
      maximum: GRACE_MAX_S,
      default: 0,
      description:
        "How long the replaced secret keeps working, in seconds (0–86400). `0` (the default) stops it at once; the new secret works at once either way.",
      example: 3600,
    },
  },
  additionalProperties: false,
} as const satisfies JsonSchema;

/** The query of `GET /v1/keys`; each property is documented as a query parameter. */
export const ListKeysQuery = {
  type: "object",
  properties: {
    limit: {
      type: "integer",
      minimum: 1,
      maximum: LIST_LIMIT_MAX,
      default: LIST_LIMIT_DEFAULT,
      description: `Page size, 1–${LIST_LIMIT_MAX}; default ${LIST_LIMIT_DEFAULT}.`,
      example: 20,
    },
    cursor: {
      type: "string",
      maxLength: CURSOR_MAX_CHARS,
      // Workers KV's list cursors are base64 or base64url (local KV pads with `=`); anything
      // else is refused here, so KV never sees it.
      pattern: "^[A-Za-z0-9+/_-]+={0,2}$",
      description:
        "The `next_cursor` of the previous page, unchanged (URL-encoded: it may contain `+`, `/` and `=`). Omit it for the first page. A cursor of another shape is `400 invalid_parameters`; one of the right shape that the key store does not recognise is `400 invalid_cursor`.",
    },
  },
  additionalProperties: false,
} as const satisfies JsonSchema;

const errorTypes = () => [...new Set(Object.values(ERRORS).map((entry) => entry.type))];

/** The one error envelope of SPEC §7, with every type and code of the ERRORS table. */
export const ErrorEnvelope = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: {
        type: {
          type: "string",
          enum: /* @__PURE__ */ errorTypes(),
          description:
            "The broad class: 401 `authentication_error`; 400/404/405/413 `invalid_request_error` (404 on a key: `not_found_error`); 429 `rate_limit_error`; 5xx `api_error`.",
        },
        code: {
          type: "string",
          enum: /* @__PURE__ */ Object.keys(ERRORS) as ErrorCode[],
          description: "Stable, machine-readable reason; switch on this.",
        },
        message: {
          type: "string",
          description:
            "Human-readable; for validation errors it names the field and what to fix. Never contains a secret.",
        },
      },
      required: ["type", "code", "message"],
    },
  },
  required: ["error"],
  description: "Every error the gateway answers itself. Also carries `X-Request-Id`; quote it when asking for help.",
} as const satisfies JsonSchema;

/** The named schemas of the document: `$ref`s above and the route table point here. */
export const COMPONENT_SCHEMAS = {
  ApiKey,
  ApiKeyWithSecret,
  RevokedApiKey,
  ApiKeyList,
  CreateKeyRequest,
  RollKeyRequest,
  Error: ErrorEnvelope,
} as const satisfies Record<ComponentName, JsonSchema>;
