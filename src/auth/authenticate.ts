/**
 * Authentication of one request (SPEC §3): parse → verify → on failure, count it against
 * the client's address. Every failure is the same byte-exact 401 (a 429 past the failure
 * limit); the reason goes to the access log only. A valid key is checked and served first,
 * whatever its address's failures: the limit costs the one who fails, not its neighbours.
 * `apiKeyAuth` (middleware.ts) puts it in front of the key routes and the forward to the engine.
 */
import type { Principal, Services, WaitUntil } from "../env.ts";
import { errorResponse, GatewayError, respondToError } from "../errors.ts";
import { type CredentialsProblem, parseAuthorization } from "../keys/format.ts";
import { log } from "../log.ts";
import { clientAddress } from "./rate-limit.ts";
import { defaultPrimitives, type Verification, verifyKey, type VerifyPrimitives } from "./verify-key.ts";

/** What authentication decided: a principal, or the answer to send instead. */
export type Authentication =
  | { principal: Principal; outcome: "authenticated" }
  | { principal: null; outcome: string; response: Response };

/**
 * Authenticates `request`. Every expected outcome is a value, a key store that cannot
 * answer included (503, `key_store_unavailable`); anything thrown is a bug. On success
 * schedules the `last_used_at` write with `ctx.waitUntil`.
 */
export async function authenticate(
  request: Request,
  services: Services,
  requestId: string,
  ctx: WaitUntil,
  primitives: VerifyPrimitives = defaultPrimitives,
): Promise<Authentication> {
  const { store, limiter } = services;
  const headers = request.headers;
  const parsed = parseAuthorization(headers.get("authorization"));
  let verification: Verification | { ok: false; reason: CredentialsProblem };
  try {
    verification = parsed.ok
      ? await verifyKey(store, parsed.credentials, primitives, (promise) => ctx.waitUntil(promise))
      : { ok: false, reason: parsed.problem };
  } catch (error) {
    // Fail closed (SPEC §4): the store could not answer, so nothing is forwarded.
    if (!(error instanceof GatewayError) || error.code !== "service_unavailable") throw error;
    return { principal: null, outcome: "key_store_unavailable", response: respondToError(error, requestId) };
  }

  if (!verification.ok) {
    const limited = await limiter.fail(clientAddress(headers));
    const response = limited.limited
      ? rateLimited(requestId, limited.retryAfterS)
      : errorResponse("invalid_api_key", requestId);
    return { principal: null, outcome: verification.reason, response };
  }

  const { keyId } = verification;
  const write = store.recordUse(keyId);
  if (write !== null) {
    ctx.waitUntil(write.catch(() => log("warn", "last_used_write_failed", { request_id: requestId, key_id: keyId })));
  }
  return { principal: { accountId: verification.accountId, keyId }, outcome: "authenticated" };
}

const rateLimited = (requestId: string, retryAfterS: number) =>
  errorResponse("rate_limited", requestId, { headers: { "Retry-After": String(retryAfterS) } });
