/**
 * The one error type and the one envelope (SPEC §7). Every error the gateway answers
 * itself goes through `errorResponse`; nothing else writes an error body.
 */
import { type LogFields, log } from "./log.ts";

/** Every error code the gateway answers, with its status, type and public message. */
export const ERRORS = {
  invalid_api_key: { status: 401, type: "authentication_error", message: "Invalid or missing API key" },
  invalid_signature: {
    status: 401,
    type: "authentication_error",
    message: "The report's signature is missing or does not verify",
  },
  rate_limited: {
    status: 429,
    type: "rate_limit_error",
    message: "Too many failed authentication attempts; retry after the time in Retry-After",
  },
  invalid_json: { status: 400, type: "invalid_request_error", message: "The request body is not valid JSON" },
  invalid_parameters: { status: 400, type: "invalid_request_error", message: "The request has invalid parameters" },
  invalid_content_type: {
    status: 400,
    type: "invalid_request_error",
    message: "Send the request body as JSON with Content-Type: application/json",
  },
  invalid_cursor: {
    status: 400,
    type: "invalid_request_error",
    message:
      "The cursor is not a next_cursor this API returned; pass next_cursor unchanged, or omit cursor for the first page",
  },
  body_not_allowed: {
    status: 400,
    type: "invalid_request_error",
    message: "A GET or HEAD request cannot carry a body; send the body with POST, PUT or PATCH",
  },
  upgrade_not_supported: {
    status: 400,
    type: "invalid_request_error",
    message: "This API does not accept WebSocket upgrades; send plain HTTP requests",
  },
  key_revoked: {
    status: 400,
    type: "invalid_request_error",
    message: "This key is revoked and cannot be rolled; create a new key instead",
  },
  key_expired: {
    status: 400,
    type: "invalid_request_error",
    message: "This key has expired and cannot be rolled; create a new key instead",
  },
  key_not_found: { status: 404, type: "not_found_error", message: "No such API key" },
  not_found: { status: 404, type: "invalid_request_error", message: "No such route" },
  method_not_allowed: {
    status: 405,
    type: "invalid_request_error",
    message: "This method is not allowed on this path",
  },
  payload_too_large: { status: 413, type: "invalid_request_error", message: "The request body is too large" },
  uri_too_long: {
    status: 414,
    type: "invalid_request_error",
    message: "The request path is too long for the API",
  },
  internal_error: {
    status: 500,
    type: "api_error",
    message: "An internal error occurred; retry later and quote the request id if it persists",
  },
  configuration_error: {
    status: 500,
    type: "api_error",
    message: "The gateway is misconfigured; the operator has been told",
  },
  bad_gateway: { status: 502, type: "api_error", message: "The API engine could not be reached; retry later" },
  service_unavailable: {
    status: 503,
    type: "api_error",
    message: "The gateway cannot verify API keys right now; retry later",
  },
  signature_keys_unavailable: {
    status: 503,
    type: "api_error",
    message: "The keys that verify this report could not be fetched; retry later",
  },
  gateway_timeout: { status: 504, type: "api_error", message: "The API engine did not answer in time; retry later" },
} as const satisfies Record<string, { status: number; type: string; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * The gateway's error. `message` overrides the public message only where it says
 * what to fix (validation); `detail` is for logs and never reaches a client.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly publicMessage: string;
  readonly detail: string | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, options: { message?: string; detail?: string; headers?: Record<string, string> } = {}) {
    super(options.detail ?? code);
    this.name = "GatewayError";
    this.code = code;
    this.publicMessage = options.message ?? ERRORS[code].message;
    this.detail = options.detail;
    this.headers = options.headers;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }
}

/** The envelope body for a code. */
export function errorBody(code: ErrorCode, message: string = ERRORS[code].message): string {
  return JSON.stringify({ error: { type: ERRORS[code].type, code, message } });
}

/** The byte-exact 401 body of SPEC §3. */
export const UNAUTHORIZED_BODY = errorBody("invalid_api_key");

/** The `WWW-Authenticate` challenge of SPEC §3. */
export const AUTH_CHALLENGE = 'Bearer realm="api.nixflex.com"';

/** Builds an error response with the envelope, the request id and any extra headers. */
export function errorResponse(
  code: ErrorCode,
  requestId: string,
  options: { message?: string; headers?: Record<string, string> } = {},
): Response {
  const headers = new Headers({
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "X-Request-Id": requestId,
  });
  if (code === "invalid_api_key") headers.set("WWW-Authenticate", AUTH_CHALLENGE);
  for (const [name, value] of Object.entries(options.headers ?? {})) headers.set(name, value);
  return new Response(errorBody(code, options.message), { status: ERRORS[code].status, headers });
}

/**
 * Settles an error thrown while serving a request: a `GatewayError` is logged (info below
 * 500, error from 500) and answered as itself; anything else is logged as `internal_error`
 * with the request id, and answered as a bare `internal_error` that never shows it.
 */
export function settleError(error: unknown, requestId: string, fields: LogFields = {}): GatewayError {
  if (error instanceof GatewayError) {
    log(error.status >= 500 ? "error" : "info", error.code, { request_id: requestId, ...fields, detail: error.detail });
    return error;
  }
  log("error", "internal_error", {
    request_id: requestId,
    ...fields,
    error: error instanceof Error ? error.name : typeof error,
    detail: error instanceof Error ? error.message.slice(0, 200) : undefined,
  });
  return new GatewayError("internal_error");
}

/** The HTTP answer to an error thrown while serving a request (`settleError`'s envelope). */
export function respondToError(error: unknown, requestId: string): Response {
  const settled = settleError(error, requestId);
  return errorResponse(settled.code, requestId, { message: settled.publicMessage, headers: settled.headers });
}
