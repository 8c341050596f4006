/**
 * A minimal plain-Node engine (node:http) that trusts the gateway only through the shipped
 * verifier, `nixflex-gateway/verify` — the same program as the other recipes, so
 * scripts/check-recipes.sh holds every language to the reference behaviour:
 *
 *   node examples/verify-typescript/verify-identity.ts --jwks jwks.json [--port 0]
 *
 * 200 {"account_id","key_id","request_id"} for a valid, unused token; otherwise the gateway's
 * own 401 (SPEC §3), the reason on stderr only. First stdout line: `listening http://127.0.0.1:PORT`.
 * A real engine passes `jwksUrl` instead of a file: the verifier fetches, caches and refetches
 * on an unknown kid (docs/engine-integration.md).
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { createLocalJWKSet, type JSONWebKeySet } from "jose";
import { createIdentityVerifier, IdentityError, identityFailure, nodeRequestFacts } from "../../src/verify/index.ts";

const { values } = parseArgs({
  options: {
    jwks: { type: "string" },
    port: { type: "string", default: "0" },
    issuer: { type: "string", default: "https://api.nixflex.com" },
    audience: { type: "string", default: "nixflex-engine" },
  },
});
if (values.jwks === undefined) {
  console.error("usage: verify-identity.ts --jwks FILE [--port N] [--issuer I] [--audience A]");
  process.exit(2);
}

// Built once per process: it holds the key cache and the jti replay guard.
const verify = createIdentityVerifier({
  keys: createLocalJWKSet(JSON.parse(readFileSync(values.jwks, "utf8")) as JSONWebKeySet),
  issuer: values.issuer,
  audience: values.audience,
});

const server = createServer(async (req, res) => {
  try {
    // The raw request target, as the gateway signed it (`//`, percent-encoding, absolute-form).
    const identity = await verify.verifyFacts(nodeRequestFacts(req));
    const body = JSON.stringify({
      account_id: identity.accountId,
      key_id: identity.keyId,
      request_id: identity.requestId,
    });
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-store" }).end(body);
  } catch (error) {
    if (!(error instanceof IdentityError)) throw error;
    console.error(`rejected: ${error.code}: ${error.message}`);
    const answer = identityFailure(error);
    res.writeHead(answer.status, answer.headers).end(answer.body);
  }
});
server.listen(Number(values.port), "127.0.0.1", () => {
  const address = server.address();
  console.log(`listening http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`);
});
