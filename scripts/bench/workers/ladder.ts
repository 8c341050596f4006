/**
 * The cost ladder: a passthrough Worker that adds the gateway's own request functions one
 * rung at a time (RUNG binding, cumulative; see ladder-rungs.ts), in the order the gateway
 * calls them. It imports them from src/ and copies none, so what it measures is what the
 * gateway runs. Measured side by side with the real gateway, it shows what each piece
 * costs in workerd in context — which microbenchmarks in a tight loop understate. Probes
 * are not cumulative: one piece added alone to the passthrough, including the bare
 * Ed25519 signature (WebCrypto, no jose) as the floor under the identity token.
 */
import { authenticate } from "../../../src/auth/authenticate.ts";
import type { Bindings, Principal, Services } from "../../../src/env.ts";
import { signIdentity } from "../../../src/identity/sign.ts";
import { logRequest } from "../../../src/log.ts";
import { forwardToEngine } from "../../../src/proxy/forward.ts";
import { engineRequestHeaders, fitResponseHeaders } from "../../../src/proxy/headers.ts";
import { serviceProvider } from "../../../src/services.ts";
import { RUNGS } from "../ladder-rungs.ts";

// The gateway's other exports (a Durable Object class its bindings name) come along.
export * from "../../../src/index.ts";

type Env = Bindings & { RUNG: string };
type Ctx = { waitUntil(promise: Promise<unknown>): void };

const servicesFor = serviceProvider({});
/** For the rungs below `authenticate`: the principal a key check would have found. */
const PRINCIPAL: Principal = { accountId: "acct_bench", keyId: "nxf_0123456789abcdef0123456789abcdef" };
const CLAIMS_BYTES = new Uint8Array(300);
let rawKey: CryptoKey | undefined;

const passthrough = (request: Request, env: Env, url: URL) =>
  fetch(`${env.ENGINE_URL}${url.pathname}${url.search}`, request);

/** The access line the gateway writes, for `principal` and `status`. */
function accessLine(request: Request, status: number, requestId: string, started: number, principal: Principal | null) {
  logRequest({
    ...{ requestId, method: request.method, url: request.url, status, started },
    outcome: principal === null ? "invalid_api_key" : "authenticated",
    accountId: principal?.accountId,
    keyId: principal?.keyId,
  });
}

async function probe(name: string, request: Request, env: Env, services: Services, url: URL): Promise<Response> {
  const started = Date.now();
  const requestId = crypto.randomUUID();
  const context = {
    requestId,
    engineOrigin: services.config.engineOrigin,
    engineHostname: services.config.engineHostname,
    publicOrigin: url.origin,
  };
  if (name === "signature-alone") {
    const claims = { ...PRINCIPAL, requestId, method: request.method, path: url.pathname };
    await signIdentity(services.config.signing, {
      ...claims,
      issuer: services.config.issuer,
      audience: services.config.audience,
      now: Math.floor(Date.now() / 1000),
    });
  }
  if (name === "signature-alone-webcrypto") {
    rawKey ??= await services.config.signing.signingKey();
    await crypto.subtle.sign("Ed25519", rawKey, CLAIMS_BYTES);
  }
  if (name === "request-headers-alone") {
    const headers = engineRequestHeaders(request.headers, {
      identity: "",
      requestId,
      clientAddress: request.headers.get("cf-connecting-ip"),
      publicHost: url.host,
      publicProto: "https",
    });
    return fetch(`${env.ENGINE_URL}${url.pathname}${url.search}`, {
      method: request.method,
      headers,
      body: request.body,
    });
  }
  const response = await passthrough(request, env, url);
  if (name === "response-headers-alone") {
    const answer = new Response(response.body, response);
    fitResponseHeaders(answer.headers, context);
    return answer;
  }
  if (name === "access-log-alone") accessLine(request, response.status, requestId, started, PRINCIPAL);
  return response;
}

export default {
  async fetch(request: Request, env: Env, ctx: Ctx): Promise<Response> {
    const url = new URL(request.url);
    const rung = RUNGS.indexOf(env.RUNG as (typeof RUNGS)[number]);
    if (rung === 0) return passthrough(request, env, url);
    const services = await servicesFor(env);
    if (rung === -1) return probe(env.RUNG, request, env, services, url);
    const at = (name: (typeof RUNGS)[number]) => rung >= RUNGS.indexOf(name);

    const started = Date.now();
    const requestId = crypto.randomUUID();
    let principal: Principal | null = PRINCIPAL;
    let response: Response | undefined;
    if (at("authenticate")) {
      const auth = await authenticate(request, services, requestId, ctx);
      principal = auth.principal;
      if (auth.principal === null) response = auth.response;
    }
    response ??= await forwardToEngine(request, services, principal!, requestId, ctx);
    if (at("access-log")) accessLine(request, response.status, requestId, started, principal);
    return response;
  },
};
