/**
 * Microbenchmarks inside workerd. `GET /?op=<name>&n=<count>` runs one operation `n`
 * times in a row and answers when done; the harness reads the workerd process's CPU time
 * around the request and subtracts a `noop` run of the same length. (Inside workerd the
 * clock stands still while JavaScript runs, so timing has to come from outside.)
 *
 * The signing variants are the question of issue "signing": jose's SignJWT, jose's
 * CompactSign with the payload serialized by hand and the header fixed, and — as the
 * floor, not an option, since SPEC §4 says "signed with jose" — WebCrypto alone.
 */
import { CompactSign, SignJWT } from "jose";
import { parseSigningKeys } from "../../../src/identity/keys.ts";
import { identityPayload, signIdentity } from "../../../src/identity/sign.ts";
import { digestSecret } from "../../../src/keys/hash.ts";
import { parseAuthorization } from "../../../src/keys/format.ts";
import { log, redact } from "../../../src/log.ts";
import { engineRequestHeaders } from "../../../src/proxy/headers.ts";

interface Env {
  IDENTITY_SIGNING_KEYS: string;
  AUTHORIZATION: string;
}

const TYP = "nixflex-identity+jwt";
const encoder = new TextEncoder();

function b64url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const claims = (i: number) => ({
  issuer: "https://api.nixflex.com",
  audience: "nixflex-engine",
  accountId: "acct_bench",
  keyId: "nxf_0123456789abcdef0123456789abcdef",
  requestId: `0b3a1c52-9a7e-4f43-8b1e-${String(100000000000 + i)}`,
  method: "GET",
  path: "/v1/agents/a1",
  now: 1_800_000_000 + (i % 60),
});

type Op = (env: Env, i: number, request: Request) => unknown;

let headerSegment: string | undefined;

const ops: Record<string, Op> = {
  noop: () => undefined,
  "noop-await": async () => undefined,

  // --- signing ---
  async "sign-signjwt"(env, i) {
    const keys = parseSigningKeys(env.IDENTITY_SIGNING_KEYS);
    const key = await keys.signingKey();
    const c = claims(i);
    return new SignJWT({ key_id: c.keyId, htm: c.method, htu: c.path })
      .setProtectedHeader({ alg: keys.active.alg, kid: keys.active.kid, typ: TYP })
      .setIssuer(c.issuer)
      .setAudience(c.audience)
      .setSubject(c.accountId)
      .setIssuedAt(c.now)
      .setExpirationTime(c.now + 60)
      .setJti(c.requestId)
      .sign(key);
  },
  async "sign-compact"(env, i) {
    const keys = parseSigningKeys(env.IDENTITY_SIGNING_KEYS);
    const key = await keys.signingKey();
    const payload = identityPayload(claims(i));
    return new CompactSign(encoder.encode(payload))
      .setProtectedHeader({ alg: keys.active.alg, kid: keys.active.kid, typ: TYP })
      .sign(key);
  },
  async "sign-webcrypto-floor"(env, i) {
    const keys = parseSigningKeys(env.IDENTITY_SIGNING_KEYS);
    const key = await keys.signingKey();
    headerSegment ??= b64url(encoder.encode(JSON.stringify({ alg: keys.active.alg, kid: keys.active.kid, typ: TYP })));
    const payload = identityPayload(claims(i));
    const input = `${headerSegment}.${b64url(encoder.encode(payload))}`;
    const signature = await crypto.subtle.sign("Ed25519", key, encoder.encode(input));
    return `${input}.${b64url(new Uint8Array(signature))}`;
  },
  async "sign-ed25519-raw"(env) {
    const key = await parseSigningKeys(env.IDENTITY_SIGNING_KEYS).signingKey();
    return crypto.subtle.sign("Ed25519", key, encoder.encode("x".repeat(300)));
  },
  async "sign-shipped"(env, i) {
    return signIdentity(parseSigningKeys(env.IDENTITY_SIGNING_KEYS), claims(i));
  },

  // --- other per-request pieces of the hot path ---
  "digest-sha256": async () => digestSecret("nxfs_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu012345"),
  "parse-authorization": (env) => parseAuthorization(env.AUTHORIZATION),
  "random-uuid": () => crypto.randomUUID(),
  "url-parse": (_env, _i, request) => new URL(request.url),
  "timer-set-clear": () => clearTimeout(setTimeout(() => undefined, 30_000)),
  "abort-controller": () => new AbortController(),
  "redact-log-line": (_env, i) =>
    redact(
      JSON.stringify({
        level: "info",
        event: "request",
        request_id: claims(i).requestId,
        method: "GET",
        path: "/v1/agents/a1",
        status: 200,
      }),
    ),
  "access-log-line": (_env, i) =>
    log("info", "request", {
      request_id: claims(i).requestId,
      method: "GET",
      path: "/v1/agents/a1",
      status: 200,
      outcome: "authenticated",
      account_id: "acct_bench",
      key_id: "nxf_0123456789abcdef0123456789abcdef",
      duration_ms: 0,
    }),
  "engine-request-headers": (_env, i, request) =>
    engineRequestHeaders(request.headers, {
      identity: "eyJ.x.y",
      requestId: claims(i).requestId,
      clientAddress: "203.0.113.7",
      publicHost: "api.nixflex.com",
      publicProto: "https",
    }),
  "headers-copy": (_env, _i, request) => new Headers(request.headers),
};

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const name = url.searchParams.get("op") ?? "noop";
    const n = Number(url.searchParams.get("n") ?? "1");
    const op = ops[name];
    if (op === undefined) return new Response(`unknown op; one of: ${Object.keys(ops).join(", ")}`, { status: 404 });
    let last: unknown;
    for (let i = 0; i < n; i++) {
      last = op(env, i, request);
      if (last instanceof Promise) last = await last;
    }
    return Response.json({ op: name, n, sample: typeof last === "string" ? last.slice(0, 400) : null });
  },
};
