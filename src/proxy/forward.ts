/**
 * Forwarding to the engine (SPEC §4): one subrequest with the header policy of
 * `headers.ts`, a fresh identity token and a time limit on the engine starting to answer.
 * Both bodies stream without being copied through JavaScript: the client's body is handed
 * to the subrequest as it is, and the engine's body either as it is or through a native
 * identity stream that notices an engine breaking off (see `observeBody`).
 */
import type { Principal, Services, WaitUntil } from "../env.ts";
import { GatewayError } from "../errors.ts";
import { signIdentity } from "../identity/sign.ts";
import { log } from "../log.ts";
import { engineRequestHeaders, fitResponseHeaders } from "./headers.ts";

/**
 * Forwards the authenticated request and returns the engine's answer to the client.
 * Throws `bad_gateway` or `gateway_timeout` (SPEC §4).
 */
export async function forwardToEngine(
  raw: Request,
  services: Services,
  principal: Principal,
  requestId: string,
  ctx: WaitUntil,
): Promise<Response> {
  const { config, engineFetch, store } = services;
  const { accountId, keyId } = principal;
  const url = new URL(raw.url);
  refuseUnforwardable(raw, url.pathname);

  const identity = await signIdentity(config.signing, {
    issuer: config.issuer,
    audience: config.audience,
    accountId,
    keyId,
    requestId,
    method: raw.method,
    path: url.pathname,
    now: Math.floor(store.now() / 1000),
  });

  const init: RequestInit & { duplex?: "half" } = {
    method: raw.method,
    headers: engineRequestHeaders(raw.headers, {
      identity,
      requestId,
      clientAddress: raw.headers.get("cf-connecting-ip"),
      publicHost: url.host,
      publicProto: url.protocol.slice(0, -1),
    }),
    body: raw.body,
    // The engine's redirects go to the client (Location rewritten, SPEC §4); following them here
    // would re-request another path with a token bound to this one.
    redirect: "manual",
    // Never from or into Cloudflare's cache (SPEC §4): it keys by URL, and the identity header
    // that tells accounts apart is not part of the key (docs/SECURITY.md, "No shared cache").
    cache: "no-store",
  };
  if (raw.body !== null) init.duplex = "half";

  // The deadline is a native timer raced against the engine (not setTimeout/clearTimeout,
  // whose Node-compatible wrappers cost more per request; docs/BENCHMARKS.md, "What changed
  // on the hot path in the first round", item 3). An engine that answers in time leaves it
  // pending; it ends with the request. The engine request is not given an AbortSignal, which
  // costs CPU per request too ("What changed on the forwarding path this round", item 3): the
  // runtime cancels a subrequest still pending when the request it belongs to ends — the
  // engine's connection closes as the 504 goes out (test/e2e/faults.test.ts pins it).
  const deadline = scheduler.wait(config.engineTimeoutMs).then(() => null);
  let response: Response | null;
  try {
    response = await Promise.race([
      engineFetch(new Request(config.engineOrigin + url.pathname + url.search, init)),
      deadline,
    ]);
  } catch (error) {
    throw new GatewayError("bad_gateway", {
      detail: `engine fetch failed: ${error instanceof Error ? error.name : "unknown"}`,
    });
  }
  if (response === null) {
    throw new GatewayError("gateway_timeout", {
      detail: `engine sent no response within ${config.engineTimeoutMs} ms`,
    });
  }

  const context = {
    requestId,
    engineOrigin: config.engineOrigin,
    engineHostname: config.engineHostname,
    publicOrigin: url.origin,
  };
  // `fetch` hands back immutable headers: the runtime copies them with the response
  // (`new Response(body, response)`), and only what must change is changed in the copy —
  // building the set header by header in JavaScript cost more per request (docs/BENCHMARKS.md,
  // "What changed on the forwarding path this round", item 2).
  const answer = new Response(observeBody(response, requestId, ctx), response);
  fitResponseHeaders(answer.headers, context);
  return answer;
}

/**
 * Longest request path (as sent, percent-encoded) that is forwarded. The identity token
 * repeats the path as `htu`, base64url-encoded, so the path counts about 2.3 times against
 * the engine's header limit; at this length the gateway's share of the header section stays
 * far inside the 16 KiB a Node engine accepts by default (docs/engine-integration.md,
 * "Header size").
 */
export const PATH_MAX_BYTES = 4096;

/**
 * Requests the gateway answers itself rather than forward (SPEC §6, "odd requests get clear
 * answers"): a path too long for the engine's header limits, a GET or HEAD with a body (the
 * subrequest cannot carry it, and dropping it would lose what the client sent), and a
 * WebSocket upgrade (the `Upgrade` header is hop-by-hop, so the engine would see a plain GET).
 */
function refuseUnforwardable(raw: Request, path: string): void {
  if (path.length > PATH_MAX_BYTES) {
    throw new GatewayError("uri_too_long", {
      message: `The request path is ${path.length} bytes long; at most ${PATH_MAX_BYTES} are accepted`,
    });
  }
  if (raw.body !== null && (raw.method === "GET" || raw.method === "HEAD")) {
    throw new GatewayError("body_not_allowed");
  }
  const upgrade = raw.headers.get("upgrade");
  if (upgrade !== null && /(?:^|,)\s*websocket\s*(?:$|[,/])/i.test(upgrade)) {
    throw new GatewayError("upgrade_not_supported");
  }
}

/**
 * Bodies with a declared length up to this size go to the client unobserved. Watching a
 * body means a JavaScript pipe between the engine and the client, and that pipe cost more
 * CPU per request than signing the identity token (docs/BENCHMARKS.md, "What changed on the
 * hot path in the first round", item 2); a short body is
 * where an engine breaking off is least likely, and the runtime still enforces the
 * declared length, so the client never takes a truncated body for a whole one.
 */
export const UNOBSERVED_BODY_MAX_BYTES = 64 * 1024;

/**
 * Passes a long or open-ended engine body through a native identity stream so the
 * gateway learns when the engine breaks off mid-response (it logs it; the client sees the
 * broken stream) without copying chunks through JavaScript.
 */
function observeBody(response: Response, requestId: string, ctx: WaitUntil): ReadableStream | null {
  const body = response.body;
  if (body === null) return null;
  // A known length stays known (and is enforced), so the client still gets Content-Length.
  // A coded body is decoded on its way in, so its declared length is not the length we pass on.
  const length = response.headers.has("content-encoding")
    ? Number.NaN
    : Number(response.headers.get("content-length") ?? Number.NaN);
  const known = Number.isSafeInteger(length) && length >= 0;
  if (known && length <= UNOBSERVED_BODY_MAX_BYTES) return body;
  const pipe = known ? new FixedLengthStream(length) : new IdentityTransformStream();
  ctx.waitUntil(
    body.pipeTo(pipe.writable).catch((error: unknown) => {
      log("warn", "response_stream_aborted", {
        request_id: requestId,
        error: error instanceof Error ? error.name : "unknown",
      });
    }),
  );
  return pipe.readable;
}
