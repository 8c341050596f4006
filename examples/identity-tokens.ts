/**
 * Test vectors for the engine-side recipes (docs/engine-integration.md), made with the
 * gateway's own signing code: a fresh signing key set, its public JWKS, and identity
 * tokens that a correct verifier must accept or reject. Run with Node 22 (type stripping):
 *
 *   node examples/identity-tokens.ts OUT_DIR
 *
 * Writes OUT_DIR/jwks.json, OUT_DIR/cases.tsv (`name<TAB>accept|reject<TAB>METHOD<TAB>TARGET<TAB>why`,
 * in the order to send them: TARGET is the request target the engine receives, origin-form or
 * absolute-form), OUT_DIR/tokens/<name>.jwt and, for each accepted case, OUT_DIR/identities/<name>.json
 * (what the engine must answer), and the gateway's 401 body and challenge (unauthorized-body.txt,
 * unauthorized-challenge.txt) that every refusal must carry. A case named `replayed` resends an earlier case's token, which the
 * engine has just accepted: its jti is used. Issuer and audience are the gateway's defaults, which
 * every recipe also defaults to.
 * The private keys live only in this process; nothing private is written.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { base64url, importJWK, SignJWT } from "jose";
import { AUTH_CHALLENGE, UNAUTHORIZED_BODY } from "../src/errors.ts";
import { parseSigningKeys } from "../src/identity/keys.ts";
import { IDENTITY_TTL_S, IDENTITY_TYP, signIdentity } from "../src/identity/sign.ts";

/** The request every token is checked against, and the gateway's default issuer and audience (SPEC §4). */
const ISSUER = "https://api.nixflex.com";
const AUDIENCE = "nixflex-engine";
const METHOD = "POST";
const PATH = "/v1/agents";

type PrivateJwk = Record<string, string> & { kid: string };

function privateJwk(kind: "ed25519" | "ec", kid: string): PrivateJwk {
  const { privateKey } =
    kind === "ed25519" ? generateKeyPairSync("ed25519") : generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { ...(privateKey.export({ format: "jwk" }) as PrivateJwk), kid };
}

const ed = privateJwk("ed25519", "recipes-ed-1");
const ec = privateJwk("ec", "recipes-ec-1");
// Not published: a stranger's key, once under its own kid and once under a published one.
const rogue = privateJwk("ed25519", "recipes-rogue");
const impostor = { ...privateJwk("ed25519", "x"), kid: ed.kid };

const published = parseSigningKeys(JSON.stringify({ keys: [ed, ec] }));
const setOf = (...keys: PrivateJwk[]) => parseSigningKeys(JSON.stringify({ keys }));

const now = Math.floor(Date.now() / 1000);
const identity = {
  account_id: "acct_recipes",
  key_id: `nxf_${"0123456789abcdef".repeat(2)}`,
  request_id: randomUUID(),
};
const claims = {
  issuer: ISSUER,
  audience: AUDIENCE,
  accountId: identity.account_id,
  keyId: identity.key_id,
  requestId: identity.request_id,
  method: METHOD,
  path: PATH,
  now,
};

/** Signs arbitrary claims and header with the published Ed25519 key, for shapes the gateway never makes. */
async function handMade(payload: Record<string, unknown>, header: Record<string, string> = {}): Promise<string> {
  const key = await importJWK(ed, "EdDSA");
  return new SignJWT(payload).setProtectedHeader({ alg: "EdDSA", kid: ed.kid, typ: IDENTITY_TYP, ...header }).sign(key);
}

const baseClaims = {
  iss: ISSUER,
  aud: AUDIENCE,
  sub: identity.account_id,
  key_id: identity.key_id,
  iat: now,
  exp: now + IDENTITY_TTL_S,
  jti: identity.request_id,
  htm: METHOD,
  htu: PATH,
};

const good = await signIdentity(published, claims);
const [goodHeader, goodPayload] = good.split(".") as [string, string, string];
const encode = (value: unknown) => base64url.encode(JSON.stringify(value));

/** A token the gateway signs for another request: its own id, method and public request target. */
async function forRequest(method: string, publicTarget: string, requestId: string): Promise<string> {
  // The gateway signs the WHATWG pathname of the public URL (src/proxy/forward.ts).
  const path = new URL(`https://api.nixflex.com${publicTarget}`).pathname;
  return signIdentity(published, { ...claims, method, path, requestId });
}

const ids = { es256: randomUUID(), slash: randomUUID(), encoded: randomUUID(), absolute: randomUUID() };

interface Case {
  name: string;
  accept: boolean;
  why: string;
  token: string;
  method?: string;
  /** The request target the engine receives. Default PATH (origin-form). */
  target?: string;
  /** For an accepted case, the request id it must yield. Default identity.request_id. */
  requestId?: string;
}

const cases: Case[] = [
  { name: "good-eddsa", accept: true, why: "signed by the active Ed25519 key", token: good },
  {
    name: "replayed",
    accept: false,
    why: "good-eddsa's token a second time: its jti is already used",
    token: good,
  },
  {
    name: "good-es256",
    accept: true,
    why: "signed by the published P-256 key (ES256)",
    token: await signIdentity(setOf(ec, ed), { ...claims, requestId: ids.es256 }),
    requestId: ids.es256,
  },
  {
    name: "good-double-slash",
    accept: true,
    why: "path //v1/reports, which new URL(target, base) misreads as host v1",
    token: await forRequest("GET", "//v1/reports?limit=1", ids.slash),
    method: "GET",
    target: "//v1/reports?limit=1",
    requestId: ids.slash,
  },
  {
    name: "good-encoded",
    accept: true,
    why: "percent-encoded path, compared as it arrived (not decoded)",
    token: await forRequest("GET", "/v1/agents/caf%C3%A9%2Fx", ids.encoded),
    method: "GET",
    target: "/v1/agents/caf%C3%A9%2Fx",
    requestId: ids.encoded,
  },
  {
    name: "good-absolute-form",
    accept: true,
    why: "absolute-form request target (http://host/path), as a forward proxy sends",
    token: await forRequest("POST", PATH, ids.absolute),
    target: `http://engine.internal${PATH}?via=proxy`,
    requestId: ids.absolute,
  },
  {
    name: "slash-path-as-host",
    accept: false,
    why: "a token for /reports sent on //v1/reports",
    token: await forRequest("GET", "/reports", randomUUID()),
    method: "GET",
    target: "//v1/reports",
  },
  {
    name: "wrong-path",
    accept: false,
    why: "htu is another path: a header captured on one endpoint replayed on another",
    token: await signIdentity(published, { ...claims, path: "/v1/keys" }),
  },
  {
    name: "wrong-method",
    accept: false,
    why: "htm is GET, the request is POST",
    token: await signIdentity(published, { ...claims, method: "GET" }),
  },
  {
    name: "expired",
    accept: false,
    why: "exp is an hour ago",
    token: await signIdentity(published, { ...claims, now: now - 3600 }),
  },
  {
    name: "wrong-issuer",
    accept: false,
    why: "iss is not the gateway",
    token: await signIdentity(published, { ...claims, issuer: "https://api.staging.nixflex.com" }),
  },
  {
    name: "wrong-audience",
    accept: false,
    why: "aud names another service",
    token: await signIdentity(published, { ...claims, audience: "nixflex-billing" }),
  },
  {
    name: "unknown-kid",
    accept: false,
    why: "signed by a key that is not in the JWKS",
    token: await signIdentity(setOf(rogue), claims),
  },
  {
    name: "forged-signature",
    accept: false,
    why: "a published kid, but signed by another key",
    token: await signIdentity(setOf(impostor), claims),
  },
  {
    name: "tampered-payload",
    accept: false,
    why: "sub changed after signing",
    token: `${goodHeader}.${encode({ ...JSON.parse(new TextDecoder().decode(base64url.decode(goodPayload))), sub: "acct_victim" })}.${good.split(".")[2]}`,
  },
  {
    name: "wrong-typ",
    accept: false,
    why: "typ JWT: a token minted for another purpose with the same key",
    token: await handMade(baseClaims, { typ: "JWT" }),
  },
  {
    name: "missing-htu",
    accept: false,
    why: "no htu claim: the token is not bound to a path",
    token: await handMade({ ...baseClaims, htu: undefined }),
  },
  {
    name: "too-long-lived",
    accept: false,
    why: "exp is an hour after iat; the gateway never signs for more than 60 s",
    token: await handMade({ ...baseClaims, exp: now + 3600 }),
  },
  {
    name: "alg-none",
    accept: false,
    why: "unsigned (alg none)",
    token: `${encode({ alg: "none", kid: ed.kid, typ: IDENTITY_TYP })}.${encode(baseClaims)}.`,
  },
  {
    name: "alg-hs256",
    accept: false,
    why: "HMAC keyed with the public key's bytes (algorithm confusion)",
    token: await new SignJWT(baseClaims)
      .setProtectedHeader({ alg: "HS256", kid: ed.kid, typ: IDENTITY_TYP })
      .sign(new TextEncoder().encode(ed.x!)),
  },
];

const out = process.argv[2];
if (out === undefined) {
  console.error("usage: node examples/identity-tokens.ts OUT_DIR");
  process.exit(2);
}
mkdirSync(join(out, "tokens"), { recursive: true });
mkdirSync(join(out, "identities"), { recursive: true });
writeFileSync(join(out, "jwks.json"), `${published.jwksBody}\n`);
// The gateway's own 401 (SPEC §3), which every recipe must answer byte for byte.
writeFileSync(join(out, "unauthorized-body.txt"), UNAUTHORIZED_BODY);
writeFileSync(join(out, "unauthorized-challenge.txt"), AUTH_CHALLENGE);
for (const c of cases) {
  writeFileSync(join(out, "tokens", `${c.name}.jwt`), c.token);
  if (c.accept) {
    const yields = { ...identity, request_id: c.requestId ?? identity.request_id };
    writeFileSync(join(out, "identities", `${c.name}.json`), JSON.stringify(yields));
  }
}
writeFileSync(
  join(out, "cases.tsv"),
  cases
    .map((c) => [c.name, c.accept ? "accept" : "reject", c.method ?? METHOD, c.target ?? PATH, c.why].join("\t"))
    .map((line) => `${line}\n`)
    .join(""),
);
