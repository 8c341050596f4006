/**
 * `npm run keys -- <command>`: bootstrap and manage API keys from a shell (SPEC §5).
 *
 * Every change goes through the gateway's operator API (src/routes/operator.ts), the same
 * route objects, validation, answers and error codes as `/v1/keys`, so a change made here
 * is in force on the gateway's very next request and in its audit log as `operator:…`.
 * Locally it reaches the running `npm start` gateway (or starts one for the call on the
 * same state); with --remote the deployed gateway through Cloudflare Access
 * (scripts/lib/operator-client.ts). `check` stays offline.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ACCOUNT_ID_PATTERN, KEY_ID_PATTERN, KEY_SECRET_PATTERN, isWellFormedSecret } from "../src/keys/format.ts";
import type { KeyObject } from "../src/keys/record.ts";
import { CliError, UsageError, dispatch, out, parse, reserveStdout, runMain } from "./lib/cli.ts";
import { type CallOutcome, LOCAL_GATEWAY_URL, OperatorClient, REMOTE_GATEWAY_URL } from "./lib/operator-client.ts";
import { DEV_VARS } from "./lib/project.ts";

const USAGE = `Usage: npm run keys -- <command> [options]

Commands
  create --account ACCOUNT_ID --name NAME [--expires-at ISO]   create a key; prints its secret once
  list   --account ACCOUNT_ID [--limit N] [--cursor C]         list an account's keys, newest first
                                                              (every page, or the one page asked for)
  revoke KEY_ID                                               revoke a key (idempotent)
  roll   KEY_ID [--grace-period-seconds N]                    give a key a new secret; the old one
                                                              keeps working N seconds (0..86400, default 0)
  check  SECRET | KEY_ID:SECRET | -                           offline format + checksum check (no gateway);
                                                              "-" reads it from stdin, out of shell history

Every command but check goes through the gateway's operator API, which validates exactly as
POST /v1/keys does (a name is 1-100 Unicode code points without control characters; an expiry
is an RFC 3339 date-time with a zone, in the future) and answers in the same fields.

Which gateway
  (default)            the local gateway of \`npm start\`: --gateway, else $NIXFLEX_GATEWAY_URL, else
                       ${LOCAL_GATEWAY_URL}, authenticated with OPERATOR_TOKEN from .dev.vars (created
                       when missing). When nothing answers there, a gateway is started for the call
                       on the same local state and stopped after (a few seconds).
  --gateway URL        the gateway's origin
  --persist-to DIR     the local state a started gateway uses (as \`wrangler dev --persist-to\`)
  --dev-vars FILE      another .dev.vars (its OPERATOR_TOKEN; the secrets of a started gateway)
  --remote             the deployed gateway (default ${REMOTE_GATEWAY_URL}) through Cloudflare Access:
                       CF_ACCESS_CLIENT_ID + CF_ACCESS_CLIENT_SECRET (a service token), or
                       CF_ACCESS_TOKEN (\`cloudflared access token --app URL\`)

Output
  --json               exactly one JSON object on stdout, nothing else, in the API's fields: create
                       and roll print the key object plus key_secret, list the page
                       {"data":[…],"has_more":…,"next_cursor":…}, revoke the key object plus
                       revocation_propagation_seconds. Without it, a human summary.
                       (Through npm, use \`npm run -s keys -- …\` so npm prints no banner.)

Exit codes: 0 done, 1 failed (no such key, gateway unreachable or refusing the credential,
invalid secret for check), 2 bad usage (including what the gateway rejects as invalid input).
Account ids match ${ACCOUNT_ID_PATTERN.source}. A secret is only ever printed by create and roll.`;

const COMMON = {
  gateway: { type: "string" },
  remote: { type: "boolean" },
  "persist-to": { type: "string" },
  "dev-vars": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Common = { gateway?: string; remote?: boolean; "persist-to"?: string; "dev-vars"?: string; json?: boolean };

function required(value: string | undefined, flag: string, what: string): string {
  if (value === undefined) throw new UsageError(`${flag} ${what} is required`);
  return value;
}

function keyIdArgument(positionals: string[], command: string): string {
  const [keyId, ...extra] = positionals;
  if (keyId === undefined) throw new UsageError(`${command} needs a KEY_ID`);
  if (extra.length > 0) throw new UsageError(`${command} takes one KEY_ID`);
  return keyId;
}

function noPositionals(positionals: string[], command: string): void {
  if (positionals.length > 0) throw new UsageError(`${command} takes no positional arguments`);
}

/** A number option as the API reads it: a JSON number when it is one, else the text (the gateway says what is wrong). */
function numberOrText(raw: string): number | string {
  return /^-?\d+(?:\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
}

/** Opens the gateway for one command, runs it, and stops a gateway started for it. */
async function withGateway<T>(options: Common, use: (client: OperatorClient) => Promise<T>): Promise<T> {
  const client = await OperatorClient.open({
    gateway: options.gateway,
    remote: options.remote,
    persistTo: options["persist-to"],
    devVars: options["dev-vars"] === undefined ? DEV_VARS : resolve(process.cwd(), options["dev-vars"]),
  });
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

/**
 * A success's value, or the gateway's error as the CLI's: invalid input is bad usage (exit
 * 2, the gateway's message says what to fix), an unknown key and a refused change exit 1.
 */
function settled(outcome: CallOutcome, client: OperatorClient, keyId?: string): Record<string, unknown> {
  if (outcome.ok) return outcome.value as Record<string, unknown>;
  const { code, message, status } = outcome.error;
  if (code === "key_not_found") throw new CliError(`no key ${keyId} at ${client.where}`);
  if (status === 400 && code !== "key_revoked" && code !== "key_expired") {
    throw new CliError(`${message} (${code})`, 2);
  }
  throw new CliError(`${message} (${code}, HTTP ${status} from ${client.where})`);
}

/** Prints the JSON answer as is, or a human summary. */
function print(json: boolean | undefined, value: unknown, human: () => string): number {
  out(json ? JSON.stringify(value) : human());
  return 0;
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
  const accountId = required(values.account, "--account", "ACCOUNT_ID");
  const name = required(values.name, "--name", "NAME");
  const input = values["expires-at"] === undefined ? { name } : { name, expires_at: values["expires-at"] };
  return withGateway(values, async (client) => {
    const path = `/accounts/${encodeURIComponent(accountId)}/keys`;
    const created = settled(await client.call("POST", path, input), client);
    const key = created as unknown as KeyObject & { key_secret: string };
    return print(values.json, created, () =>
      [
        `Created a key for account ${accountId} through ${client.where}.`,
        "",
        `  key_id      ${key.key_id}`,
        `  key_secret  ${key.key_secret}`,
        `  name        ${printable(key.name)}`,
        `  expires_at  ${key.expires_at ?? "never"}`,
        "",
        "The secret is shown only now and cannot be recovered; store it in a secret manager.",
        "Send it as:  Authorization: Bearer KEY_ID:KEY_SECRET",
      ].join("\n"),
    );
  });
}

interface Page {
  data: KeyObject[];
  has_more: boolean;
  next_cursor: string | null;
}

async function list(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON,
    account: { type: "string" },
    limit: { type: "string" },
    cursor: { type: "string" },
  });
  noPositionals(positionals, "list");
  const accountId = required(values.account, "--account", "ACCOUNT_ID");
  const onePage = values.limit !== undefined || values.cursor !== undefined;
  return withGateway(values, async (client) => {
    const pageAt = async (cursor: string | undefined, limit: string): Promise<Page> => {
      const query = new URLSearchParams({ limit });
      if (cursor !== undefined) query.set("cursor", cursor);
      const path = `/accounts/${encodeURIComponent(accountId)}/keys?${query}`;
      return settled(await client.call("GET", path), client) as unknown as Page;
    };
    let page: Page;
    if (onePage) page = await pageAt(values.cursor, values.limit ?? "10");
    else {
      // Every page, printed as one: the same shape, with nothing more to fetch.
      const data: KeyObject[] = [];
      let cursor: string | undefined;
      do {
        const next = await pageAt(cursor, "100");
        data.push(...next.data);
        cursor = next.next_cursor ?? undefined;
      } while (cursor !== undefined);
      page = { data, has_more: false, next_cursor: null };
    }
    return print(values.json, page, () => {
      if (page.data.length === 0) return `No keys for account ${accountId} at ${client.where}.`;
      const now = Date.now();
      const rows = [["KEY_ID", "NAME", "STATUS", "CREATED", "EXPIRES", "LAST USED"]];
      for (const key of page.data) {
        rows.push([
          key.key_id,
          printable(key.name),
          status(key, now),
          key.created_at,
          key.expires_at ?? "-",
          key.last_used_at ?? "-",
        ]);
      }
      const more = page.has_more ? `\nMore: --cursor ${page.next_cursor}` : "";
      return `${table(rows)}\n\n${page.data.length} key(s) for account ${accountId} at ${client.where}.${more}`;
    });
  });
}

async function revoke(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, COMMON);
  const keyId = keyIdArgument(positionals, "revoke");
  return withGateway(values, async (client) => {
    const before = Date.now();
    const revoked = settled(await client.call("DELETE", `/keys/${encodeURIComponent(keyId)}`), client, keyId);
    const key = revoked as unknown as KeyObject & { revocation_propagation_seconds: number };
    return print(values.json, revoked, () => {
      const already = key.revoked_at !== null && Date.parse(key.revoked_at) < before - 1_000;
      return [
        already
          ? `Key ${keyId} was already revoked at ${key.revoked_at}; nothing changed.`
          : `Revoked key ${keyId} ("${printable(key.name)}") at ${key.revoked_at} through ${client.where}.`,
        `That gateway refuses it from its very next request; every gateway everywhere within ${key.revocation_propagation_seconds} s.`,
      ].join("\n");
    });
  });
}

async function roll(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON, "grace-period-seconds": { type: "string" } });
  const keyId = keyIdArgument(positionals, "roll");
  const raw = values["grace-period-seconds"];
  const input = raw === undefined ? {} : { grace_period_seconds: numberOrText(raw) };
  return withGateway(values, async (client) => {
    const path = `/keys/${encodeURIComponent(keyId)}/roll`;
    const rolled = settled(await client.call("POST", path, input), client, keyId);
    const key = rolled as unknown as KeyObject & { key_secret: string };
    const grace = typeof input.grace_period_seconds === "number" ? input.grace_period_seconds : 0;
    return print(values.json, rolled, () =>
      [
        `Rolled key ${keyId} through ${client.where}.`,
        "",
        `  key_id      ${key.key_id}`,
        `  key_secret  ${key.key_secret}`,
        "",
        "The new secret is shown only now; store it in a secret manager.",
        grace === 0
          ? "The old secret stopped working now."
          : `The old secret keeps working until about ${new Date(Date.now() + grace * 1000).toISOString()}.`,
      ].join("\n"),
    );
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
