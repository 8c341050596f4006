/**
 * The identity header (SPEC §4): a short-lived JWT that tells the engine who is calling,
 * bound to one method and path so a captured header is useless elsewhere.
 */
import { SignJWT } from "jose";
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

/** Signs a fresh identity token with the active key. */
export async function signIdentity(keys: SigningKeySet, claims: IdentityClaims): Promise<string> {
  const key = await keys.signingKey();
  return new SignJWT({ key_id: claims.keyId, htm: claims.method, htu: claims.path })
    .setProtectedHeader({ alg: keys.active.alg, kid: keys.active.kid, typ: IDENTITY_TYP })
    .setIssuer(claims.issuer)
    .setAudience(claims.audience)
    .setSubject(claims.accountId)
    .setIssuedAt(claims.now)
    .setExpirationTime(claims.now + IDENTITY_TTL_S)
    .setJti(claims.requestId)
    .sign(key);
}
