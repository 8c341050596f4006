/**
 * The identity signing keys (SPEC §4, §6, §8): `IDENTITY_SIGNING_KEYS` is a JWK Set of
 * private keys; the first signs, all are published. Public JWKs are built from an
 * allow-list of members, so no private parameter can reach the JWKS.
 */
import { GatewayError } from "../errors.ts";

export type IdentityAlg = "EdDSA" | "ES256";

/** One configured key: its private JWK (kept inside the isolate) and its public form. */
export interface SigningKey {
  kid: string;
  alg: IdentityAlg;
  privateJwk: JsonWebKey & { kid: string };
  publicJwk: Record<string, string>;
}

export interface SigningKeySet {
  /** The key that signs. */
  active: SigningKey;
  keys: SigningKey[];
  /** The JWKS document body, serialized once. */
  jwksBody: string;
  /** The active key imported as a CryptoKey, once per isolate. */
  signingKey(): Promise<CryptoKey>;
  /** True once `check()` has succeeded in this isolate. */
  ready: boolean;
  /** Imports every key once; rejects with `configuration_error` naming the unusable key. */
  check(): Promise<void>;
}

const fail = (why: string): never => {
  throw new GatewayError("configuration_error", { detail: `IDENTITY_SIGNING_KEYS ${why}` });
};

const isText = (x: unknown): x is string => typeof x === "string" && x.length > 0;

/** WebCrypto's parameters for each signing algorithm. */
const WEBCRYPTO = { EdDSA: { name: "Ed25519" }, ES256: { name: "ECDSA", namedCurve: "P-256" } } as const;

/**
 * Imports a key with the runtime's WebCrypto — the call jose's `importJWK` makes, without
 * the JWE tables that importing it brought into the bundle (docs/BENCHMARKS.md,
 * "The targets, and why four of them are missed", Bundle).
 * jose signs with the result (src/identity/sign.ts).
 */
function importKey(jwk: object, alg: IdentityAlg, usage: "sign" | "verify"): Promise<CryptoKey> {
  // WebCrypto checks `alg` and `use` where present; the algorithm and usage are given here instead.
  const { kid: _kid, alg: _alg, use: _use, ...members } = jwk as Record<string, unknown>;
  return crypto.subtle.importKey("jwk", members as unknown as JsonWebKey, WEBCRYPTO[alg], false, [usage]);
}

function parseKey(value: unknown, index: number): SigningKey {
  if (typeof value !== "object" || value === null) return fail(`key ${index} is not an object`);
  const jwk = value as Record<string, unknown>;
  if (!isText(jwk.kid)) return fail(`key ${index} has no kid`);
  if (!isText(jwk.d)) return fail(`key ${index} (${jwk.kid}) is not a private key`);
  if (jwk.use !== undefined && jwk.use !== "sig") fail(`key ${index} (${jwk.kid}) is not a signing key`);
  let alg: IdentityAlg;
  let publicJwk: Record<string, string>;
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519" && isText(jwk.x)) {
    alg = "EdDSA";
    publicJwk = { kty: "OKP", crv: "Ed25519", x: jwk.x, kid: jwk.kid, alg, use: "sig" };
  } else if (jwk.kty === "EC" && jwk.crv === "P-256" && isText(jwk.x) && isText(jwk.y)) {
    alg = "ES256";
    publicJwk = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, kid: jwk.kid, alg, use: "sig" };
  } else {
    return fail(`key ${index} (${jwk.kid}) must be an Ed25519 (OKP) or P-256 (EC) key`);
  }
  if (jwk.alg !== undefined && jwk.alg !== alg)
    fail(`key ${index} (${jwk.kid}) has alg ${String(jwk.alg)}, expected ${alg}`);
  // Only the members signing needs: extras (key_ops, ext, x5c…) never reach the import.
  const { kid: _kid, alg: _alg, use: _use, ...publicMembers } = publicJwk;
  const privateJwk = { ...publicMembers, d: jwk.d, kid: jwk.kid } as JsonWebKey & { kid: string };
  return { kid: jwk.kid, alg, privateJwk, publicJwk };
}

let memo: { raw: string; set: SigningKeySet } | undefined;

/** Parses the JWK Set (memoized on its text, so the key is imported once per isolate). */
export function parseSigningKeys(raw: string | undefined): SigningKeySet {
  if (raw === undefined || raw.trim() === "") return fail("is not set");
  if (memo?.raw === raw) return memo.set;
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    return fail("is not valid JSON");
  }
  const list = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list) || list.length === 0) return fail('must be a JWK Set: {"keys":[…]} with at least one key');
  const keys = list.map(parseKey);
  const kids = new Set(keys.map((k) => k.kid));
  if (kids.size !== keys.length) fail("has two keys with the same kid");
  const active = keys[0]!;
  let imported: Promise<CryptoKey> | undefined;
  let checked: Promise<void> | undefined;
  const set: SigningKeySet = {
    active,
    keys,
    jwksBody: JSON.stringify({ keys: keys.map((k) => k.publicJwk) }),
    ready: false,
    check() {
      // Every published key must import as a public key and the active one as a private key,
      // or no request is answered at all (SPEC §8): a JWKS with an unusable key is a misconfiguration.
      checked ??= Promise.all([
        set.signingKey(),
        ...keys.map((k, index) =>
          importKey(k.publicJwk, k.alg, "verify").catch(() =>
            fail(`key ${index} (${k.kid}) has an unusable public key`),
          ),
        ),
      ]).then(() => {
        set.ready = true;
      });
      return checked;
    },
    signingKey() {
      imported ??= importKey(active.privateJwk, active.alg, "sign").catch(() => {
        imported = undefined;
        return fail(`key 0 (${active.kid}) could not be imported`);
      });
      return imported;
    },
  };
  memo = { raw, set };
  return set;
}
