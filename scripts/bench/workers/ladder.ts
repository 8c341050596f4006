/**
 * The cost ladder: a passthrough Worker that adds the gateway's pieces one rung at a
 * time (RUNG binding, cumulative), built from the gateway's own modules. Measured side by
 * side with the real gateway, it shows what each piece of the hot path costs in workerd
 * in context — which microbenchmarks in a tight loop understate.
 */
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { parseSigningKeys } from "../../../src/identity/keys.ts";
import { signIdentity } from "../../../src/identity/sign.ts";
import { parseAuthorization } from "../../../src/keys/format.ts";
import { digestSecret, timingSafeEqual } from "../../../src/keys/hash.ts";
import { log } from "../../../src/log.ts";
import { clientResponseHeaders, engineRequestHeaders } from "../../../src/proxy/headers.ts";

interface Env {
  ORIGIN: string;
  RUNG: string;
  IDENTITY_SIGNING_KEYS: string;
}

/** The rungs, in order; each includes every one before it. */
export const RUNGS = ["passthrough", "hono", "request-headers", "timeout", "response-headers", "auth", "sign", "log"];

const STORED = new Uint8Array(32);

function ladder(rung: number) {
  const app = new Hono<{ Bindings: Env; Variables: { requestId: string } }>();
  app.use(requestId({ headerName: "" }));
  app.use(async (c, next) => {
    await next();
    c.res.headers.set("x-request-id", c.get("requestId"));
    if (rung >= 7) {
      log("info", "request", {
        request_id: c.get("requestId"),
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        status: c.res.status,
        outcome: "authenticated",
        account_id: "acct_bench",
        key_id: "nxf_0123456789abcdef0123456789abcdef",
        duration_ms: 0,
      });
    }
  });
  app.all("*", async (c) => {
    const raw = c.req.raw;
    const url = new URL(raw.url);
    const id = c.get("requestId");
    if (rung >= 5) {
      const parsed = parseAuthorization(raw.headers.get("authorization"));
      if (parsed.ok) timingSafeEqual(await digestSecret(parsed.credentials.secret), STORED);
    }
    let identity = "";
    if (rung >= 6) {
      identity = await signIdentity(parseSigningKeys(c.env.IDENTITY_SIGNING_KEYS), {
        issuer: "https://api.nixflex.com",
        audience: "nixflex-engine",
        accountId: "acct_bench",
        keyId: "nxf_0123456789abcdef0123456789abcdef",
        requestId: id,
        method: raw.method,
        path: url.pathname,
        now: Math.floor(Date.now() / 1000),
      });
    }
    const init: RequestInit & { duplex?: "half" } = { method: raw.method, headers: raw.headers, body: raw.body };
    if (raw.body !== null) init.duplex = "half";
    if (rung >= 2) {
      init.headers = engineRequestHeaders(raw.headers, {
        identity,
        requestId: id,
        clientAddress: raw.headers.get("cf-connecting-ip"),
        publicHost: url.host,
        publicProto: "https",
      });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (rung >= 3) {
      const controller = new AbortController();
      init.signal = controller.signal;
      timer = setTimeout(() => controller.abort(), 30_000);
    }
    let response: Response;
    try {
      response = await fetch(new Request(c.env.ORIGIN + url.pathname + url.search, init));
    } finally {
      clearTimeout(timer);
    }
    const headers =
      rung >= 4
        ? clientResponseHeaders(response.headers, {
            requestId: id,
            engineOrigin: c.env.ORIGIN,
            engineHostname: "127.0.0.1",
            publicOrigin: url.origin,
          })
        : response.headers;
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  });
  return app;
}

const apps = new Map<number, ReturnType<typeof ladder>>();

export default {
  fetch(
    request: Request,
    env: Env,
    ctx: Parameters<ReturnType<typeof ladder>["fetch"]>[2],
  ): Response | Promise<Response> {
    const rung = RUNGS.indexOf(env.RUNG);
    if (rung <= 0) {
      const url = new URL(request.url);
      return fetch(env.ORIGIN + url.pathname + url.search, request);
    }
    let app = apps.get(rung);
    if (app === undefined) {
      app = ladder(rung);
      apps.set(rung, app);
    }
    return app.fetch(request, env, ctx);
  },
};
