/**
 * The schemas of the key-management API (SPEC §5, §7). The same zod schemas validate
 * requests at runtime and generate docs/openapi.json, so the document cannot describe
 * a rule the code does not enforce (test/workers/keys-openapi.test.ts checks the drift).
 *
 * Messages name what to fix; the validation hook (keys-http.ts) prefixes the field name,
 * giving e.g. `name: must be 1–100 characters`.
 */
import { z } from "@hono/zod-openapi";
import { ERRORS, type ErrorCode } from "../errors.ts";
import { KEY_ID_PATTERN } from "../keys/format.ts";
import { LAST_USED_PRECISION_MS, REVOCATION_BOUND_S } from "../keys/store.ts";

export const NAME_MAX_CHARS = 100;
export const LIST_LIMIT_MAX = 100;
export const LIST_LIMIT_DEFAULT = 10;
export const GRACE_MAX_S = 86_400;
/** Largest request body a key route reads (hono/body-limit): far above any valid body. */
export const BODY_LIMIT_BYTES = 16 * 1024;
export const CURSOR_MAX_CHARS = 1024;

/** The security scheme every key route requires (SPEC §3). */
export const SECURITY_SCHEME = "apiKeyPair";
export const SECURITY = [{ [SECURITY_SCHEME]: [] }];

// C0/C1 controls and unpaired surrogates: never meaningful in a label, and they corrupt logs and dashboards.
const UNPRINTABLE = /[\p{Cc}\p{Cs}]/u;
// Length in Unicode code points, as JSON Schema's maxLength counts (an emoji is one character).
const codePoints = (text: string) => [...text].length;

/** A strict object: unknown fields are an error that lists the allowed ones. */
function strictObject<T extends z.core.$ZodLooseShape>(shape: T, noun: "field" | "query parameter", example: string) {
  const allowed = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `${issue.keys.join(", ")}: unknown ${noun}${issue.keys.length > 1 ? "s" : ""}; allowed: ${allowed}`
        : `must be a JSON object, e.g. ${example}`,
  });
}

export const KeyIdSchema = z.string().regex(KEY_ID_PATTERN).openapi({
  description: "The key's id: `nxf_` + 32 lowercase hex characters. Not secret.",
  example: "nxf_0123456789abcdef0123456789abcdef",
});

export const KeyIdParams = z.object({
  key_id: KeyIdSchema.openapi({
    param: { name: "key_id", in: "path" },
    description:
      "The key to act on. A key_id of another account, a well-formed id that never existed and a malformed id all answer the same `404` `key_not_found`.",
  }),
});

const nullableInstant = (description: string) => z.string().nullable().openapi({ format: "date-time", description });

/** The key object of SPEC §5: exactly these fields, `null` where unset, never a hash. */
export const KeyObjectSchema = z
  .object({
    object: z.literal("api_key"),
    key_id: KeyIdSchema,
    name: z.string().openapi({ description: "The label given at creation (1–100 characters)." }),
    created_at: z.string().openapi({ format: "date-time", description: "When the key was created (UTC)." }),
    expires_at: nullableInstant(
      "From this instant on every request with the key gets the standard `401`; `null` = never expires.",
    ),
    revoked_at: nullableInstant("When the key was revoked; `null` while it is active."),
    last_used_at: nullableInstant(
      `When the key last authenticated a request, or \`null\` if never. Precision: ${LAST_USED_PRECISION_MS / 1000} s — ` +
        "each gateway instance writes it at most once per key per minute, after the response, so it may be up to " +
        `${LAST_USED_PRECISION_MS / 1000} s older than the latest use, plus up to 60 s of Workers KV propagation when read from another location.`,
    ),
  })
  .openapi("ApiKey", { description: "An API key. The secret is never part of it except right after create or roll." });

const SecretSchema = z.string().openapi({
  description:
    "The key secret: `nxfs_` + 58 random base62 characters + a 6-character base62 CRC-32 checksum. Shown only in this answer; store it now, it cannot be retrieved later.",
  example: "nxfs_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx000000",
});

export const KeyWithSecretSchema = KeyObjectSchema.extend({ key_secret: SecretSchema }).openapi("ApiKeyWithSecret", {
  description: "A key object plus its secret, answered only by create and roll.",
});

export const RevokedKeySchema = KeyObjectSchema.extend({
  revocation_propagation_seconds: z
    .number()
    .int()
    .openapi({
      description:
        "Worst case, in seconds, until the revoked key fails everywhere: Workers KV propagation (~60 s) + the KV edge cache TTL (60 s) + a gateway instance's record cache (30 s). " +
        "The gateway instance that answered this call already refuses the key on the very next request.",
      example: REVOCATION_BOUND_S,
    }),
}).openapi("RevokedApiKey", { description: "The revoked key, with the global propagation bound." });

export const KeyListSchema = z
  .object({
    data: z
      .array(KeyObjectSchema)
      .openapi({ description: "Keys of the caller's account, newest first (revoked and expired keys included)." }),
    has_more: z
      .boolean()
      .openapi({ description: "Whether another page follows; then pass `next_cursor` as `cursor`." }),
    next_cursor: z.string().nullable().openapi({
      description: "Opaque cursor for the next page, or `null` on the last page.",
    }),
  })
  .openapi("ApiKeyList");

export const CreateKeyBody = strictObject(
  {
    name: z
      .string({
        error: (issue) =>
          issue.input === undefined
            ? "is required: a name of 1–100 characters"
            : "must be a string of 1–100 characters",
      })
      .refine((name) => codePoints(name) >= 1 && codePoints(name) <= NAME_MAX_CHARS, {
        error: (issue) => `must be 1–${NAME_MAX_CHARS} characters (got ${codePoints(issue.input as string)})`,
        abort: true,
      })
      .refine((name) => name.trim() !== "", { error: "must contain a visible character" })
      .refine((name) => !UNPRINTABLE.test(name), { error: "must not contain control characters" })
      .openapi({
        minLength: 1,
        maxLength: NAME_MAX_CHARS,
        description:
          "A label for the key, e.g. `Production`: 1–100 characters (Unicode code points), not only spaces, no control characters.",
        example: "Production",
      }),
    expires_at: z.iso
      .datetime({ offset: true, error: "must be an ISO 8601 date-time with a time zone, e.g. 2030-01-01T00:00:00Z" })
      .nullable()
      .optional()
      .openapi({
        description:
          "Optional expiry: an ISO 8601 date-time with `Z` or an offset, strictly in the future. From that instant the key gets the standard `401`. Omitted or `null` = never expires. Stored in UTC with millisecond precision.",
        example: "2030-01-01T00:00:00Z",
      }),
  },
  "field",
  '{"name":"Production"}',
).openapi("CreateKeyRequest");

export const RollKeyBody = strictObject(
  {
    grace_period_seconds: z
      .int({ error: `must be an integer from 0 to ${GRACE_MAX_S}` })
      .min(0)
      .max(GRACE_MAX_S)
      .default(0)
      .openapi({
        description:
          "How long the replaced secret keeps working, in seconds (0–86400). `0` (the default) stops it at once; the new secret works at once either way.",
        example: 3600,
      }),
  },
  "field",
  '{"grace_period_seconds":3600}',
).openapi("RollKeyRequest");

export const ListKeysQuery = strictObject(
  {
    limit: z.coerce
      .number({ error: `must be an integer from 1 to ${LIST_LIMIT_MAX}` })
      .int()
      .min(1)
      .max(LIST_LIMIT_MAX)
      .default(LIST_LIMIT_DEFAULT)
      .openapi({
        param: { name: "limit", in: "query" },
        description: `Page size, 1–${LIST_LIMIT_MAX}; default ${LIST_LIMIT_DEFAULT}.`,
        example: 20,
      }),
    cursor: z
      .string({ error: "must be the next_cursor of the previous page, unchanged" })
      .regex(/^[\x21-\x7e]+$/)
      .max(CURSOR_MAX_CHARS)
      .optional()
      .openapi({
        param: { name: "cursor", in: "query" },
        description: "The `next_cursor` of the previous page, unchanged. Omit it for the first page.",
      }),
  },
  "query parameter",
  "?limit=20",
);

const ERROR_TYPES = [...new Set(Object.values(ERRORS).map((entry) => entry.type))] as [string, ...string[]];
const ERROR_CODES = Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]];

/** The one error envelope of SPEC §7. */
export const ErrorSchema = z
  .object({
    error: z.object({
      type: z.enum(ERROR_TYPES).openapi({
        description:
          "The broad class: 401 `authentication_error`; 400/404/405/413 `invalid_request_error` (404 on a key: `not_found_error`); 429 `rate_limit_error`; 5xx `api_error`.",
      }),
      code: z.enum(ERROR_CODES).openapi({ description: "Stable, machine-readable reason; switch on this." }),
      message: z.string().openapi({
        description:
          "Human-readable; for validation errors it names the field and what to fix. Never contains a secret.",
      }),
    }),
  })
  .openapi("Error", {
    description: "Every error the gateway answers itself. Also carries `X-Request-Id`; quote it when asking for help.",
  });

const REQUEST_ID_HEADER = {
  "X-Request-Id": {
    description: "This request's id (never taken from the client); quote it when asking for help.",
    schema: { type: "string" as const },
  },
};
const NO_STORE_HEADER = {
  "Cache-Control": { description: "Always `no-store`.", schema: { type: "string" as const, enum: ["no-store"] } },
};

/** Headers every answer of a key route carries. */
export const COMMON_HEADERS = { ...REQUEST_ID_HEADER, ...NO_STORE_HEADER };

const STATUS_DESCRIPTIONS: Record<number, string> = {
  400: "The request is invalid; `message` names the field and what to fix.",
  401: 'Missing or invalid API key. Always exactly `{"error":{"type":"authentication_error","code":"invalid_api_key","message":"Invalid or missing API key"}}`, whatever the reason (unknown key, wrong secret, revoked, expired).',
  404: "No such key in the caller's account. A key of another account answers exactly the same.",
  413: `The request body is larger than ${BODY_LIMIT_BYTES} bytes.`,
  429: "Too many failed authentications from this address; retry after `Retry-After` seconds.",
  500: "Unexpected failure or gateway misconfiguration; retry later and quote `X-Request-Id`.",
  503: "The key store is unavailable; nothing was changed that you were not told about. Retry later.",
};

const EXTRA_HEADERS: Record<number, Record<string, { description: string; schema: { type: "string" | "integer" } }>> = {
  401: { "WWW-Authenticate": { description: 'Always `Bearer realm="api.nixflex.com"`.', schema: { type: "string" } } },
  429: { "Retry-After": { description: "Seconds to wait before retrying.", schema: { type: "integer" } } },
};

/** Codes every authenticated key route can answer, whatever it does. */
export const AUTH_ERROR_CODES = [
  "invalid_api_key",
  "rate_limited",
  "internal_error",
  "configuration_error",
  "service_unavailable",
] as const satisfies readonly ErrorCode[];

/**
 * Error responses for a route, grouped by status, each with the envelope schema and one
 * example per code, derived from the ERRORS table so the document cannot drift from it.
 */
export function errorResponses(codes: readonly ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of [...codes, ...AUTH_ERROR_CODES]) {
    const status = ERRORS[code].status;
    const list = byStatus.get(status) ?? [];
    if (!list.includes(code)) list.push(code);
    byStatus.set(status, list);
  }
  const responses: Record<
    string,
    {
      description: string;
      headers: Record<string, { description: string; schema: { type: "string" | "integer"; enum?: string[] } }>;
      content: {
        "application/json": {
          schema: typeof ErrorSchema;
          examples: Record<string, { summary: string; value: unknown }>;
        };
      };
    }
  > = {};
  for (const status of [...byStatus.keys()].sort((a, b) => a - b)) {
    const list = byStatus.get(status)!;
    responses[String(status)] = {
      description: `${STATUS_DESCRIPTIONS[status] ?? "Error."} Codes: ${list.map((code) => `\`${code}\``).join(", ")}.`,
      headers: { ...COMMON_HEADERS, ...EXTRA_HEADERS[status] },
      content: {
        "application/json": {
          schema: ErrorSchema,
          examples: Object.fromEntries(
            list.map((code) => [
              code,
              { summary: code, value: { error: { type: ERRORS[code].type, code, message: ERRORS[code].message } } },
            ]),
          ),
        },
      },
    };
  }
  return responses;
}
