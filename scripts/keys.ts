/**
 * `npm run keys -- <command>`: bootstrap and manage API keys from a shell (SPEC §5).
 *
 * It runs the Worker's own KeyStore (src/keys/store.ts) against either the local KV
 * state `wrangler dev` reads (through wrangler's getPlatformProxy) or, with --remote,
 * the deployed namespace (through `wrangler kv`), so records written here are exactly
 * the records the gateway verifies.
 */
import { readFileSync } from "node:fs";
import { ERRORS, GatewayError } from "../src/errors.ts";
import { ACCOUNT_ID_PATTERN, KEY_ID_PATTERN, KEY_SECRET_PATTERN, isWellFormedSecret } from "../src/keys/format.ts";
import { isKeyRecord, kvKeys, type KeyObject } from "../src/keys/record.ts";
import { KeyStore, RECORD_TTL_MS, REVOCATION_BOUND_S, type KeyChange } from "../src/keys/store.ts";
import { CliError, UsageError, dispatch, out, parse, reserveStdout, runMain } from "./lib/cli.ts";
import { WranglerKv } from "./lib/kv-wrangler.ts";

const USAGE = `Usage: npm run keys -- <command> [options]

Commands
  create --account ACCOUNT_ID --name NAME [--expires-at ISO]   create a key; prints its secret once
  list   --account ACCOUNT_ID                                 list an account's keys, newest first
  revoke KEY_ID                                               revoke a key (idempotent)
  roll   KEY_ID [--grace-period-seconds N]                    give a key a new secret; the old one
                                                              keeps working N seconds (0..86400, default 0)
  check  SECRET | KEY_ID:SECRET | -                           offline format + checksum check (no store);
                                                              "-" reads it from stdin, out of shell history

Where the keys live
  (default)            the local KV state that \`wrangler dev\` / \`npm start\` reads (.wrangler/state)
  --persist-to DIR     another local state directory (same meaning as \`wrangler dev --persist-to\`)
  --remote             the deployed namespace, through \`wrangler kv\` and your wrangler login;
                       pick the environment with --env production|staging
  --env NAME           a [env.NAME] section of wrangler.toml
  --via-wrangler       local state, but through the same \`wrangler kv\` adapter --remote uses

Output
  --json               exactly one JSON object on stdout, nothing else: create/roll print the key
                       object plus key_secret, list prints {"data":[…]}, revoke the key object plus
                       revocation_bound_seconds. Without it, a human summary.
                       (Through npm, use \`npm run -s keys -- …\` so npm prints no banner.)

Exit codes: 0 done, 1 failed (no such key, store unreachable, invalid secret for check), 2 bad usage.
Account ids match ${ACCOUNT_ID_PATTERN.source}. A secret is only ever printed by create and roll.`;

const NAME_MAX = 100;
const GRACE_MAX_S = 86_400;
// ISO 8601 date, or date-time with an explicit offset: a zone-less local time would mean
// different instants on different machines.
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(?:[Tt]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:\d{2}))?$/;

const COMMON = {
  remote: { type: "boolean" },
  "via-wrangler": { type: "boolean" },
  "persist-to": { type: "string" },
  env: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Common = { remote?: boolean; "via-wrangler"?: boolean; "persist-to"?: string; env?: string; json?: boolean };

function accountOption(value: string | undefined): string {
  if (value === undefined) throw new UsageError("--account ACCOUNT_ID is required");
  if (!ACCOUNT_ID_PATTERN.test(value)) {
    throw new UsageError(`--account must match ${ACCOUNT_ID_PATTERN.source} (letters, digits, _ and -, up to 64)`);
  }
  return value;
}

function nameOption(value: string | undefined): string {
  if (value === undefined) throw new UsageError("--name NAME is required");
  if (value.trim() === "" || value.length > NAME_MAX) throw new UsageError(`--name must be 1-${NAME_MAX} characters`);
  return value;
}

function expiresAtOption(value: string | undefined, now: number): string | null {
  if (value === undefined) return null;
  const ms = ISO_INSTANT.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new UsageError("--expires-at must be an ISO 8601 date or date-time with a zone, e.g. 2027-01-31T00:00:00Z");
  }
  if (ms <= now) throw new UsageError("--expires-at must be in the future");
  return new Date(ms).toISOString();
}

function keyIdArgument(positionals: string[], command: string): string {
  const [keyId, ...extra] = positionals;
  if (keyId === undefined) throw new UsageError(`${command} needs a KEY_ID`);
  if (extra.length > 0) throw new UsageError(`${command} takes one KEY_ID`);
  if (!KEY_ID_PATTERN.test(keyId))
    throw new UsageError(`KEY_ID must look like nxf_ followed by 32 lowercase hex characters`);
  return keyId;
}

function noPositionals(positionals: string[], command: string): void {
  if (positionals.length > 0) throw new UsageError(`${command} takes no positional arguments`);
}

/**
 * Within one command, the record read to find a key's account is the record the store
 * reads again right after: serve that second read from memory. Against --remote that is
 * one API round trip (one wrangler process) fewer per revoke and roll.
 */
function rememberReads(kv: KVNamespace): KVNamespace {
  const seen = new Map<string, string | null>();
  const typeOf = (arg: unknown) =>
    typeof arg === "string" ? arg : ((arg as { type?: string } | undefined)?.type ?? "text");
  const memo = {
    async get(key: string | string[], arg?: unknown) {
      const type = typeOf(arg);
      if (Array.isArray(key) || (type !== "text" && type !== "json"))
        return (kv.get as (k: unknown, a: unknown) => Promise<unknown>)(key, arg);
      if (!seen.has(key)) seen.set(key, await kv.get(key, "text"));
      const text = seen.get(key)!;
      return text === null || type === "text" ? text : JSON.parse(text);
    },
    async put(key: string, value: string, options?: KVNamespacePutOptions) {
      seen.delete(key);
      await kv.put(key, value, options);
    },
    list: (options?: KVNamespaceListOptions) => kv.list(options),
    async delete(key: string) {
      seen.delete(key);
      await kv.delete(key);
    },
  };
  return memo as unknown as KVNamespace;
}

/** An opened store plus what the messages need to say where it is. */
interface Opened {
  kv: KVNamespace;
  store: KeyStore;
  where: string;
  close(): Promise<void>;
  /** Turns a store failure into a message that says what went wrong and where. */
  explain(error: unknown): never;
}

async function openStore(options: Common): Promise<Opened> {
  if (options.remote && options["persist-to"] !== undefined)
    throw new UsageError("--persist-to is for local state; drop it with --remote");
  if (options.remote && options["via-wrangler"])
    throw new UsageError("--via-wrangler is for local state; drop it with --remote");
  const envLabel = options.env === undefined ? "" : `, env ${options.env}`;
  if (options.remote || options["via-wrangler"]) {
    const adapter = new WranglerKv({
      target: options.remote ? { remote: true } : { remote: false, persistTo: options["persist-to"] },
      environment: options.env,
    });
    const kv = rememberReads(adapter.asKvNamespace());
    const where = options.remote
      ? `the remote API_KEYS namespace${envLabel}`
      : `local state via wrangler kv${envLabel}`;
    return {
      kv,
      // Each wrangler call is a process (and, remotely, an API round trip): allow for it.
      store: new KeyStore(kv, { timeoutMs: 120_000 }),
      where,
      close: async () => {},
      explain(error) {
        const reason = adapter.lastError ?? (error instanceof Error ? error.message : String(error));
        const hint = options.remote
          ? " (is `wrangler login` done, and the namespace id in wrangler.toml real? try --env production)"
          : "";
        throw new CliError(`cannot use ${where}: ${reason}${hint}`);
      },
    };
  }
  const { openLocalKv } = await import("./lib/kv-local.ts");
  const local = await openLocalKv({ persistTo: options["persist-to"], environment: options.env });
  const kv = rememberReads(local.kv);
  return {
    kv,
    store: new KeyStore(kv, { timeoutMs: 30_000 }),
    where: `local state ${local.where}${envLabel}`,
    close: local.close,
    explain(error) {
      const reason =
        error instanceof GatewayError
          ? (error.detail ?? error.code)
          : error instanceof Error
            ? error.message
            : String(error);
      throw new CliError(`cannot use ${`local state ${local.where}`}: ${reason}`);
    },
  };
}

async function withStore<T>(options: Common, use: (opened: Opened) => Promise<T>): Promise<T> {
  const opened = await openStore(options);
  try {
    return await use(opened).catch((error: unknown) => {
      if (error instanceof CliError || error instanceof UsageError) throw error;
      return opened.explain(error);
    });
  } finally {
    await opened.close();
  }
}

/** The account a key belongs to, read from its record (revoke and roll are given only the key_id). */
async function accountOf(opened: Opened, keyId: string): Promise<string> {
  const record = await opened.kv.get(kvKeys.record(keyId), "json");
  if (!isKeyRecord(record) || record.key_id !== keyId) throw new CliError(`no key ${keyId} in ${opened.where}`);
  return record.account_id;
}

function settled(change: KeyChange, keyId: string, where: string): { key: KeyObject; secret?: string } {
  if (change.ok) return change;
  if (change.code === "key_not_found") throw new CliError(`no key ${keyId} in ${where}`);
  throw new CliError(ERRORS[change.code].message);
}

/**
 * A key name as it is safe to show on a terminal: names come from API callers, and a
 * control character (an ANSI escape, a carriage return) must not rewrite the operator's
 * screen. --json output keeps the name exact.
 */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "\uFFFD");
}

function status(key: KeyObject, now: number): string {
  if (key.revoked_at !== null) return "revoked";
  if (key.expires_at !== null && Date.parse(key.expires_at) <= now) return "expired";
  return "active";
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

async function create(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON,
    account: { type: "string" },
    name: { type: "string" },
    "expires-at": { type: "string" },
  });
  noPositionals(positionals, "create");
  const accountId = accountOption(values.account);
  const name = nameOption(values.name);
  const expiresAt = expiresAtOption(values["expires-at"], Date.now());
  return withStore(values, async (opened) => {
    const { key, secret } = await opened.store.create(accountId, { name, expiresAt });
    if (values.json) {
      out(JSON.stringify({ ...key, key_secret: secret }));
      return 0;
    }
    out(
      [
        `Created a key for account ${accountId} in ${opened.where}.`,
        "",
        `  key_id      ${key.key_id}`,
        `  key_secret  ${secret}`,
        `  name        ${printable(key.name)}`,
        `  expires_at  ${key.expires_at ?? "never"}`,
        "",
        "The secret is shown only now and cannot be recovered; store it in a secret manager.",
        "Send it as:  Authorization: Bearer KEY_ID:KEY_SECRET",
      ].join("\n"),
    );
    return 0;
  });
}

async function list(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON, account: { type: "string" } });
  noPositionals(positionals, "list");
  const accountId = accountOption(values.account);
  return withStore(values, async (opened) => {
    const data: KeyObject[] = [];
    let cursor: string | null = null;
    do {
      const page = await opened.store.list(accountId, { limit: 100, cursor });
      data.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor !== null);
    if (values.json) {
      out(JSON.stringify({ data }));
      return 0;
    }
    if (data.length === 0) {
      out(`No keys for account ${accountId} in ${opened.where}.`);
      return 0;
    }
    const now = Date.now();
    const rows = [["KEY_ID", "NAME", "STATUS", "CREATED", "EXPIRES", "LAST USED"]];
    for (const key of data) {
      rows.push([
        key.key_id,
        printable(key.name),
        status(key, now),
        key.created_at,
        key.expires_at ?? "-",
        key.last_used_at ?? "-",
      ]);
    }
    out(`${table(rows)}\n\n${data.length} key(s) for account ${accountId} in ${opened.where}.`);
    return 0;
  });
}

async function revoke(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, COMMON);
  const keyId = keyIdArgument(positionals, "revoke");
  return withStore(values, async (opened) => {
    const accountId = await accountOf(opened, keyId);
    const before = Date.now();
    const { key } = settled(await opened.store.revoke(accountId, keyId), keyId, opened.where);
    if (values.json) {
      out(JSON.stringify({ ...key, revocation_bound_seconds: REVOCATION_BOUND_S }));
      return 0;
    }
    const already = key.revoked_at !== null && Date.parse(key.revoked_at) < before;
    out(
      [
        already
          ? `Key ${keyId} (account ${accountId}) was already revoked at ${key.revoked_at}; nothing changed.`
          : `Revoked key ${keyId} ("${printable(key.name)}", account ${accountId}) at ${key.revoked_at} in ${opened.where}.`,
        `It fails everywhere within ${REVOCATION_BOUND_S} s (KV propagation + KV edge cache + isolate cache);` +
          ` a gateway that read the key in the last ${RECORD_TTL_MS / 1000} s may accept it until its cached copy expires.`,
      ].join("\n"),
    );
    return 0;
  });
}

async function roll(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON, "grace-period-seconds": { type: "string" } });
  const keyId = keyIdArgument(positionals, "roll");
  const raw = values["grace-period-seconds"] ?? "0";
  if (!/^\d+$/.test(raw) || Number(raw) > GRACE_MAX_S)
    throw new UsageError(`--grace-period-seconds must be an integer from 0 to ${GRACE_MAX_S}`);
  const grace = Number(raw);
  return withStore(values, async (opened) => {
    const accountId = await accountOf(opened, keyId);
    const { key, secret } = settled(await opened.store.roll(accountId, keyId, grace), keyId, opened.where);
    const previousUntil = grace > 0 ? new Date(Date.now() + grace * 1000).toISOString() : null;
    if (values.json) {
      out(JSON.stringify({ ...key, key_secret: secret, previous_secret_valid_for_seconds: grace }));
      return 0;
    }
    out(
      [
        `Rolled key ${keyId} (account ${accountId}) in ${opened.where}.`,
        "",
        `  key_id      ${key.key_id}`,
        `  key_secret  ${secret}`,
        "",
        "The new secret is shown only now; store it in a secret manager.",
        previousUntil === null
          ? "The old secret stopped working now."
          : `The old secret keeps working until about ${previousUntil}.`,
      ].join("\n"),
    );
    return 0;
  });
}

async function check(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: "boolean" }, help: { type: "boolean", short: "h" } });
  if (positionals.length !== 1)
    throw new UsageError("check takes one argument: SECRET, KEY_ID:SECRET, or - to read it from stdin");
  let candidate = positionals[0]!;
  if (candidate === "-") candidate = readFileSync(0, "utf8").trim();
  let reason: string | null = null;
  const colon = candidate.indexOf(":");
  if (colon !== -1 && !KEY_ID_PATTERN.test(candidate.slice(0, colon))) {
    reason = "the part before ':' is not a key_id (nxf_ followed by 32 lowercase hex characters)";
  }
  const secret = colon === -1 ? candidate : candidate.slice(colon + 1);
  if (reason === null && !KEY_SECRET_PATTERN.test(secret)) {
    reason = "not a key secret: expected nxfs_ followed by 64 characters from 0-9, A-Z, a-z";
  } else if (reason === null && !isWellFormedSecret(secret)) {
    reason = "the checksum does not match: a typo, or a truncated or altered copy";
  }
  if (values.json) out(JSON.stringify(reason === null ? { valid: true } : { valid: false, reason }));
  else
    out(
      reason === null
        ? "valid: format and checksum match (this does not say whether the key exists or is active)"
        : `invalid: ${reason}`,
    );
  return reason === null ? 0 : 1;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { create, list, revoke, roll, check };

reserveStdout();
await runMain(() => dispatch(process.argv.slice(2), COMMANDS, USAGE), "Run `npm run keys -- --help` for usage.");
