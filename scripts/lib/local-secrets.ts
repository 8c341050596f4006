/**
 * The local gateway's secrets in `.dev.vars`, created on first use: the identity signing
 * key set (IDENTITY_SIGNING_KEYS) and the operator API's token (OPERATOR_TOKEN, what the
 * keys CLI authenticates with locally; only local development accepts it, see
 * src/operator/gate.ts). `npm start` and `npm run keys` both call `ensureLocalSecrets`,
 * so whichever runs first writes the file and the other reads the same values.
 */
import { randomBytes } from "node:crypto";
import { CliError, note } from "./cli.ts";
import { readDevVar, writeDevVar } from "./dev-vars.ts";
import { generateSigningJwk, parseSet, serializeSet } from "./signing.ts";

export interface LocalSecrets {
  operatorToken: string;
  /** Names of the variables written now (empty when the file had them). */
  created: string[];
}

/** A fresh operator token: `nxop_` + 32 random bytes, base64url. */
export function generateOperatorToken(): string {
  return `nxop_${randomBytes(32).toString("base64url")}`;
}

/** Reads both secrets from `path`, writing whichever is missing; a malformed signing key set is an error. */
export async function ensureLocalSecrets(path: string): Promise<LocalSecrets> {
  const created: string[] = [];
  const signing = readDevVar(path, "IDENTITY_SIGNING_KEYS");
  if (signing === undefined) {
    const key = await generateSigningJwk("EdDSA");
    writeDevVar(
      path,
      "IDENTITY_SIGNING_KEYS",
      serializeSet({ keys: [key] }),
      "Local identity signing keys (JWK Set, private; written by npm start). Never commit.",
    );
    note(`Created ${path} with a fresh EdDSA signing key (${key.kid}).`);
    created.push("IDENTITY_SIGNING_KEYS");
  } else {
    try {
      parseSet(signing, path);
    } catch (error) {
      throw new CliError(
        `${error instanceof Error ? error.message : String(error)} — fix it, or delete ${path} to get a fresh key`,
      );
    }
  }
  let operatorToken = readDevVar(path, "OPERATOR_TOKEN");
  if (operatorToken === undefined || operatorToken === "") {
    operatorToken = generateOperatorToken();
    writeDevVar(
      path,
      "OPERATOR_TOKEN",
      operatorToken,
      "The operator API's token for `npm run keys` (local development only; never accepted when deployed).",
    );
    note(`Wrote a fresh OPERATOR_TOKEN to ${path} (the keys CLI's credential for the local gateway).`);
    created.push("OPERATOR_TOKEN");
  }
  return { operatorToken, created };
}
