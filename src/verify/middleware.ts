/**
 * The Hono middleware form of the verifier (`nixflex-gateway/verify/hono`): sets
 * `c.var.identity`, or answers the standard 401 of SPEC §3 (503 when the JWKS or the replay
 * store is unavailable). The reason goes to `onFailure`, never to the client. hono is an
 * optional peer: this module uses only its types, the answer is a plain `Response`.
 */
import type { MiddlewareHandler } from "hono";
import { IdentityError } from "./errors.ts";
import { createIdentityVerifier, type Identity, type VerifierOptions } from "./index.ts";
import { identityFailureResponse } from "./response.ts";

export type IdentityVariables = { identity: Identity };

export interface IdentityMiddlewareOptions extends VerifierOptions {
  /**
   * Told why a request was refused (log `error.code`, never the token: it is a credential
   * while it lives). Default: one JSON line on the console with the code, method and path.
   */
  onFailure?: (error: IdentityError, request: Request) => void;
}

function logFailure(error: IdentityError, request: Request): void {
  console.warn(
    JSON.stringify({
      event: "identity_refused",
      code: error.code,
      status: error.status,
      method: request.method,
      path: new URL(request.url).pathname,
    }),
  );
}

/** Requires a valid identity header on every request it guards. Build it once per app. */
export function identityMiddleware(
  options: IdentityMiddlewareOptions,
): MiddlewareHandler<{ Variables: IdentityVariables }> {
  const verify = createIdentityVerifier(options);
  const onFailure = options.onFailure ?? logFailure;
  return async function nixflexIdentity(c, next) {
    try {
      c.set("identity", await verify(c.req.raw));
    } catch (error) {
      if (!(error instanceof IdentityError)) throw error;
      onFailure(error, c.req.raw);
      return identityFailureResponse(error);
    }
    await next();
  };
}
