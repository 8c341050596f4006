/**
 * Identity signing-key sets (IDENTITY_SIGNING_KEYS, SPEC §8) as plain data: generate a
 * key, and the three rotation steps. The Worker's own parser (src/identity/keys.ts)
 * validates every set read or produced here, so the CLI cannot emit a set the gateway
 * would refuse.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import { GatewayError } from "../../src/errors.ts";
import { parseSigningKeys, type IdentityAlg } from "../../src/identity/keys.ts";

export type PrivateJwk = Record<string, string> & { kid: string };
export interface JwkSet {
  keys: PrivateJwk[];
}

export const ALGS: readonly IdentityAlg[] = ["EdDSA", "ES256"];

/**
 * kid = "nx-" + creation time (UTC, to the second) + "-" + the first 8 characters of the
 * key's RFC 7638 thumbprint: sortable by age, readable in a JWKS, unique per key.
 */
const KID_TIME = /^nx-(\d{8}T\d{6}Z)-/;

function kidTime(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
}

/** A fresh private signing JWK with `kid`, `alg` and `use: "sig"`. */
export async function generateSigningJwk(alg: IdentityAlg = "EdDSA", now: Date = new Date()): Promise<PrivateJwk> {
  const { privateKey } =
    alg === "EdDSA"
      ? await generateKeyPair("Ed25519", { extractable: true })
      : await generateKeyPair("ES256", { extractable: true });
  const jwk = (await exportJWK(privateKey)) as Record<string, string>;
  const thumbprint = await calculateJwkThumbprint(jwk, "sha256");
  const kid = `nx-${kidTime(now)}-${thumbprint.slice(0, 8)}`;
  return { ...jwk, kid, alg, use: "sig" };
}

/** Throws a readable Error when the text is not a set the gateway would accept. */
export function parseSet(text: string, source: string): JwkSet {
  try {
    parseSigningKeys(text);
  } catch (error) {
    const why = error instanceof GatewayError ? (error.detail ?? error.code) : String(error);
    throw new Error(`${source}: ${why}`);
  }
  return { keys: (JSON.parse(text) as JwkSet).keys };
}

/** Serializes a set on one line (what .dev.vars and `wrangler secret put` want). */
export function serializeSet(set: JwkSet): string {
  const text = JSON.stringify({ keys: set.keys });
  parseSigningKeys(text);
  return text;
}

/** The latest creation time (ms) among the set's generated kids, or undefined. */
function latestKidTimeMs(set: JwkSet): number | undefined {
  let latest: number | undefined;
  for (const key of set.keys) {
    const time = KID_TIME.exec(key.kid)?.[1];
    if (time === undefined) continue;
    const ms = Date.parse(
      `${time.slice(0, 4)}-${time.slice(4, 6)}-${time.slice(6, 8)}T${time.slice(9, 11)}:${time.slice(11, 13)}:${time.slice(13, 15)}Z`,
    );
    if (latest === undefined || ms > latest) latest = ms;
  }
  return latest;
}

/**
 * The creation time for a key about to join `set`: now, or one second after the set's
 * newest kid when that is not earlier — so the newest key is always unique, and
 * `activate` can never pick an older key after a publish made within the same second.
 */
export function nextKeyTime(set: JwkSet, now: Date = new Date()): Date {
  const latest = latestKidTimeMs(set);
  return latest === undefined || now.getTime() >= latest + 1000 ? now : new Date(latest + 1000);
}

/** Phase 1: the new key joins the set at the end — published in the JWKS, not signing. */
export function publishKey(set: JwkSet, key: PrivateJwk): JwkSet {
  if (set.keys.some((k) => k.kid === key.kid)) throw new Error(`the set already has a key with kid ${key.kid}`);
  return { keys: [...set.keys, key] };
}

/**
 * The newest key: the latest creation time among kids this tool generated (unique: see
 * `nextKeyTime`; on a tie from hand-edited kids, the first in the set), or the last key
 * when no kid carries a time.
 */
export function newestKid(set: JwkSet): string {
  let best: { kid: string; time: string } | undefined;
  for (const key of set.keys) {
    const time = KID_TIME.exec(key.kid)?.[1];
    if (time !== undefined && (best === undefined || time > best.time)) best = { kid: key.kid, time };
  }
  return best?.kid ?? set.keys[set.keys.length - 1]!.kid;
}

/** Phase 2: `kid` (default: the newest key) moves to the front, so it signs. */
export function activateKey(set: JwkSet, kid: string = newestKid(set)): { set: JwkSet; changed: boolean; kid: string } {
  const index = set.keys.findIndex((k) => k.kid === kid);
  if (index === -1) throw new Error(`no key with kid ${kid} in the set`);
  if (index === 0) return { set, changed: false, kid };
  const keys = [...set.keys];
  const [key] = keys.splice(index, 1);
  return { set: { keys: [key!, ...keys] }, changed: true, kid };
}

/** Phase 3: an old key leaves the set (and the JWKS). The signing key cannot be retired. */
export function retireKey(set: JwkSet, kid: string): JwkSet {
  const index = set.keys.findIndex((k) => k.kid === kid);
  if (index === -1) throw new Error(`no key with kid ${kid} in the set`);
  if (index === 0) throw new Error(`${kid} is the signing key; activate another key first (rotate --phase activate)`);
  return { keys: set.keys.filter((k) => k.kid !== kid) };
}
