/**
 * Header policy between client and engine (SPEC §4). Name sets are built once per
 * isolate; filtering is a single pass over the incoming headers.
 */

/**
 * RFC 9110 §7.6.1 connection-specific fields, plus legacy ones that must not be forwarded.
 * Dropped here whatever the runtime already removed: over HTTP it consumes Connection,
 * Keep-Alive, TE, Trailer and Transfer-Encoding itself, but passes Proxy-* on.
 */
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Request headers the gateway owns: anything the client sends under these names is dropped.
 * (Every client `x-forwarded-*` is dropped by prefix below: they describe the public request,
 * and only the gateway can.)
 */
const GATEWAY_OWNED = new Set([
  "authorization",
  "host",
  "x-request-id",
  "x-real-ip",
  "forwarded",
  // Method and URL overrides (SPEC §4): an engine framework that honours one would act on
  // another method or path than the identity token's `htm`/`htu` name.
  "x-http-method-override",
  "x-method-override",
  "x-http-method",
  "x-original-method",
  "x-original-url",
  "x-original-uri",
  "x-rewrite-url",
  // The runtime decodes a coded engine body itself (see fitResponseHeaders), so the
  // client's preference is not passed on.
  "accept-encoding",
]);

const RESERVED_PREFIX = "x-nixflex-";
const FORWARDED_PREFIX = "x-forwarded-";
const ABSOLUTE_URL = /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Names listed in a Connection header (RFC 9110 §7.6.1), lowercased; invalid tokens ignored.
 * Over HTTP the runtime consumes a client's Connection before the Worker runs, so on requests
 * this only sees what arrives otherwise (a service binding); the engine's Connection does
 * reach the gateway (test/e2e/hardening.test.ts).
 */
function connectionListed(headers: Headers): Set<string> | null {
  const value = headers.get("connection");
  if (value === null) return null;
  const names = new Set<string>();
  for (const part of value.split(",")) {
    const name = part.trim().toLowerCase();
    if (TOKEN.test(name)) names.add(name);
  }
  return names;
}

export interface ForwardedContext {
  identity: string;
  requestId: string;
  clientAddress: string | null;
  publicHost: string;
  publicProto: string;
}

/**
 * The headers the engine receives: the client's, filtered, plus the gateway's own. The
 * copy is the runtime's (`new Headers(incoming)`) and only the names to drop are deleted
 * from it: rebuilding the set in JavaScript, one `append` per header, cost this path more
 * CPU per request (docs/BENCHMARKS.md, "What changed on the forwarding path this round", item 2).
 */
export function engineRequestHeaders(incoming: Headers, context: ForwardedContext): Headers {
  const listed = connectionListed(incoming);
  const out = new Headers(incoming);
  for (const name of incoming.keys()) {
    // CGI-style servers (HTTP_X_NIXFLEX_IDENTITY) read "_" as "-": `x_nixflex_identity`
    // would arrive as the gateway's own header, so look-alikes are dropped too.
    const folded = name.includes("_") ? name.replaceAll("_", "-") : name;
    if (
      GATEWAY_OWNED.has(folded) ||
      HOP_BY_HOP.has(folded) ||
      folded.startsWith(RESERVED_PREFIX) ||
      folded.startsWith(FORWARDED_PREFIX) ||
      listed?.has(name) === true
    ) {
      out.delete(name);
    }
  }
  out.set("x-nixflex-identity", context.identity);
  out.set("x-request-id", context.requestId);
  if (context.clientAddress !== null) out.set("x-forwarded-for", context.clientAddress);
  out.set("x-forwarded-host", context.publicHost);
  out.set("x-forwarded-proto", context.publicProto);
  return out;
}

/**
 * Makes the engine's response headers fit for the client, in place: hop-by-hop dropped,
 * the request id set, `Location`/`Content-Location` that point at the engine's host
 * rewritten to the public origin, and any other mention of the engine's host scrubbed, so
 * the engine's hostname never reaches a client. The headers are read once; only what must
 * change is changed.
 */
export function fitResponseHeaders(headers: Headers, context: { requestId: string } & EngineUrlContext): void {
  const listed = connectionListed(headers);
  // A coded body was decoded by the runtime on its way in: its coding and length no longer apply.
  const decoded = headers.has("content-encoding");
  // Changes are collected first: a Headers object is not changed while it is iterated.
  const drop: string[] = [];
  const replace: Array<[string, string]> = [];
  let cookies = false;
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name) || listed?.has(name) === true) {
      drop.push(name);
    } else if (decoded && (name === "content-encoding" || name === "content-length")) {
      drop.push(name);
    } else if (name === "location" || name === "content-location") {
      // A reference still naming the host after the rewrite (e.g. in its path or query) is scrubbed like any other.
      let rewritten: string | null = rewriteEngineUrl(value, context);
      if (namesEngineHost(rewritten, context)) rewritten = scrubEngineHost(name, rewritten, context);
      if (rewritten === null) drop.push(name);
      else if (rewritten !== value) replace.push([name, rewritten]);
    } else if (value.toLowerCase().includes(context.engineHostname)) {
      if (name === "set-cookie") {
        cookies = true;
        continue;
      }
      const scrubbed = scrubEngineHost(name, value, context);
      if (scrubbed === null) drop.push(name);
      else replace.push([name, scrubbed]);
    }
  }
  for (const name of drop) headers.delete(name);
  for (const [name, value] of replace) headers.set(name, value);
  if (cookies) {
    // Set-Cookie is the one field that is not combined: each cookie is scrubbed on its own.
    const all = headers.getSetCookie();
    headers.delete("set-cookie");
    for (const cookie of all) {
      const scrubbed = cookie.toLowerCase().includes(context.engineHostname)
        ? scrubEngineHost("set-cookie", cookie, context)
        : cookie;
      if (scrubbed !== null) headers.append("set-cookie", scrubbed);
    }
  }
  headers.set("x-request-id", context.requestId);
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Any other header that names the engine's host (`Link`, `Refresh`, a cookie's `Domain`,
 * a `Server` banner…): URLs on that host are rewritten to the public origin, a cookie
 * `Domain` on it is removed (the cookie then belongs to the public host), and a header that
 * still names the host afterwards is dropped rather than leak it (SPEC §4). Rare, so the
 * patterns are built here rather than per isolate.
 */
export function scrubEngineHost(name: string, value: string, context: EngineUrlContext): string | null {
  const host = escapeRegExp(context.engineHostname);
  // The host must end where a hostname ends: `engine.example.evil` is not the engine's URL.
  let out = value.replace(new RegExp(`[a-z][a-z0-9+.-]*://${host}(?::\\d+)?(?![\\w.:-])`, "gi"), context.publicOrigin);
  if (name === "set-cookie") out = out.replace(new RegExp(`;\\s*domain=\\.?${host}(?=;|$)`, "gi"), "");
  return namesEngineHost(out, context) ? null : out;
}

/**
 * Whether `value` names the engine's host anywhere but in the public origin (which may share
 * it: a local gateway and engine both on 127.0.0.1).
 */
function namesEngineHost(value: string, context: EngineUrlContext): boolean {
  return value.toLowerCase().replaceAll(context.publicOrigin.toLowerCase(), "").includes(context.engineHostname);
}

export interface EngineUrlContext {
  engineOrigin: string;
  engineHostname: string;
  publicOrigin: string;
}

/** Rewrites an absolute URL on the engine's host (any scheme or port) to the public origin. */
export function rewriteEngineUrl(value: string, context: EngineUrlContext): string {
  let url: URL;
  try {
    url = new URL(value, context.engineOrigin);
  } catch {
    return value;
  }
  if (url.hostname !== context.engineHostname) return value;
  // A relative reference already resolves against the public URL on the client's side.
  if (!ABSOLUTE_URL.test(value.trim())) return value;
  return context.publicOrigin + url.pathname + url.search + url.hash;
}
