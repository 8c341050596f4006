/**
 * Builds the gateway: two paths for a request, one set of services, one error envelope.
 *
 * - Paths the gateway answers itself (`/healthz`, the JWKS, `/v1/keys…`) go to the Hono
 *   app of src/routes/router.ts.
 * - Every other path is forwarded to the engine by `forwardRequest` below, the same steps
 *   in the same order as the Hono chain (request id → services → authentication → forward
 *   → access log), written as plain calls. Hono's middleware chain, context and router cost
 *   a forwarded request ~40 µs of CPU (359 vs 319 µs in an interleaved A/B; the whole budget
 *   over a bare passthrough is ~25 µs; docs/BENCHMARKS.md, "What changed on the forwarding
 *   path"). The dispatch uses Hono's own `getPath`, and a test runs every kind of path
 *   through both (`dispatch.test.ts`).
 *
 * Dependencies (the engine's fetch, the clock, caches) are passed in so tests inject, not patch.
 */
import type { ExecutionContext, Hono } from "hono";
import { getPath } from "hono/utils/url";
import { authenticate, STORE_FAILED_OUTCOME } from "./auth/middleware.ts";
import type { VerifyPrimitives } from "./auth/verify-key.ts";
import type { AppEnv, Bindings, Principal, WaitUntil } from "./env.ts";
import { respondToError } from "./errors.ts";
import { logRequest } from "./log.ts";
import { forwardToEngine } from "./proxy/forward.ts";
import { createRouter, ownedByRouter } from "./routes/router.ts";
import { type ServiceDeps, type ServiceProvider, serviceProvider } from "./services.ts";

/** What tests (and the benchmark) may replace. Production uses the defaults. */
export interface AppDeps extends ServiceDeps {
  primitives?: VerifyPrimitives;
  /**
   * Send forwarded requests through the Hono app too. Off in production; the dispatch
   * test turns it on to show both paths answer alike.
   */
  forwardThroughRouter?: boolean;
  /** A provider shared with other entrypoints of the isolate (src/index.ts); default: one of its own from `deps`. */
  servicesFor?: ServiceProvider;
}

/** The Worker: `fetch` for the runtime, `routes` for the route-table tests. */
export interface Gateway {
  fetch(request: Request, env: Bindings, ctx: ExecutionContext): Promise<Response>;
  routes: Hono<AppEnv>["routes"];
}

/** Builds the gateway. */
export function createApp(deps: AppDeps = {}): Gateway {
  const servicesFor = deps.servicesFor ?? serviceProvider(deps);
  const router = createRouter(servicesFor, deps.primitives);
  const viaRouter = deps.forwardThroughRouter === true;

  /** Authenticates and forwards a request for a path the router does not own. */
  async function forwardRequest(request: Request, env: Bindings, ctx: WaitUntil): Promise<Response> {
    const started = Date.now();
    // Always ours: a client-sent X-Request-Id is never trusted (SPEC §4).
    const requestId = crypto.randomUUID();
    let outcome = "public";
    let principal: Principal | null = null;
    let response: Response;
    try {
      const services = await servicesFor(env);
      outcome = STORE_FAILED_OUTCOME;
      const auth = await authenticate(request, services, requestId, ctx, deps.primitives);
      outcome = auth.outcome;
      if (auth.principal === null) {
        response = auth.response;
      } else {
        principal = auth.principal;
        response = await forwardToEngine(request, services, principal, requestId, ctx);
      }
    } catch (error) {
      response = respondToError(error, requestId);
    }
    // Every answer above already carries X-Request-Id (errorResponse, fitResponseHeaders).
    // A HEAD answer has no body (RFC 9110 §9.3.2), as the router's answers do; the engine's has none already.
    if (request.method === "HEAD" && response.body !== null) response = new Response(null, response);
    logRequest({
      requestId,
      method: request.method,
      url: request.url,
      status: response.status,
      outcome,
      accountId: principal?.accountId,
      keyId: principal?.keyId,
      started,
    });
    return response;
  }

  return {
    routes: router.routes,
    fetch(request, env, ctx) {
      if (viaRouter || ownedByRouter(getPath(request))) return Promise.resolve(router.fetch(request, env, ctx));
      return forwardRequest(request, env, ctx);
    },
  };
}
