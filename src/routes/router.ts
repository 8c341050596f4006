/**
 * The Hono app: the public paths (SPEC §6, leak reports included), the key routes (SPEC §5) and the one error
 * handler. Requests for any other path take the forwarding path of src/app.ts without
 * coming here. The catch-all below forwards what reaches it anyway: nothing in production
 * (every path `ownedByRouter` has a route), every forwarded request in a gateway built with
 * `forwardThroughRouter` (the dispatch test and the bench's ladder).
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
import { GITHUB_REPORT_PATH, LEAK_REPORT_PATH, registerLeakRoutes } from "./leaks.ts";
import { registerHealthz, registerJwks } from "./public.ts";

const STATUS_CODES: Record<number, ErrorCode> = {
  400: "invalid_parameters",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
};

/** The single error handler: known errors answer their envelope, anything else a bare 500. */
const handleError: ErrorHandler<AppEnv> = (error, c) => {
  const requestId = c.get("requestId") ?? crypto.randomUUID();
  if (error instanceof HTTPException && STATUS_CODES[error.status] !== undefined) {
    return errorResponse(STATUS_CODES[error.status]!, requestId);
  }
  return respondToError(error, requestId);
};

/** Answers 405 with the allowed methods. */
function methodNotAllowed(allow: string) {
  return (c: Context<AppEnv>) => errorResponse("method_not_allowed", c.get("requestId"), { headers: { Allow: allow } });
}

/**
 * The paths this app owns, as Hono's router sees them (after its percent-decoding). The
 * router is Hono's tiny preset (PatternRouter: the smallest bundle, docs/BENCHMARKS.md), which
 * also matches a route with one trailing slash, so `/healthz/` is owned as well.
 */
export function ownedByRouter(path: string): boolean {
  const route = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
  return (
    route === "/healthz" ||
    route === "/.well-known/jwks.json" ||
    route === "/v1/keys" ||
    route.startsWith("/v1/keys/") ||
    route === GITHUB_REPORT_PATH ||
    route === LEAK_REPORT_PATH
  );
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

  app.use(apiKeyAuth(primitives));
  registerKeyRoutes(app);
  app.all("*", function forwardToEngine(c) {
    return forward(c.req.raw, c.get("services"), c.get("principal"), c.get("requestId"), c.executionCtx);
  });

  app.notFound((c) => errorResponse("not_found", c.get("requestId")));
  app.onError(handleError);
  return app;
}
