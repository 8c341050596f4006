/**
 * The identity header (SPEC §4): a short-lived JWT that tells the engine who is calling,
 * bound to one method and path so a captured header is useless elsewhere.
 */
import { CompactSign } from "jose";
import type { SigningKeySet } from "./keys.ts";

/** `typ` of every identity token; the verifier insists on it (RFC 8725 §3.11). */
export const IDENTITY_TYP = "nixflex-identity+jwt";
/** Token lifetime. The spec allows at most 60 s. */
export const IDENTITY_TTL_S = 60;

export interface IdentityClaims {
  issuer: string;
  audience: string;
  accountId: string;
  keyId: string;
  requestId: string;
  method: string;
  path: string;
  /** Seconds since the epoch. */
  now: number;
}

const encoder = new TextEncoder();

/**
 * Signs a fresh identity token with the active key: jose's compact JWS signer over a
 * claims set serialized here, with the key imported once per isolate. jose's `SignJWT`
 * builds the same token (same claims, same order) but copies and re-validates the claims
 * on every call, which costs more per token (docs/BENCHMARKS.md, "Signing: jose's SignJWT
 * against jose's compact signer"). Every request still gets its own `jti`, `iat`, `htm`
 * and `htu`: a token is never reused (SPEC §4).
 */
export async function signIdentity(keys: SigningKeySet, claims: IdentityClaims): Promise<string> {
  const key = await keys.signingKey();
  return new CompactSign(encoder.encode(identityPayload(claims)))
    .setProtectedHeader({ alg: keys.active.alg, kid: keys.active.kid, typ: IDENTITY_TYP })
    .sign(key);
}

/** The token's claims set, serialized: the same members in the same order as `SignJWT` writes them. */
export function identityPayload(claims: IdentityClaims): string {
  return JSON.stringify({
    key_id: claims.keyId,
    htm: claims.method,
    htu: claims.path,
    iss: claims.issuer,
    aud: claims.audience,
    sub: claims.accountId,
    iat: claims.now,
    exp: claims.now + IDENTITY_TTL_S,
    jti: claims.requestId,
  });
}
