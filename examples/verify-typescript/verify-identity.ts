/**
 * The shipped verifier (`nixflex-gateway/verify`) behind the same command line as the other
 * recipes, so scripts/check-recipes.sh holds every language to the reference behaviour:
 *
 *   node examples/verify-typescript/verify-identity.ts --jwks jwks.json --method POST --path /v1/agents < token
 *
 * An engine does not read a JWKS file: it passes `jwksUrl` and the verifier fetches, caches
 * and refetches on an unknown kid (docs/engine-integration.md).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLocalJWKSet, type JSONWebKeySet } from "jose";
import { createIdentityVerifier, IdentityError } from "../../src/verify/index.ts";

const { values } = parseArgs({
  options: {
    jwks: { type: "string" },
    method: { type: "string" },
    path: { type: "string" },
    issuer: { type: "string", default: "https://api.nixflex.com" },
    audience: { type: "string", default: "nixflex-engine" },
    token: { type: "string" },
  },
});
if (values.jwks === undefined || values.method === undefined || values.path === undefined) {
  console.error("usage: verify-identity.ts --jwks FILE --method M --path P [--issuer I] [--audience A] [--token T]");
  process.exit(2);
}

const jwks = JSON.parse(readFileSync(values.jwks, "utf8")) as JSONWebKeySet;
const verify = createIdentityVerifier({
  keys: createLocalJWKSet(jwks),
  issuer: values.issuer,
  audience: values.audience,
});
const token = values.token ?? readFileSync(0, "utf8").trim();

try {
  const identity = await verify.verifyFacts({ method: values.method, path: values.path, token });
  console.log(
    JSON.stringify({ account_id: identity.accountId, key_id: identity.keyId, request_id: identity.requestId }),
  );
} catch (error) {
  if (!(error instanceof IdentityError)) throw error;
  console.error(`rejected: ${error.code}: ${error.message}`);
  process.exit(1);
}
