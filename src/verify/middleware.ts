/**
 * The Hono middleware form of the verifier: sets `c.var.identity` or answers 401.
 */
import type { MiddlewareHandler } from "hono";
import { createIdentityVerifier, type Identity, type VerifierOptions } from "./index.ts";
import { IdentityError } from "./errors.ts";

export type IdentityVariables = { identity: Identity };

/** Requires a valid identity header on every request it guards. */
export function identityMiddleware(options: VerifierOptions): MiddlewareHandler<{ Variables: IdentityVariables }> {
  const verify = createIdentityVerifier(options);
  return async function nixflexIdentity(c, next) {
    try {
      c.set("identity", await verify(c.req.raw));
    } catch (error) {
      if (!(error instanceof IdentityError)) throw error;
      const status = error.code === "ERR_IDENTITY_KEYS_UNAVAILABLE" ? 503 : 401;
      return c.json({ error: { type: "authentication_error", code: error.code, message: error.message } }, status);
    }
    await next();
  };
}
