/**
 * Request facts for node:http engines. `IncomingMessage.url` is the raw request target, and the
 * gateway signs `htu` as the WHATWG URL parser's `pathname` of the public request, which it then
 * forwards verbatim: so the engine receives exactly the path the token names, and must compare
 * that raw path — not `new URL(req.url, base)` (which reads `//v1/reports` as host `v1`), and not a
 * percent-decoded or dot-normalised form (which would match a path the engine routes differently).
 */
import type { RequestFacts } from "./index.ts";

/** The part of node:http's `IncomingMessage` the facts come from (Express and Fastify's raw requests fit). */
export interface NodeRequestLike {
  method?: string | undefined;
  url?: string | undefined;
  headers: Record<string, string | string[] | undefined>;
}

// An absolute-form target (RFC 9112 §3.2.2), as a forward proxy sends: scheme "://" authority.
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/**
 * The path of a raw request target, without the query: origin-form `//v1/reports?x` →
 * `//v1/reports`; absolute-form `http://host/v1/reports` → `/v1/reports`, `http://host` → `/`.
 * Percent-encoding, repeated slashes and dot segments are kept as they arrived. Anything else
 * (`*`, authority-form) is returned as it is and will not match a token's `htu`.
 */
export function requestTargetPath(target: string): string {
  let path = target;
  if (!path.startsWith("/")) {
    const origin = ABSOLUTE_FORM.exec(path);
    if (origin !== null) path = path.slice(origin[0].length);
    if (path === "" || path.startsWith("?")) path = `/${path}`;
  }
  const query = path.indexOf("?");
  return query === -1 ? path : path.slice(0, query);
}

/**
 * The facts to pass to `verifier.verifyFacts` for a node:http request. Two identity headers
 * are joined with a comma, which the verifier refuses as `ERR_IDENTITY_MISSING`.
 */
export function nodeRequestFacts(req: NodeRequestLike): RequestFacts {
  const header = req.headers["x-nixflex-identity"];
  return {
    method: req.method ?? "GET",
    path: requestTargetPath(req.url ?? "/"),
    token: header === undefined ? null : Array.isArray(header) ? header.join(",") : header,
  };
}
