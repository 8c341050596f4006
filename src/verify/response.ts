/**
 * The engine's answer to an identity failure (SPEC §9): exactly the gateway's 401 of SPEC §3,
 * so a client that sends its key to the engine's internal hostname learns nothing the gateway
 * would not tell it, and a 503 in the gateway's envelope when the verifier cannot decide.
 * The reason (the error code) is for the engine's own log, never for the client.
 */
import type { IdentityError } from "./errors.ts";

/** The byte-exact 401 body of SPEC §3 (pinned equal to the gateway's own by the tests). */
export const UNAUTHORIZED_BODY =
  '{"error":{"type":"authentication_error","code":"invalid_api_key","message":"Invalid or missing API key"}}';

/** The `WWW-Authenticate` challenge of SPEC §3. */
export const AUTH_CHALLENGE = 'Bearer realm="api.nixflex.com"';

/** The 503 body: the gateway's envelope (SPEC §7) for "retry later". */
export const UNAVAILABLE_BODY =
  '{"error":{"type":"api_error","code":"service_unavailable","message":"The request cannot be verified right now; retry later"}}';

/** An HTTP answer in a form every server API can write (node:http, Bun, Deno, Workers). */
export interface IdentityFailureAnswer {
  status: 401 | 503;
  headers: Record<string, string>;
  body: string;
}

/** The standard answer to `error`: the SPEC §3 401, or the 503 when keys or replay store are unavailable. */
export function identityFailure(error: IdentityError): IdentityFailureAnswer {
  if (error.status === 503) {
    return {
      status: 503,
      headers: { "Content-Type": "application/json", "Cache-Control": "no-store", "Retry-After": "5" },
      body: UNAVAILABLE_BODY,
    };
  }
  return {
    status: 401,
    headers: { "Content-Type": "application/json", "WWW-Authenticate": AUTH_CHALLENGE, "Cache-Control": "no-store" },
    body: UNAUTHORIZED_BODY,
  };
}

/** {@link identityFailure} as a fetch-API `Response` (Workers, Deno, Bun, Hono). */
export function identityFailureResponse(error: IdentityError): Response {
  const { status, headers, body } = identityFailure(error);
  return new Response(body, { status, headers });
}
