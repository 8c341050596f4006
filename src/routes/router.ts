/**
 * The Hono app, the gateway's one request pipeline: request id → access log → services →
 * the public paths (SPEC §6: health, JWKS, leak reports) → the operator API (SPEC §5, its own
 * authentication) → authentication → the key routes (SPEC §5) → the catch-all, which forwards
 * every other path to the engine (SPEC §4); one error handler.
 */
import type { Context, ErrorHandler } from "hono";
import { Hono } from "hono/tiny";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { apiKeyAuth } from "../auth/middleware.ts";
import type { VerifyPrimitives } from "../auth/verify-key.ts";
import type { AppEnv, Bindings, Services } from "../env.ts";
import { type ErrorCode, errorResponse, respondToError } from "../errors.ts";
import { logRequest } from "../log.ts";
import { forwardToEngine as forward } from "../proxy/forward.ts";
import { registerKeyRoutes } from "./keys.ts";
import { registerLeakRoutes } from "./leaks.ts";
import { registerOperatorRoutes } from "./operator.ts";
import { registerHealthz, registerJwks } from "./public.ts";

/** The error code answered for each status of an `HTTPException` Hono itself throws. */
const HTTP_EXCEPTION_CODES: Record<number, ErrorCode> = {
  400: "invalid_parameters",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
};

/** The single error handler: known errors answer their envelope, anything else a bare 500. */
const handleError: ErrorHandler<AppEnv> = (error, c) => {
  const requestId = c.get("requestId") ?? crypto.randomUUID();
  if (error instanceof HTTPException && HTTP_EXCEPTION_CODES[error.status] !== undefined) {
    return errorResponse(HTTP_EXCEPTION_CODES[error.status]!, requestId);
  }
  return respondToError(error, requestId);
};

/** Answers 405 with the allowed methods. */
function methodNotAllowed(allow: string) {
  return (c: Context<AppEnv>) => errorResponse("method_not_allowed", c.get("requestId"), { headers: { Allow: allow } });
}

/** Builds the Hono app on the shared services. */
export function createRouter(
  servicesFor: (env: Bindings) => Services | Promise<Services>,
  primitives: VerifyPrimitives | undefined,
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  // The id is always ours: a client-sent X-Request-Id is never trusted (SPEC §4).
  app.use(requestId({ headerName: "" }));

  app.use(async function accessLog(c, next) {
    const started = Date.now();
    await next();
    const requestId = c.get("requestId");
    c.res.headers.set("X-Request-Id", requestId);
    const principal = c.get("principal");
    logRequest({
      requestId,
      method: c.req.method,
      url: c.req.url,
      status: c.res.status,
      outcome: c.get("authOutcome") ?? "public",
      accountId: principal?.accountId,
      keyId: principal?.keyId,
      started,
    });
  });

  app.use(async function services(c, next) {
    c.set("services", await servicesFor(c.env));
    await next();
  });

  registerHealthz(app);
  registerJwks(app);
  app.all("/healthz", methodNotAllowed("GET, HEAD"));
  app.all("/.well-known/jwks.json", methodNotAllowed("GET, HEAD"));
  registerLeakRoutes(app);

  // Before API-key authentication: operator calls carry no API key, and no API key gets past its gate.
  registerOperatorRoutes(app);
  app.use(apiKeyAuth(primitives));
  registerKeyRoutes(app);
  app.all("*", function forwardToEngine(c) {
    return forward(c.req.raw, c.get("services"), c.get("principal"), c.get("requestId"), c.executionCtx);
  });

  app.notFound((c) => errorResponse("not_found", c.get("requestId")));
  app.onError(handleError);
  return app;
}
