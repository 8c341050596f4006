/**
 * What every key route shares: reading a JSON body within a size limit, turning schema
 * failures into the one error envelope (SPEC §7), the audit line, and the no-store answer.
 */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ZodError } from "zod";
import type { AppEnv } from "../env.ts";
import { GatewayError } from "../errors.ts";
import { log } from "../log.ts";
import { BODY_LIMIT_BYTES } from "./keys-schemas.ts";

/** Key secrets pass through these answers: no cache anywhere may keep them. */
export const NO_STORE = { "Cache-Control": "no-store" } as const;

const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json$/i;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * The body middleware of a route that takes JSON: refuses more than `BODY_LIMIT_BYTES`
 * (413, before anything is parsed), then requires valid UTF-8 JSON under a JSON
 * `Content-Type`. An empty body counts as `{}`, so a missing required field is reported
 * by name rather than as "bad JSON". The request is then handed on as canonical JSON,
 * so the route's zod validator sees exactly what was checked here.
 */
export function jsonBody(): MiddlewareHandler<AppEnv>[] {
  const limit = bodyLimit({
    maxSize: BODY_LIMIT_BYTES,
    onError: () => {
      throw tooLarge();
    },
  });
  return [limit, readJson];
}

const tooLarge = () =>
  new GatewayError("payload_too_large", {
    message: `The request body is larger than ${BODY_LIMIT_BYTES} bytes; key requests are small JSON objects`,
  });

const readJson: MiddlewareHandler<AppEnv> = async function readJson(c, next) {
  const raw = c.req.raw;
  let text = "";
  if (raw.body !== null) {
    const bytes = await raw.arrayBuffer();
    // bodyLimit trusts Content-Length when present; a body longer than it declared is refused here too.
    if (bytes.byteLength > BODY_LIMIT_BYTES) throw tooLarge();
    try {
      text = utf8.decode(bytes);
    } catch {
      throw new GatewayError("invalid_json", {
        message: 'The request body is not valid UTF-8 JSON; send a JSON object such as {"name":"Production"}',
      });
    }
  }
  let canonical = "{}";
  if (text.trim() !== "") {
    const mediaType = (raw.headers.get("content-type") ?? "").split(";")[0]!.trim();
    if (!JSON_MEDIA_TYPE.test(mediaType)) {
      throw new GatewayError("invalid_content_type", {
        message: `Content-Type must be application/json (got ${mediaType === "" ? "none" : JSON.stringify(mediaType.slice(0, 100))})`,
      });
    }
    try {
      JSON.parse(text);
    } catch {
      throw new GatewayError("invalid_json", {
        message: 'The request body is not valid JSON; send a JSON object such as {"name":"Production"}',
      });
    }
    canonical = text;
  }
  const headers = new Headers(raw.headers);
  headers.set("content-type", "application/json");
  headers.delete("content-length");
  c.req.raw = new Request(raw.url, { method: raw.method, headers, body: canonical });
  await next();
};

type Target = "json" | "query" | "param" | string;

/** Turns zod issues into one message: `field: what to fix; other: what to fix`. */
export function describeIssues(error: ZodError, target: Target): string {
  const parts = new Map<string, string>();
  for (const issue of error.issues) {
    // Unknown keys already name themselves (keys-schemas.ts strictObject).
    if (issue.code === "unrecognized_keys") {
      parts.set(`unknown:${issue.keys.join()}`, issue.message);
      continue;
    }
    const field = issue.path.map(String).join(".") || (target === "query" ? "query" : "body");
    // One problem per field is enough to act on; the first is the most basic.
    if (!parts.has(field)) parts.set(field, `${field}: ${issue.message}`);
  }
  return [...parts.values()].slice(0, 5).join("; ");
}

/**
 * The validation hook for every key route. A malformed key_id in the path answers the
 * same `404 key_not_found` as an unknown or foreign one (SPEC §5): nobody owns it.
 */
export function validationHook(
  result: { success: true } | { success: false; error: ZodError; target: Target },
  _c: Context<AppEnv>,
): undefined {
  if (result.success) return undefined;
  if (result.target === "param") throw new GatewayError("key_not_found");
  throw new GatewayError("invalid_parameters", { message: describeIssues(result.error, result.target) });
}

/**
 * The audit line for a change to a key (create, roll, revoke): who, in which account,
 * on which key, when. Identifiers only: a secret is never passed here.
 */
export function audit(c: Context<AppEnv>, action: "create" | "roll" | "revoke", targetKeyId: string): void {
  const principal = c.var.principal;
  log("info", "audit", {
    request_id: c.var.requestId,
    account_id: principal.accountId,
    actor_key_id: principal.keyId,
    target_key_id: targetKeyId,
    action,
    at: new Date(c.var.services.store.now()).toISOString(),
  });
}
