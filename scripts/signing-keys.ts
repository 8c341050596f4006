/**
 * `npm run signing-keys -- <command>`: the identity signing keys (IDENTITY_SIGNING_KEYS,
 * SPEC §4/§8) — generate a set, and rotate it without downtime in three phases.
 *
 * stdout carries only the resulting JWK Set (so `> file` or a pipe works); what to do
 * next goes to stderr.
 */
import { readFileSync, writeFileSync, chmodSync } from "node:fs";
import { resolve } from "node:path";
import { CliError, UsageError, dispatch, note, out, parse, reserveStdout, runMain } from "./lib/cli.ts";
import { readDevVar, writeDevVar } from "./lib/dev-vars.ts";
import { DEV_VARS } from "./lib/project.ts";
import {
  ALGS,
  activateKey,
  generateSigningJwk,
  nextKeyTime,
  parseSet,
  publishKey,
  retireKey,
  serializeSet,
  type JwkSet,
} from "./lib/signing.ts";
import type { IdentityAlg } from "../src/identity/keys.ts";

const VAR = "IDENTITY_SIGNING_KEYS";
/** JWKS `Cache-Control: public, max-age=300` (src/routes/public.ts). */
const JWKS_MAX_AGE_S = 300;
/** An identity token lives 60 s (SPEC §4); the shipped verifier allows 5 s of skew. */
const TOKEN_LIFETIME_S = 60;
const CLOCK_SKEW_S = 5;
/** Time for `wrangler secret put` (a new Worker version) to reach every location. */
const PROPAGATION_S = 60;
/** The shipped verifier refetches the JWKS on an unknown kid at most this often. */
const UNKNOWN_KID_COOLDOWN_S = 30;
const WAIT_PUBLISH_S = JWKS_MAX_AGE_S + PROPAGATION_S;
const WAIT_ACTIVATE_S = TOKEN_LIFETIME_S + CLOCK_SKEW_S + PROPAGATION_S;

const USAGE = `Usage: npm run -s signing-keys -- <command> [options]

Commands
  generate [--alg EdDSA|ES256]                 a new JWK Set with one private key (default EdDSA / Ed25519)
  rotate --phase publish [--alg EdDSA|ES256]   add a new key at the end: published in the JWKS, not signing
  rotate --phase activate [--kid KID]          move the newest key (or KID) to the front: it signs from now on
  retire KID                                   remove an old key from the set and the JWKS

The current set (rotate, retire)
  --from FILE          read it from FILE ("-" = stdin): the set you last uploaded. Cloudflare secrets
                       cannot be read back, so keep that file in your secret manager.
  (default)            the ${VAR} line of .dev.vars (local development)
  --dev-vars PATH      another .dev.vars file

Output
  stdout               the resulting set, one line of JSON, nothing else
  --out FILE           write it to FILE instead (created 0600)
  --write-dev-vars     also store it in .dev.vars (or --dev-vars PATH) for \`npm start\` / \`wrangler dev\`
  --env NAME           the environment named in the printed \`wrangler secret put\` step (default production)

Zero-downtime rotation (three phases; upload the printed set after each with
\`npx wrangler secret put ${VAR} --env production < set.json\`):

  1. rotate --phase publish   The new key is in the JWKS; the old key still signs.
     Wait at least ${WAIT_PUBLISH_S} s before phase 2: the JWKS is served with
     Cache-Control: public, max-age=${JWKS_MAX_AGE_S}, so an engine that caches it by its headers may not see the
     new key for ${JWKS_MAX_AGE_S} s, plus ~${PROPAGATION_S} s for the new secret to reach every location. (The shipped
     verifier also refetches when a token names an unknown kid, but at most once per ${UNKNOWN_KID_COOLDOWN_S} s cooldown,
     so an engine that refetched just before may still reject new tokens for up to ${UNKNOWN_KID_COOLDOWN_S} s; waiting
     the full max-age makes rotation invisible to every engine.)
  2. rotate --phase activate  The new key signs; the old key stays published.
     Wait at least ${WAIT_ACTIVATE_S} s before phase 3: tokens signed by the old key live ${TOKEN_LIFETIME_S} s (+${CLOCK_SKEW_S} s
     skew), and gateways in other locations switch keys only once the secret reaches them (~${PROPAGATION_S} s).
  3. retire OLD_KID           The old key leaves the JWKS.

A compromised key: run all three at once and upload only the last set; tokens the old key
signed in the last ${TOKEN_LIFETIME_S} s fail, and engines fail until they refetch the JWKS.

Exit codes: 0 done, 1 the set is invalid or the kid is unknown, 2 bad usage.`;

const COMMON = {
  from: { type: "string" },
  "dev-vars": { type: "string" },
  out: { type: "string" },
  "write-dev-vars": { type: "boolean" },
  env: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Common = { from?: string; "dev-vars"?: string; out?: string; "write-dev-vars"?: boolean; env?: string };

function algOption(value: string | undefined): IdentityAlg {
  if (value === undefined) return "EdDSA";
  if (!(ALGS as readonly string[]).includes(value)) throw new UsageError(`--alg must be one of ${ALGS.join(", ")}`);
  return value as IdentityAlg;
}

function devVarsPath(options: Common): string {
  return options["dev-vars"] === undefined ? DEV_VARS : resolve(process.cwd(), options["dev-vars"]);
}

function readCurrent(options: Common): JwkSet {
  let text: string | undefined;
  let source: string;
  if (options.from !== undefined) {
    source = options.from === "-" ? "stdin" : options.from;
    try {
      text = readFileSync(options.from === "-" ? 0 : options.from, "utf8").trim();
    } catch (error) {
      throw new CliError(`cannot read ${source}: ${error instanceof Error ? error.message : String(error)}`);
    }
  } else {
    source = devVarsPath(options);
    text = readDevVar(source, VAR);
    if (text === undefined) {
      throw new UsageError(
        `no ${VAR} in ${source}; pass --from FILE (the set you last uploaded), or run \`npm start\` once`,
      );
    }
  }
  try {
    return parseSet(text, source);
  } catch (error) {
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
}

function emit(set: JwkSet, options: Common, comment: string): string {
  const text = serializeSet(set);
  if (options.out !== undefined) {
    writeFileSync(options.out, `${text}\n`, { mode: 0o600 });
    chmodSync(options.out, 0o600);
    note(`Wrote the set to ${options.out}.`);
  } else {
    out(text);
  }
  if (options["write-dev-vars"]) {
    writeDevVar(devVarsPath(options), VAR, text, comment);
    note(`Updated ${VAR} in ${devVarsPath(options)}; restart \`npm start\` to use it.`);
  }
  return text;
}

function uploadStep(options: Common): string {
  const step = `npx wrangler secret put ${VAR} --env ${options.env ?? "production"} < ${options.out ?? "set.json"}`;
  return options.out === undefined ? `${step}   (set.json: the set printed on stdout)` : step;
}

async function generate(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON, alg: { type: "string" } });
  if (positionals.length > 0) throw new UsageError("generate takes no positional arguments");
  if (values.from !== undefined) throw new UsageError("generate starts a new set; --from is for rotate and retire");
  const key = await generateSigningJwk(algOption(values.alg));
  emit({ keys: [key] }, values, "Identity signing keys (JWK Set, private): the first signs, all are published.");
  note(`Generated ${key.alg} key ${key.kid}.\nTo deploy: ${uploadStep(values)}  (then delete the file)`);
  return 0;
}

async function rotate(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON,
    phase: { type: "string" },
    alg: { type: "string" },
    kid: { type: "string" },
  });
  if (positionals.length > 0) throw new UsageError("rotate takes no positional arguments");
  if (values.phase === "publish") {
    if (values.kid !== undefined) throw new UsageError("--kid is for --phase activate");
    const current = readCurrent(values);
    const key = await generateSigningJwk(
      values.alg === undefined ? undefined : algOption(values.alg),
      nextKeyTime(current),
    );
    emit(publishKey(current, key), values, "Identity signing keys: rotation phase 1 (publish) done.");
    note(
      [
        `Phase 1/3 done: ${key.kid} (${key.alg}) is published; ${current.keys[0]!.kid} still signs.`,
        `Next: 1. ${uploadStep(values)}`,
        `      2. wait at least ${WAIT_PUBLISH_S} s (JWKS max-age ${JWKS_MAX_AGE_S} s + ~${PROPAGATION_S} s propagation)`,
        `      3. npm run -s signing-keys -- rotate --phase activate --from <the set just printed>`,
      ].join("\n"),
    );
    return 0;
  }
  if (values.phase === "activate") {
    if (values.alg !== undefined) throw new UsageError("--alg is for --phase publish");
    const current = readCurrent(values);
    let result;
    try {
      result = activateKey(current, values.kid);
    } catch (error) {
      throw new CliError(error instanceof Error ? error.message : String(error));
    }
    emit(result.set, values, "Identity signing keys: rotation phase 2 (activate) done.");
    const previous = current.keys[0]!.kid;
    note(
      result.changed
        ? [
            `Phase 2/3 done: ${result.kid} signs now; ${previous} stays published.`,
            `Next: 1. ${uploadStep(values)}`,
            `      2. wait at least ${WAIT_ACTIVATE_S} s (token lifetime ${TOKEN_LIFETIME_S} s + ${CLOCK_SKEW_S} s skew + ~${PROPAGATION_S} s propagation)`,
            `      3. npm run -s signing-keys -- retire ${previous} --from <the set just printed>`,
          ].join("\n")
        : `${result.kid} already signs; the set is unchanged (run --phase publish first to add a new key).`,
    );
    return 0;
  }
  throw new UsageError("rotate needs --phase publish or --phase activate");
}

async function retire(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, COMMON);
  if (positionals.length !== 1) throw new UsageError("retire takes one KID");
  const kid = positionals[0]!;
  const current = readCurrent(values);
  let next: JwkSet;
  try {
    next = retireKey(current, kid);
  } catch (error) {
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
  emit(next, values, "Identity signing keys: rotation phase 3 (retire) done.");
  note(`Phase 3/3 done: ${kid} is no longer published; ${next.keys[0]!.kid} signs.\nNext: ${uploadStep(values)}`);
  return 0;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { generate, rotate, retire };

reserveStdout();
await runMain(
  () => dispatch(process.argv.slice(2), COMMANDS, USAGE),
  "Run `npm run signing-keys -- --help` for usage.",
);
