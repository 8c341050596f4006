/**
 * What every key route shares: the shape of a route (one entry of the table in keys.ts,
 * which both serves it and documents it), checking the key_id and the input against the
 * route's schemas with the one error envelope (SPEC §7) — `runKeyRoute`, the one
 * implementation behind `/v1/keys` and every other caller of a key operation — and the
 * HTTP form of a route: reading a JSON body within a size limit, the query, the no-store
 * answer.
 */
import type { Context } from "hono";
import type { AppEnv } from "../env.ts";
import { type ErrorCode, ERRORS, GatewayError } from "../errors.ts";
import type { ChangeContext } from "../keys/changes.ts";
import type { KeyStore } from "../keys/store.ts";
import { BODY_LIMIT_BYTES, KeyIdParam } from "./keys-schemas.ts";
import { conforms, type Infer, type JsonSchema, type ObjectSchema, type Rules, validate } from "./keys-validate.ts";

/** Key secrets pass through these answers: no cache anywhere may keep them. */
export const NO_STORE = { "Cache-Control": "no-store" } as const;

/** What a route reads besides the key_id: a JSON body, or the query. */
export type KeyRouteInput<S extends ObjectSchema> =
  | { in: "body"; required: boolean; schema: S; rules: Rules }
  | { in: "query"; schema: S; rules: Rules };

/** One key route: what it serves and what docs/openapi.json says about it. */
export interface KeyRoute<S extends ObjectSchema | undefined = ObjectSchema | undefined> {
  method: "get" | "post" | "delete";
  /** The OpenAPI path template; `{key_id}` is the one path parameter (schema `KeyIdParam`). */
  path: string;
  operationId: string;
  summary: string;
  description: string;
  input?: S extends ObjectSchema ? KeyRouteInput<S> : undefined;
  success: { status: 200 | 201; description: string; schema: JsonSchema };
  /** The codes it answers besides those of authentication (AUTH_ERROR_CODES). */
  errors: readonly ErrorCode[];
  /** Called with the input checked and defaults filled in; `keyId` is "" on paths without one. */
  handle(call: KeyCall, input: Infer<S>, keyId: string): Promise<KeyAnswer>;
}

/** One call of a key operation: the store, the account it acts in, and who acts. */
export interface KeyCall {
  store: KeyStore;
  accountId: string;
  change: ChangeContext;
}

/** A key operation's success: the HTTP status `/v1/keys` answers and the JSON body. */
export interface KeyAnswer {
  status: 200 | 201;
  body: object;
}

/** A key operation's outcome as a value, for callers that are not HTTP (service bindings, CLI). */
export type KeyOutcome =
  | { ok: true; status: 200 | 201; value: object }
  | { ok: false; error: { status: number; type: string; code: ErrorCode; message: string } };

/** Declares a route, typing `handle`'s input from the input schema. */
export function keyRoute<S extends ObjectSchema | undefined = undefined>(route: KeyRoute<S>): KeyRoute<S> {
  return route;
}

/**
 * Runs a key operation: key_id, then input (read only once the key_id passed), then the
 * route itself. Throws `GatewayError` for every answer that is not a success.
 */
export async function runKeyRoute(
  route: KeyRoute,
  call: KeyCall,
  readInput: () => unknown | Promise<unknown>,
  keyId: string,
): Promise<KeyAnswer> {
  // A malformed key_id answers the same 404 as an unknown or foreign one (SPEC §5): nobody owns it.
  if (route.path.includes("{key_id}") && !conforms(KeyIdParam, keyId)) throw new GatewayError("key_not_found");
  const input = route.input === undefined ? undefined : check(route.input, await readInput());
  return route.handle(call, input as never, keyId);
}

/**
 * `runKeyRoute` with every `GatewayError` as a value: what a service-binding or operator
 * caller gets instead of an HTTP answer. Anything else (a bug) still throws.
 */
export async function callKeyRoute(route: KeyRoute, call: KeyCall, input: unknown, keyId = ""): Promise<KeyOutcome> {
  try {
    const answer = await runKeyRoute(route, call, () => input ?? {}, keyId);
    return { ok: true, status: answer.status, value: answer.body };
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    return keyErrorOutcome(error);
  }
}

/** A `GatewayError` as the failed `KeyOutcome`: the envelope's fields (SPEC §7) as a value. */
export function keyErrorOutcome(error: GatewayError): Extract<KeyOutcome, { ok: false }> {
  const { status, type } = ERRORS[error.code];
  return { ok: false, error: { status, type, code: error.code, message: error.publicMessage } };
}

/** Who acts in a request to `/v1/keys`: the API key that authenticated it, in its own account. */
function callerAccount(c: Context<AppEnv>): KeyCall {
  const principal = c.var.principal;
  return {
    store: c.var.services.store,
    accountId: principal.accountId,
    change: { actor: { type: "api_key", keyId: principal.keyId }, requestId: c.var.requestId },
  };
}

/**
 * The Hono handler of a route: the request's key_id and input, in the account and on
 * behalf of whom `callOf` says (default: the API key's own account). The operator API
 * (operator.ts) serves the same routes with its own `callOf`.
 */
export function serve(
  route: KeyRoute,
  callOf: (c: Context<AppEnv>) => KeyCall | Promise<KeyCall> = callerAccount,
): (c: Context<AppEnv>) => Promise<Response> {
  return async function keyRouteHandler(c) {
    const call = await callOf(c);
    const readInput = () =>
      route.input?.in === "body"
        ? readJson(c.req.raw)
        : route.input?.in === "query"
          ? readQuery(c, route.input.schema)
          : undefined;
    const answer = await runKeyRoute(route, call, readInput, c.req.param("key_id") ?? "");
    return c.json(answer.body, answer.status, NO_STORE);
  };
}

function check(input: KeyRouteInput<ObjectSchema>, value: unknown): unknown {
  const result = validate(input.schema, value, input.rules);
  if (result.ok) return result.value;
  // One problem per field is enough to act on; five fields are more than any request has.
  const message = result.issues
    .slice(0, 5)
    .map((issue) => `${issue.path ?? (input.in === "query" ? "query" : "body")}: ${issue.message}`)
    .join("; ");
  throw new GatewayError("invalid_parameters", { message });
}

/**
 * The query as name → value, a repeated name as its list of values (which no schema
 * accepts), and numeric parameters as numbers, read as `Number()` reads them.
 */
function readQuery(c: Context<AppEnv>, schema: ObjectSchema): Record<string, unknown> {
  const query: Record<string, unknown> = {};
  for (const [name, values] of Object.entries(c.req.queries())) {
    const value: unknown = values.length === 1 ? values[0] : values;
    const type = [Object.hasOwn(schema.properties, name) ? schema.properties[name]!.type : []].flat();
    query[name] =
      typeof value === "string" && (type.includes("integer") || type.includes("number")) ? Number(value) : value;
  }
  return query;
}

const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json$/i;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

const tooLarge = (limit: number, why: string) =>
  new GatewayError("payload_too_large", { message: `The request body is larger than ${limit} bytes; ${why}` });

/**
 * The body's bytes, refusing (413) more than `limit` without reading further. `why` ends the
 * 413's message (what the route expects instead).
 */
export async function readLimited(
  raw: Request,
  limit: number = BODY_LIMIT_BYTES,
  why = "key requests are small JSON objects",
): Promise<Uint8Array> {
  if (Number(raw.headers.get("content-length")) > limit) throw tooLarge(limit, why);
  const bytes = new Uint8Array(limit);
  let size = 0;
  if (raw.body === null) return bytes.subarray(0, 0);
  const reader = raw.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return bytes.subarray(0, size);
    if (size + value.byteLength > limit) {
      await reader.cancel();
      throw tooLarge(limit, why);
    }
    bytes.set(value, size);
    size += value.byteLength;
  }
}

/**
 * The parsed body of a route that takes JSON: at most `BODY_LIMIT_BYTES` (413), valid
 * UTF-8 JSON under a JSON `Content-Type`. An empty body counts as `{}`, so a missing
 * required field is reported by name rather than as "bad JSON".
 */
async function readJson(raw: Request): Promise<unknown> {
  return decodeJson(raw, await readLimited(raw), 'a JSON object such as {"name":"Production"}');
}

/**
 * Parses a body already read (`readLimited`) as JSON under a JSON `Content-Type`; an empty
 * body is `{}`. Errors end "send <example>", e.g. `a JSON object such as {"name":"Production"}`.
 */
export function decodeJson(raw: Request, bytes: Uint8Array, example: string): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new GatewayError("invalid_json", {
      message: `The request body is not valid UTF-8 JSON; send ${example}`,
    });
  }
  if (text.trim() === "") return {};
  const mediaType = (raw.headers.get("content-type") ?? "").split(";")[0]!.trim();
  if (!JSON_MEDIA_TYPE.test(mediaType)) {
    throw new GatewayError("invalid_content_type", {
      message: `Content-Type must be application/json (got ${mediaType === "" ? "none" : JSON.stringify(mediaType.slice(0, 100))})`,
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new GatewayError("invalid_json", {
      message: `The request body is not valid JSON; send ${example}`,
    });
  }
}
