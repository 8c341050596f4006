/**
 * Builds the gateway: middleware order, routes, the one error handler. Dependencies
 * (the engine's fetch, the clock, caches) are passed in so tests inject, not patch.
 */
import { Hono, type Context, type ErrorHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { apiKeyAuth } from "./auth/middleware.ts";
import { FailureLimiter } from "./auth/rate-limit.ts";
import type { VerifyPrimitives } from "./auth/verify-key.ts";
import { loadConfig, type AppEnv, type Bindings, type Services } from "./env.ts";
import { errorResponse, GatewayError, type ErrorCode } from "./errors.ts";
import type { LruCache } from "./keys/cache.ts";
import { KeyStore, type StoreCaches } from "./keys/store.ts";
import { log } from "./log.ts";
import { forwardToEngine } from "./proxy/forward.ts";
import { registerHealthz, registerJwks } from "./routes/public.ts";
import { registerKeyRoutes } from "./routes/keys.ts";

/** What tests (and the benchmark) may replace. Production uses the defaults. */
export interface AppDeps {
  /** How the engine is reached. Default: the runtime's `fetch`. */
  engineFetch?: typeof fetch;
  /** Milliseconds since the epoch. */
  now?: () => number;
  caches?: StoreCaches;
  blocked?: LruCache<number>;
  primitives?: VerifyPrimitives;
  kvTimeoutMs?: number;
}

const STATUS_CODES: Record<number, ErrorCode> = {
  400: "invalid_parameters",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
};

/** The single error handler: known errors answer their envelope, anything else a bare 500. */
const handleError: ErrorHandler<AppEnv> = (error, c) => {
  const requestId = c.var.requestId ?? crypto.randomUUID();
  if (error instanceof GatewayError) {
    const level = error.status >= 500 ? "error" : "info";
    log(level, error.code, { request_id: requestId, detail: error.detail });
    return errorResponse(error.code, requestId, { message: error.publicMessage, headers: error.headers });
  }
  if (error instanceof HTTPException && STATUS_CODES[error.status] !== undefined) {
    return errorResponse(STATUS_CODES[error.status]!, requestId);
  }
  log("error", "internal_error", {
    request_id: requestId,
    error: error instanceof Error ? error.name : typeof error,
    detail: error instanceof Error ? error.message.slice(0, 200) : undefined,
  });
  return errorResponse("internal_error", requestId);
};

/** Answers 405 with the allowed methods. */
export function methodNotAllowed(allow: string) {
  return (c: Context<AppEnv>) => errorResponse("method_not_allowed", c.var.requestId, { headers: { Allow: allow } });
}

/** Builds the gateway app. */
export function createApp(deps: AppDeps = {}): Hono<AppEnv> {
  const services = new WeakMap<Bindings, Services>();
  const servicesFor = (env: Bindings): Services => {
    let found = services.get(env);
    if (found === undefined) {
      const config = loadConfig(env);
      found = {
        config,
        store: new KeyStore(env.API_KEYS, { now: deps.now, caches: deps.caches, timeoutMs: deps.kvTimeoutMs }),
        limiter: new FailureLimiter(env.AUTH_FAILURE_LIMITER, { now: deps.now, blocked: deps.blocked }),
        engineFetch: deps.engineFetch ?? ((input, init) => fetch(input, init)),
      };
      services.set(env, found);
    }
    return found;
  };

  const app = new Hono<AppEnv>();

  // The id is always ours: a client-sent X-Request-Id is never trusted (SPEC §4).
  app.use(requestId({ headerName: "" }));

  app.use(async function accessLog(c, next) {
    const started = Date.now();
    await next();
    // c.get, not c.var: Hono builds a fresh object of every variable on each c.var access.
    const requestId = c.get("requestId");
    c.res.headers.set("X-Request-Id", requestId);
    const principal = c.get("principal");
    log("info", "request", {
      request_id: requestId,
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      status: c.res.status,
      outcome: c.get("authOutcome") ?? "public",
      account_id: principal?.accountId,
      key_id: principal?.keyId,
      duration_ms: Date.now() - started,
    });
  });

  app.use(async function services(c, next) {
    const found = servicesFor(c.env);
    if (!found.config.signing.ready) await found.config.signing.check();
    c.set("services", found);
    await next();
  });

  registerHealthz(app);
  registerJwks(app);
  app.all("/healthz", methodNotAllowed("GET, HEAD"));
  app.all("/.well-known/jwks.json", methodNotAllowed("GET, HEAD"));

  app.use(apiKeyAuth(deps.primitives));
  registerKeyRoutes(app);
  app.all("*", forwardToEngine);

  app.notFound((c) => errorResponse("not_found", c.var.requestId));
  app.onError(handleError);
  return app;
}
