/**
 * Builds the gateway: one Hono app (src/routes/router.ts) for every request — the public
 * paths, key management and, through its catch-all, authentication and the forward to the
 * engine — on one set of per-isolate services and one error envelope.
 *
 * Dependencies (the engine's fetch, the clock, caches) are passed in so tests inject, not patch.
 */
import type { ExecutionContext, Hono } from "hono";
import type { VerifyPrimitives } from "./auth/verify-key.ts";
import type { AppEnv, Bindings } from "./env.ts";
import { createRouter } from "./routes/router.ts";
import { type ServiceDeps, type ServiceProvider, serviceProvider } from "./services.ts";

/** What tests (and the benchmark) may replace. Production uses the defaults. */
export interface AppDeps extends ServiceDeps {
  primitives?: VerifyPrimitives;
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
  const router = createRouter(deps.servicesFor ?? serviceProvider(deps), deps.primitives);
  return {
    routes: router.routes,
    fetch: (request, env, ctx) => Promise.resolve(router.fetch(request, env, ctx)),
  };
}
