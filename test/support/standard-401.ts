/**
 * The standard 401 of SPEC §3, spelled out once for both test projects (workerd and
 * end-to-end), rather than imported from src, so a change in the source cannot silently
 * change what the tests pin.
 */
import { expect } from "vitest";

export const STANDARD_401_BODY =
  '{"error":{"type":"authentication_error","code":"invalid_api_key","message":"Invalid or missing API key"}}';
export const AUTH_CHALLENGE = 'Bearer realm="api.nixflex.com"';
const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Asserts the standard 401: status, byte-exact body (none for a HEAD request), content
 * type, challenge, no-store and a request id. `body` is the text already read from it.
 */
export function expectStandard401(
  response: { status: number; headers: Headers },
  body: string,
  options: { head?: boolean } = {},
): void {
  expect(response.status).toBe(401);
  expect(body).toBe(options.head === true ? "" : STANDARD_401_BODY);
  expect(response.headers.get("content-type")).toBe("application/json");
  expect(response.headers.get("www-authenticate")).toBe(AUTH_CHALLENGE);
  expect(response.headers.get("cache-control")).toBe("no-store");
  expect(response.headers.get("x-request-id")).toMatch(REQUEST_ID);
}
