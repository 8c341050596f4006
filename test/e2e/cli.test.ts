/**
 * The command-line tools as real processes: `keys` against a temp local KV state (read
 * back through wrangler's getPlatformProxy, i.e. what `wrangler dev` reads), the
 * `wrangler kv` adapter behind --remote run in local mode, and `signing-keys`.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createLocalJWKSet } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLocalKv, type OpenedKv } from "../../scripts/lib/kv-local.ts";
import { WranglerKv } from "../../scripts/lib/kv-wrangler.ts";
import { readDevVar } from "../../scripts/lib/dev-vars.ts";
import { activateKey, newestKid, nextKeyTime, type JwkSet } from "../../scripts/lib/signing.ts";
import { PROJECT_ROOT } from "../../scripts/lib/project.ts";
import { parseSigningKeys } from "../../src/identity/keys.ts";
import { signIdentity } from "../../src/identity/sign.ts";
import { KEY_ID_PATTERN, generateSecret, isWellFormedSecret } from "../../src/keys/format.ts";
import { hashSecret } from "../../src/keys/hash.ts";
import { isKeyRecord, kvKeys, type KeyRecord } from "../../src/keys/record.ts";
import { KeyStore, REVOCATION_BOUND_S } from "../../src/keys/store.ts";
import { createIdentityVerifier } from "../../src/verify/index.ts";
import { runScript } from "../support/run.ts";

const KEY_OBJECT_FIELDS = ["object", "key_id", "name", "created_at", "expires_at", "revoked_at", "last_used_at"];

let dir: string;
let persistDir: string;

const keys = (...args: string[]) => runScript("keys", [...args, "--persist-to", persistDir]);
const signing = (args: string[], input?: string) => runScript("signing-keys", args, { input });

/** The state as the local gateway sees it: a getPlatformProxy of our own over the same directory. */
let reader: OpenedKv | undefined;

async function readRecord(keyId: string): Promise<KeyRecord | null> {
  reader ??= await openLocalKv({ persistTo: persistDir });
  const value = await reader.kv.get(kvKeys.record(keyId), "json");
  return isKeyRecord(value) ? value : null;
}

/** The command printed one JSON document on one line, and nothing else. */
function expectSingleJson(stdout: string) {
  expect(stdout.endsWith("\n")).toBe(true);
  expect(stdout.trimEnd().split("\n")).toHaveLength(1);
  return JSON.parse(stdout);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nixflex-cli-"));
  persistDir = join(dir, "state");
});

afterAll(async () => {
  await reader?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("keys create / list / revoke / roll", () => {
  // biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON answer, read field by field
  let created: Record<string, any>;

  it("create --json prints one key object with key_id and key_secret, and stores only the hash", async () => {
    const result = await keys(
      "create",
      "--account",
      "acct_cli",
      "--name",
      "Production",
      "--expires-at",
      "2999-01-31T00:00:00+01:00",
      "--json",
    );
    expect(result.code).toBe(0);
    created = expectSingleJson(result.stdout);
    expect(Object.keys(created).sort()).toEqual([...KEY_OBJECT_FIELDS, "key_secret"].sort());
    expect(created).toMatchObject({
      object: "api_key",
      name: "Production",
      expires_at: "2999-01-30T23:00:00.000Z",
      revoked_at: null,
    });
    expect(created.key_id).toMatch(KEY_ID_PATTERN);
    expect(isWellFormedSecret(created.key_secret)).toBe(true);
    expect(result.stderr).not.toContain(created.key_secret);

    const record = await readRecord(created.key_id);
    expect(record).toMatchObject({
      account_id: "acct_cli",
      key_id: created.key_id,
      secret_hash: await hashSecret(created.key_secret),
    });
    expect(JSON.stringify(record)).not.toContain(created.key_secret);
  });

  it("create prints the secret once in its human summary, with control characters of the name neutralised", async () => {
    const result = await keys("create", "--account", "acct_cli", "--name", "Human\u001b[2J\r");
    expect(result.code).toBe(0);
    const secrets = result.stdout.match(/nxfs_[0-9A-Za-z]{64}/g) ?? [];
    expect(secrets).toHaveLength(1);
    expect(result.stdout).toContain("shown only now");
    expect(result.stdout).toContain("Human\uFFFD[2J\uFFFD");
    expect(result.stdout).not.toMatch(/[\u001b\r]/);
  });

  it("list shows only the named account's keys", async () => {
    const result = await keys("list", "--account", "acct_other", "--json");
    expect(result.code).toBe(0);
    expect(result.json).toEqual({ data: [] });
  });

  it("answers an unknown key_id with exit 1", async () => {
    const result = await keys("revoke", `nxf_${"a".repeat(32)}`);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no key nxf_a{32}/);
  });
  it('list --json prints {"data":[…]} newest first, without secrets or hashes', async () => {
    const result = await keys("list", "--account", "acct_cli", "--json");
    expect(result.code).toBe(0);
    const listed = expectSingleJson(result.stdout);
    expect(Object.keys(listed)).toEqual(["data"]);
    expect(listed.data.map((k: { name: string }) => k.name).sort()).toEqual(["Human\u001b[2J\r", "Production"]);
    const created = listed.data.map((k: { created_at: string }) => k.created_at);
    expect(created).toEqual([...created].sort().reverse());
    for (const key of listed.data) expect(Object.keys(key).sort()).toEqual([...KEY_OBJECT_FIELDS].sort());
    expect(result.stdout).not.toMatch(/nxfs_|sha256:|secret_hash|key_secret/);
  });

  it("roll --json gives a new secret; the old one stays valid for the grace period", async () => {
    const result = await keys("roll", created.key_id, "--grace-period-seconds", "120", "--json");
    expect(result.code).toBe(0);
    const rolled = expectSingleJson(result.stdout);
    expect(rolled.key_id).toBe(created.key_id);
    expect(isWellFormedSecret(rolled.key_secret)).toBe(true);
    expect(rolled.key_secret).not.toBe(created.key_secret);
    const record = (await readRecord(created.key_id))!;
    expect(record.secret_hash).toBe(await hashSecret(rolled.key_secret));
    expect(record.previous_secret_hash).toBe(await hashSecret(created.key_secret));
    const graceEnds = Date.parse(record.previous_secret_expires_at!);
    expect(graceEnds - Date.now()).toBeGreaterThan(60_000);
    expect(graceEnds - Date.now()).toBeLessThanOrEqual(120_000);
  });

  it("revoke prints the revocation bound; --json carries it; a second revoke keeps the first time", async () => {
    const human = await keys("revoke", created.key_id);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`within ${REVOCATION_BOUND_S} s`);
    const again = await keys("revoke", created.key_id, "--json");
    expect(again.code).toBe(0);
    const revoked = expectSingleJson(again.stdout);
    expect(revoked.revocation_bound_seconds).toBe(REVOCATION_BOUND_S);
    expect(revoked.revoked_at).toBe((await readRecord(created.key_id))!.revoked_at);
    expect(human.stdout).toContain(revoked.revoked_at);
    expect(again.stdout).not.toMatch(/nxfs_/);
  });

  it("refuses to roll a revoked key (exit 1, nothing on stdout)", async () => {
    const result = await keys("roll", created.key_id, "--json");
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/revoked/);
  });

  it("creates keys from several CLI processes at once (the local state is one SQLite database)", async () => {
    const results = await Promise.all(
      [1, 2, 3].map((n) => keys("create", "--account", "acct_parallel", "--name", `Parallel ${n}`, "--json")),
    );
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    const ids = results.map((result) => result.json.key_id);
    expect(new Set(ids).size).toBe(3);
    const listed = await keys("list", "--account", "acct_parallel", "--json");
    expect(listed.json.data.map((k: { key_id: string }) => k.key_id).sort()).toEqual([...ids].sort());
  });
});

describe("keys: bad usage exits 2 with a message, before touching any store", () => {
  const cases: [string, string[], RegExp][] = [
    ["no command", [], /no command/],
    ["unknown command", ["delete", "x"], /unknown command/],
    ["create without --account", ["create", "--name", "n"], /--account/],
    ["create without --name", ["create", "--account", "a"], /--name/],
    ["account with a colon", ["create", "--account", "acct:1", "--name", "n"], /--account must match/],
    ["account too long", ["create", "--account", "a".repeat(65), "--name", "n"], /--account must match/],
    ["empty name", ["create", "--account", "a", "--name", ""], /--name must be/],
    ["name over 100 characters", ["create", "--account", "a", "--name", "n".repeat(101)], /--name must be/],
    [
      "expires-at in the past",
      ["create", "--account", "a", "--name", "n", "--expires-at", "2001-01-01T00:00:00Z"],
      /future/,
    ],
    [
      "expires-at without a zone",
      ["create", "--account", "a", "--name", "n", "--expires-at", "2999-01-01T00:00:00"],
      /ISO 8601/,
    ],
    ["expires-at not a date", ["create", "--account", "a", "--name", "n", "--expires-at", "tomorrow"], /ISO 8601/],
    ["unknown option", ["list", "--account", "a", "--limit", "5"], /Unknown option/],
    ["revoke without KEY_ID", ["revoke"], /needs a KEY_ID/],
    ["revoke with a malformed KEY_ID", ["revoke", "nxf_XYZ"], /KEY_ID must look like/],
    ["roll with grace over a day", ["roll", `nxf_${"b".repeat(32)}`, "--grace-period-seconds", "86401"], /0 to 86400/],
    ["roll with negative grace", ["roll", `nxf_${"b".repeat(32)}`, "--grace-period-seconds=-1"], /0 to 86400/],
    ["check without an argument", ["check"], /check takes one argument/],
    [
      "--remote with --persist-to",
      ["list", "--account", "a", "--remote", "--persist-to", "x"],
      /--persist-to is for local/,
    ],
  ];

  it.concurrent.for(cases)("%s", async ([, args, message], { expect }) => {
    const result = await runScript("keys", args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(message);
  });

  it.concurrent("never echoes a secret given in a bad command line", async ({ expect }) => {
    const secret = generateSecret();
    const result = await runScript("keys", ["create", secret, "--account", "a", "--name", "n"]);
    expect(result.code).toBe(2);
    expect(result.stderr).not.toContain(secret);
  });
});

describe("keys check (offline, no store)", () => {
  const secret = generateSecret();
  const tampered = secret.slice(0, 10) + (secret[10] === "x" ? "y" : "x") + secret.slice(11);
  const cases: [string, number, string][] = [
    ["a valid secret", 0, secret],
    ["a valid KEY_ID:SECRET pair", 0, `nxf_${"c".repeat(32)}:${secret}`],
    ["one changed character (checksum)", 1, tampered],
    ["a truncated secret", 1, secret.slice(0, -1)],
    ["the wrong prefix", 1, `nxfx_${secret.slice(5)}`],
    ["a malformed key_id in a pair", 1, `nxf_C:${secret}`],
    ["non-base62 characters", 1, `${secret.slice(0, -2)}-_`],
  ];

  it.concurrent.for(cases)("%s → exit %s, without echoing the input", async ([, code, candidate], { expect }) => {
    const result = await runScript("keys", ["check", candidate]);
    expect(result.code).toBe(code);
    expect(result.stdout).toMatch(code === 0 ? /^valid/ : /^invalid/);
    expect(result.stdout + result.stderr).not.toContain(secret.slice(5, 30));
  });

  it.concurrent("reads the candidate from stdin with '-', and --json says why", async ({ expect }) => {
    const good = await runScript("keys", ["check", "-", "--json"], { input: `${secret}\n` });
    expect(good.code).toBe(0);
    expect(expectSingleJson(good.stdout)).toEqual({ valid: true });
    const bad = await runScript("keys", ["check", "-", "--json"], { input: tampered });
    expect(bad.code).toBe(1);
    expect(expectSingleJson(bad.stdout)).toEqual({ valid: false, reason: expect.stringMatching(/checksum/) });
  });

  it.concurrent("runs through the npm script", async ({ expect }) => {
    const { stdout } = await promisify(execFile)("npm", ["run", "-s", "keys", "--", "check", secret], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, PATH: `${join(PROJECT_ROOT, "node_modules", ".bin")}:${process.env.PATH}` },
    });
    expect(stdout).toMatch(/^valid/);
  });
});

describe("wrangler kv adapter (what --remote uses), run against local state", () => {
  let adapterDir: string;
  let adapter: WranglerKv;
  let proxy: OpenedKv;

  beforeAll(async () => {
    adapterDir = join(dir, "adapter");
    adapter = new WranglerKv({ target: { remote: false, persistTo: adapterDir } });
    proxy = await openLocalKv({ persistTo: adapterDir });
  });

  afterAll(async () => {
    await proxy?.close();
  });

  it("reads what getPlatformProxy wrote, and writes what it reads (get, bulk get, put, list with cursor)", async () => {
    await proxy.kv.put("t:a", JSON.stringify({ n: 1 }));
    await proxy.kv.put("t:b", "2026-11-26T00:00:00.000Z");
    await proxy.kv.put("t:c", JSON.stringify({ n: 3 }));
    // Each call is a wrangler process: independent ones run side by side.
    const [, a, b, missing, bulk, first] = await Promise.all([
      adapter.put("u:written", JSON.stringify({ by: "adapter" })),
      adapter.get("t:a", "json"),
      adapter.get("t:b", { type: "text", cacheTtl: 60 }),
      adapter.get("t:missing", "json"),
      adapter.get(["t:a", "t:c", "t:missing"], "json"),
      adapter.list({ prefix: "t:", limit: 2 }),
    ]);
    expect(a).toEqual({ n: 1 });
    expect(b).toBe("2026-11-26T00:00:00.000Z");
    expect(missing).toBeNull();
    expect([...(bulk as Map<string, unknown>).entries()]).toEqual([
      ["t:a", { n: 1 }],
      ["t:c", { n: 3 }],
      ["t:missing", null],
    ]);
    expect(await proxy.kv.get("u:written", "json")).toEqual({ by: "adapter" });
    expect(first.keys.map((k) => k.name)).toEqual(["t:a", "t:b"]);
    expect(first.list_complete).toBe(false);

    const second = await adapter.list({ prefix: "t:", limit: 2, cursor: (first as { cursor: string }).cursor });
    expect(second.keys.map((k) => k.name)).toEqual(["t:c"]);
    expect(second.list_complete).toBe(true);
  });

  it("runs the Worker's KeyStore: keys revoke --via-wrangler (--remote's code path) changes what getPlatformProxy reads", async () => {
    const { key } = await new KeyStore(proxy.kv).create("acct_adapter", { name: "via wrangler", expiresAt: null });
    const [revoked, listed] = await Promise.all([
      runScript("keys", ["revoke", key.key_id, "--persist-to", adapterDir, "--via-wrangler", "--json"]),
      new KeyStore(adapter.asKvNamespace(), { timeoutMs: 120_000 }).list("acct_adapter", { limit: 10 }),
    ]);
    expect(listed.data.map((k) => k.key_id)).toEqual([key.key_id]);
    expect(revoked.code).toBe(0);
    expect(revoked.json).toMatchObject({
      key_id: key.key_id,
      revoked_at: expect.any(String),
      revocation_bound_seconds: REVOCATION_BOUND_S,
    });
    const after = await proxy.kv.get(kvKeys.record(key.key_id), "json");
    expect((after as KeyRecord).revoked_at).toBe(revoked.json.revoked_at);
  });

  it("reports a wrangler failure with wrangler's reason", async () => {
    const broken = new WranglerKv({ target: { remote: false, persistTo: adapterDir }, binding: "NO_SUCH_BINDING" });
    await expect(broken.get("t:b")).rejects.toThrow(/wrangler kv key get failed/);
    expect(broken.lastError).toMatch(/NO_SUCH_BINDING/);
  });
});

describe("signing-keys", () => {
  const kidPattern = /^nx-\d{8}T\d{6}Z-[\w-]{8}$/;

  it.concurrent.for<[string, string]>([
    ["EdDSA", "OKP"],
    ["ES256", "EC"],
  ])(
    "generate --alg %s prints a JWK Set the gateway accepts, with a key that signs verifiable tokens",
    async ([alg, kty], { expect }) => {
      const result = await signing(["generate", "--alg", alg]);
      expect(result.code).toBe(0);
      const set = parseSigningKeys(result.stdout.trim());
      expect(set.keys).toHaveLength(1);
      expect(set.active).toMatchObject({ alg, kid: expect.stringMatching(kidPattern) });
      expect(set.active.privateJwk).toMatchObject({ kty, d: expect.any(String) });
      expect(set.active.publicJwk).toMatchObject({ kty, use: "sig", alg });
      expect(JSON.parse(set.jwksBody).keys[0]).not.toHaveProperty("d");
      expect(result.stderr).toContain("wrangler secret put IDENTITY_SIGNING_KEYS --env production");

      const token = await signIdentity(set, {
        issuer: "https://api.nixflex.com",
        audience: "nixflex-engine",
        accountId: "acct_1",
        keyId: `nxf_${"d".repeat(32)}`,
        requestId: "req-1",
        method: "GET",
        path: "/v1/x",
        now: Math.floor(Date.now() / 1000),
      });
      const verify = createIdentityVerifier({ keys: createLocalJWKSet(JSON.parse(set.jwksBody)) });
      await expect(verify.verifyFacts({ method: "GET", path: "/v1/x", token })).resolves.toMatchObject({
        accountId: "acct_1",
      });
    },
  );

  it.concurrent("rotates in three phases: publish appends, activate moves the new key first, retire drops the old", async ({
    expect,
  }) => {
    const initial = (await signing(["generate"])).stdout;
    const oldKid = parseSigningKeys(initial.trim()).active.kid;

    const published = await signing(["rotate", "--phase", "publish", "--from", "-"], initial);
    expect(published.code).toBe(0);
    const afterPublish = parseSigningKeys(published.stdout.trim());
    expect(afterPublish.keys.map((k) => k.kid)[0]).toBe(oldKid);
    expect(afterPublish.keys).toHaveLength(2);
    const newKid = afterPublish.keys[1]!.kid;
    expect(newKid).toMatch(kidPattern);
    expect(published.stderr).toMatch(/wait at least 360 s/);

    const activated = await signing(["rotate", "--phase", "activate", "--from", "-"], published.stdout);
    expect(activated.code).toBe(0);
    expect(parseSigningKeys(activated.stdout.trim()).keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    expect(activated.stderr).toMatch(/wait at least 125 s/);

    const again = await signing(["rotate", "--phase", "activate", "--from", "-"], activated.stdout);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(activated.stdout);
    expect(again.stderr).toMatch(/already signs/);

    const retired = await signing(["retire", oldKid, "--from", "-"], activated.stdout);
    expect(retired.code).toBe(0);
    expect(parseSigningKeys(retired.stdout.trim()).keys.map((k) => k.kid)).toEqual([newKid]);
  });

  it("gives a key published within the same second as the newest one a later kid, so activate picks it", () => {
    const now = new Date("2026-11-26T12:00:00.400Z");
    const set = { keys: [{ kid: "nx-20261126T120000Z-aaaaaaaa" }, { kid: "hand-made" }] } as unknown as JwkSet;
    const next = nextKeyTime(set, now);
    expect(next.toISOString()).toBe("2026-11-26T12:00:01.000Z");
    expect(nextKeyTime(set, new Date("2026-11-26T12:00:05.000Z")).toISOString()).toBe("2026-11-26T12:00:05.000Z");
    const published = { keys: [...set.keys, { kid: "nx-20261126T120001Z-bbbbbbbb" }] } as unknown as JwkSet;
    expect(newestKid(published)).toBe("nx-20261126T120001Z-bbbbbbbb");
    expect(activateKey(published).set.keys.map((k) => k.kid)).toEqual([
      "nx-20261126T120001Z-bbbbbbbb",
      "nx-20261126T120000Z-aaaaaaaa",
      "hand-made",
    ]);
    expect(activateKey(activateKey(published).set).changed).toBe(false);
  });

  it.concurrent("refuses to retire the signing key or an unknown kid, and an invalid current set (exit 1)", async ({
    expect,
  }) => {
    const set = (await signing(["generate"])).stdout;
    const active = parseSigningKeys(set.trim()).active.kid;
    expect((await signing(["retire", active, "--from", "-"], set)).code).toBe(1);
    expect((await signing(["retire", "nx-nope", "--from", "-"], set)).code).toBe(1);
    const invalid = await signing(
      ["rotate", "--phase", "publish", "--from", "-"],
      '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA","kid":"public-only"}]}',
    );
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/not a private key/);
  });

  it.concurrent.for<[string, string[]]>([
    ["no phase", ["rotate", "--from", "-"]],
    ["unknown phase", ["rotate", "--phase", "now", "--from", "-"]],
    ["unsupported alg", ["generate", "--alg", "RS256"]],
    ["retire without a kid", ["retire", "--from", "-"]],
  ])("bad usage (%s) exits 2", async ([, args], { expect }) => {
    const result = await signing(args, "{}");
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
  });

  it.concurrent("--write-dev-vars updates only IDENTITY_SIGNING_KEYS in the .dev.vars file, kept private", async ({
    expect,
  }) => {
    const devVars = join(dir, "dev.vars");
    writeFileSync(devVars, "# local settings\nOTHER=kept\n");
    const generated = await signing(["generate", "--dev-vars", devVars, "--write-dev-vars"]);
    expect(generated.code).toBe(0);
    const published = await signing(["rotate", "--phase", "publish", "--dev-vars", devVars, "--write-dev-vars"]);
    expect(published.code).toBe(0);
    expect(readDevVar(devVars, "IDENTITY_SIGNING_KEYS")).toBe(published.stdout.trim());
    expect(readDevVar(devVars, "OTHER")).toBe("kept");
    expect(readFileSync(devVars, "utf8").match(/IDENTITY_SIGNING_KEYS=/g)).toHaveLength(1);
    expect(statSync(devVars).mode & 0o777).toBe(0o600);
  });

  it.concurrent("--help explains the three phases and the waits between them", async ({ expect }) => {
    const help = await signing(["--help"]);
    expect(help.code).toBe(0);
    for (const text of [
      "rotate --phase publish",
      "rotate --phase activate",
      "retire OLD_KID",
      "max-age=300",
      "30 s cooldown",
      "wrangler secret put",
    ]) {
      expect(help.stdout).toContain(text);
    }
  });
});
