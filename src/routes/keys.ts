/**
 * Key management (SPEC §5), answered at the edge. The gateway owns `/v1/keys` and
 * everything under it: nothing there is ever forwarded to the engine.
 */
import type { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { errorResponse } from "../errors.ts";

/** Registers every key-management route. */
export function registerKeyRoutes(app: Hono<AppEnv>): void {
  app.all("/v1/keys", (c) => errorResponse("not_found", c.var.requestId));
  app.all("/v1/keys/*", (c) => errorResponse("not_found", c.var.requestId));
}
