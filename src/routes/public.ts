/**
 * Public paths (SPEC §6): answered without a key.
 */
import type { Hono } from "hono";
import type { AppEnv } from "../env.ts";

/** `GET /healthz`: liveness only; touches no dependency. */
export function registerHealthz(app: Hono<AppEnv>): void {
  app.get("/healthz", (c) => c.json({ status: "ok" }, 200, { "Cache-Control": "no-store" }));
}

/** `GET /.well-known/jwks.json`: every configured signing key's public half. */
export function registerJwks(app: Hono<AppEnv>): void {
  app.get("/.well-known/jwks.json", (c) =>
    c.body(c.var.services.config.signing.jwksBody, 200, {
      "Content-Type": "application/json",
      "Cache-Control": "public, max-age=300",
    }),
  );
}
