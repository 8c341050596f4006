/**
 * The Bearer middleware (SPEC §3): parse → verify → `c.set("principal")`. Every failure
 * is the same byte-exact 401; the reason goes to the access log only.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env.ts";
import { errorResponse } from "../errors.ts";
import { parseAuthorization } from "../keys/format.ts";
import { log } from "../log.ts";
import { verifyKey, type VerifyPrimitives, defaultPrimitives } from "./verify-key.ts";

/** The address failures are counted against; a request without one shares a bucket. */
function clientAddress(headers: Headers): string {
  return headers.get("cf-connecting-ip") ?? "unknown";
}

/** Requires a valid key pair; sets `principal` and schedules the `last_used_at` write. */
export function apiKeyAuth(primitives: VerifyPrimitives = defaultPrimitives): MiddlewareHandler<AppEnv> {
  return async function apiKeyAuth(c, next) {
    const { store, limiter } = c.get("services");
    const requestId = c.get("requestId");
    const client = clientAddress(c.req.raw.headers);

    const blocked = limiter.check(client);
    if (blocked.limited) {
      c.set("authOutcome", "rate_limited");
      return errorResponse("rate_limited", requestId, { headers: { "Retry-After": String(blocked.retryAfterS) } });
    }

    const parsed = parseAuthorization(c.req.raw.headers.get("authorization"));
    // Set before the store is consulted, so a KV failure (503) is logged as such.
    c.set("authOutcome", "key_store_unavailable");
    const verification = parsed.ok
      ? await verifyKey(store, parsed.credentials, primitives, (promise) => c.executionCtx.waitUntil(promise))
      : ({ ok: false, reason: parsed.problem } as const);

    if (!verification.ok) {
      c.set("authOutcome", verification.reason);
      const limited = await limiter.fail(client);
      if (limited.limited) {
        return errorResponse("rate_limited", requestId, { headers: { "Retry-After": String(limited.retryAfterS) } });
      }
      return errorResponse("invalid_api_key", requestId);
    }

    c.set("authOutcome", "authenticated");
    c.set("principal", { accountId: verification.accountId, keyId: verification.keyId });
    const write = store.recordUse(verification.keyId);
    if (write !== null) {
      const keyId = verification.keyId;
      c.executionCtx.waitUntil(
        write.catch(() => log("warn", "last_used_write_failed", { request_id: requestId, key_id: keyId })),
      );
    }
    await next();
  };
}
