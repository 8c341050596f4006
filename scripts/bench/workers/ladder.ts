/**
 * The cost ladder: a passthrough Worker that adds the forwarding path's pieces one rung at
 * a time (RUNG binding, cumulative), built from the gateway's own modules in the order the
 * gateway runs them. Measured side by side with the real gateway, it shows what each piece
 * costs in workerd in context — which microbenchmarks in a tight loop understate. Two
 * probes are not cumulative: the bare Ed25519 signature (WebCrypto, no jose) and the
 * access log line, each added alone to the passthrough.
 */
import { parseSigningKeys, type SigningKeySet } from "../../../src/identity/keys.ts";
import { signIdentity } from "../../../src/identity/sign.ts";
import { parseAuthorization } from "../../../src/keys/format.ts";
import { digestSecret, timingSafeEqual } from "../../../src/keys/hash.ts";
import { logRequest } from "../../../src/log.ts";
import { engineRequestHeaders, fitResponseHeaders } from "../../../src/proxy/headers.ts";
import { PROBES, RUNGS } from "../ladder-rungs.ts";

interface Env {
  ORIGIN: string;
  RUNG: string;
  IDENTITY_SIGNING_KEYS: string;
}

const STORED = new Uint8Array(32);
const CLAIMS_BYTES = new Uint8Array(300);
let keys: SigningKeySet | undefined;
let key: CryptoKey | undefined;

async function probe(name: string, request: Request, env: Env, url: URL): Promise<Response> {
  const started = Date.now();
  if (name === "signature-alone-webcrypto") {
    keys ??= parseSigningKeys(env.IDENTITY_SIGNING_KEYS);
    key ??= await keys.signingKey();
    await crypto.subtle.sign("Ed25519", key, CLAIMS_BYTES);
  }
  const response = await fetch(env.ORIGIN + url.pathname + url.search, request);
  if (name === "access-log-alone") log(request, response.status, crypto.randomUUID(), started);
  return response;
}

function log(request: Request, status: number, requestId: string, started: number): void {
  logRequest({
    requestId,
    method: request.method,
    url: request.url,
    status,
    outcome: "authenticated",
    accountId: "acct_bench",
    keyId: "nxf_0123456789abcdef0123456789abcdef",
    started,
  });
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if ((PROBES as readonly string[]).includes(env.RUNG)) return probe(env.RUNG, request, env, url);
    const rung = RUNGS.indexOf(env.RUNG as (typeof RUNGS)[number]);
    if (rung <= 0) return fetch(env.ORIGIN + url.pathname + url.search, request);
    const at = (name: (typeof RUNGS)[number]) => rung >= RUNGS.indexOf(name);

    const started = Date.now();
    const requestId = crypto.randomUUID();
    if (at("key-check")) {
      const parsed = parseAuthorization(request.headers.get("authorization"));
      if (parsed.ok) timingSafeEqual(await digestSecret(parsed.credentials.secret), STORED);
    }
    let identity = "";
    if (at("signature")) {
      keys ??= parseSigningKeys(env.IDENTITY_SIGNING_KEYS);
      identity = await signIdentity(keys, {
        issuer: "https://api.nixflex.com",
        audience: "nixflex-engine",
        accountId: "acct_bench",
        keyId: "nxf_0123456789abcdef0123456789abcdef",
        requestId,
        method: request.method,
        path: url.pathname,
        now: Math.floor(Date.now() / 1000),
      });
    }
    const init: RequestInit & { duplex?: "half" } = {
      method: request.method,
      headers: engineRequestHeaders(request.headers, {
        identity,
        requestId,
        clientAddress: request.headers.get("cf-connecting-ip"),
        publicHost: url.host,
        publicProto: "https",
      }),
      body: request.body,
      redirect: "manual",
    };
    if (request.body !== null) init.duplex = "half";
    const engine = fetch(new Request(env.ORIGIN + url.pathname + url.search, init));
    const response = at("deadline")
      ? await Promise.race([engine, scheduler.wait(30_000).then(() => null)])
      : await engine;
    if (response === null) return new Response("timeout", { status: 504 });
    let answer = response;
    if (at("response-headers")) {
      answer = new Response(response.body, response);
      fitResponseHeaders(answer.headers, {
        requestId,
        engineOrigin: env.ORIGIN,
        engineHostname: "127.0.0.1",
        publicOrigin: url.origin,
      });
    }
    if (at("access-log")) log(request, answer.status, requestId, started);
    return answer;
  },
};
