/**
 * Forwarding to the engine (SPEC §4): streamed both ways through `hono/proxy`, with the
 * header policy of `headers.ts`, a fresh identity token and a time limit on the engine
 * starting to answer.
 */
import type { Context } from "hono";
import { proxy } from "hono/proxy";
import type { AppEnv } from "../env.ts";
import { GatewayError } from "../errors.ts";
import { signIdentity } from "../identity/sign.ts";
import { log } from "../log.ts";
import { clientResponseHeaders, engineRequestHeaders } from "./headers.ts";

/** Forwards the authenticated request and returns the engine's answer to the client. */
export async function forwardToEngine(c: Context<AppEnv>): Promise<Response> {
  const { config, engineFetch, store } = c.var.services;
  const { accountId, keyId } = c.var.principal;
  const requestId = c.var.requestId;
  const url = new URL(c.req.url);

  const identity = await signIdentity(config.signing, {
    issuer: config.issuer,
    audience: config.audience,
    accountId,
    keyId,
    requestId,
    method: c.req.method,
    path: url.pathname,
    now: Math.floor(store.now() / 1000),
  });

  const headers = engineRequestHeaders(c.req.raw.headers, {
    identity,
    requestId,
    clientAddress: c.req.raw.headers.get("cf-connecting-ip"),
    publicHost: url.host,
    publicProto: url.protocol.slice(0, -1),
  });

  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, config.engineTimeoutMs);

  let response: Response;
  try {
    response = await proxy(config.engineOrigin + url.pathname + url.search, {
      raw: c.req.raw,
      headers,
      signal: controller.signal,
      customFetch: engineFetch,
    });
  } catch (error) {
    if (timedOut) throw new GatewayError("gateway_timeout", { detail: `engine sent no response within ${config.engineTimeoutMs} ms` });
    throw new GatewayError("bad_gateway", { detail: `engine fetch failed: ${error instanceof Error ? error.name : "unknown"}` });
  } finally {
    clearTimeout(timer);
  }

  const responseHeaders = clientResponseHeaders(response.headers, {
    requestId,
    engineOrigin: config.engineOrigin,
    engineHostname: config.engineHostname,
    publicOrigin: url.origin,
  });
  return new Response(observeBody(response, requestId, c.executionCtx), {
    status: response.status,
    statusText: response.statusText,
    headers: responseHeaders,
  });
}

/**
 * Passes the engine's body through a native identity stream so the gateway learns
 * when the engine breaks off mid-response (it logs it; the client sees the broken
 * stream) without copying chunks through JavaScript.
 */
function observeBody(response: Response, requestId: string, ctx: { waitUntil(promise: Promise<unknown>): void }): ReadableStream | null {
  const body = response.body;
  if (body === null) return null;
  // A known length stays known (and is enforced), so the client still gets Content-Length.
  const length = Number(response.headers.get("content-length") ?? Number.NaN);
  const pipe = Number.isSafeInteger(length) && length >= 0 ? new FixedLengthStream(length) : new IdentityTransformStream();
  ctx.waitUntil(
    body.pipeTo(pipe.writable).catch((error: unknown) => {
      log("warn", "response_stream_aborted", { request_id: requestId, error: error instanceof Error ? error.name : "unknown" });
    }),
  );
  return pipe.readable;
}
