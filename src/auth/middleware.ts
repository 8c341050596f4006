/**
 * `apiKeyAuth`: authentication (authenticate.ts) as the Hono middleware in front of the key
 * routes and the forward to the engine. It records the outcome for the access log.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env.ts";
import { type Authentication, authenticate } from "./authenticate.ts";
import { defaultPrimitives, type VerifyPrimitives } from "./verify-key.ts";

/** The Hono form: sets `principal` and `authOutcome`, or answers the failure. */
export function apiKeyAuth(primitives: VerifyPrimitives = defaultPrimitives): MiddlewareHandler<AppEnv> {
  return async function apiKeyAuth(c, next) {
    let auth: Authentication;
    try {
      auth = await authenticate(c.req.raw, c.get("services"), c.get("requestId"), c.executionCtx, primitives);
    } catch (error) {
      // A bug, not a verdict on the key: logged as such, answered by onError with a 500.
      c.set("authOutcome", "internal_error");
      throw error;
    }
    c.set("authOutcome", auth.outcome);
    if (auth.principal === null) return auth.response;
    c.set("principal", auth.principal);
    await next();
  };
}
