/**
 * `POST /v1/keys` (SPEC §5): creates a key in the caller's account and answers its
 * secret, the only time the secret exists in clear.
 */
import { GatewayError } from "../errors.ts";
import { keyRoute } from "./keys-http.ts";
import { CreateKeyRequest, EXPIRES_AT_MAX, NAME_MAX_CHARS, ref } from "./keys-schemas.ts";

// C0/C1 controls and unpaired surrogates: never meaningful in a label, and they corrupt logs and dashboards.
const UNPRINTABLE = /[\p{Cc}\p{Cs}]/u;
// Bidirectional controls reorder how a dashboard or a log shows the text around them (CVE-2021-42574).
const BIDI_CONTROL = /\p{Bidi_Control}/u;
// What renders as nothing: spaces, format characters (U+200B, U+2060, the BOM) and the other
// default-ignorable code points (U+3164 HANGUL FILLER and the like).
const INVISIBLE = /^[\p{White_Space}\p{Cf}\p{Default_Ignorable_Code_Point}]*$/u;

/** What the schema cannot say about a name (its `description` says it to clients). */
function nameProblem(name: string): string | undefined {
  if (name.trim() === "") return "must contain a visible character";
  if (UNPRINTABLE.test(name)) return "must not contain control characters";
  if (BIDI_CONTROL.test(name)) {
    return "must not contain bidirectional control characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069)";
  }
  if (INVISIBLE.test(name)) return "must contain a visible character";
  return undefined;
}

/** An expiry whose UTC form has a five-digit year could not be written back in RFC 3339. */
function expiresAtProblem(expiresAt: string | null): string | undefined {
  if (expiresAt !== null && Date.parse(expiresAt) > Date.parse(EXPIRES_AT_MAX)) {
    return `must be at most ${EXPIRES_AT_MAX}`;
  }
  return undefined;
}

export const createKey = keyRoute({
  method: "post",
  path: "/v1/keys",
  operationId: "createKey",
  summary: "Create an API key",
  description:
    "Creates a key in the caller's account. The answer carries `key_secret`, shown this once: it is stored only as a hash and cannot be retrieved later. The new key works at once. Every create writes an audit log line (never the secret).",
  input: {
    in: "body",
    required: true,
    schema: CreateKeyRequest,
    rules: {
      noun: "field",
      messages: {
        "": 'must be a JSON object, e.g. {"name":"Production"}',
        name: { required: `is required: a name of 1–${NAME_MAX_CHARS} characters` },
      },
      checks: { name: nameProblem, expires_at: expiresAtProblem },
    },
  },
  success: { status: 201, description: "The key, with its secret.", schema: ref("ApiKeyWithSecret") },
  errors: ["invalid_json", "invalid_content_type", "invalid_parameters", "payload_too_large"],
  async handle({ store, accountId, change }, { name, expires_at }) {
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
    const { key, secret } = await store.create(accountId, { name, expiresAt }, change);
    return { status: 201, body: { ...key, key_secret: secret } };
  },
});
