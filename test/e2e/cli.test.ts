/**
 * The command-line tools as real processes: `keys` through the operator API of a real
 * local gateway (test/support/stack.ts: `wrangler dev` + the demo engine), with no gateway
 * running (it starts one itself on the same state), and against a stand-in for a remote
 * gateway that records what --remote sends; `keys check` offline; `signing-keys`.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createLocalJWKSet } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDevVar } from "../../scripts/lib/dev-vars.ts";
import { openLocalKv } from "../../scripts/lib/kv-local.ts";
import { PROJECT_ROOT } from "../../scripts/lib/project.ts";
import { activateKey, newestKid, nextKeyTime, type JwkSet } from "../../scripts/lib/signing.ts";
import { parseSigningKeys } from "../../src/identity/keys.ts";
import { signIdentity } from "../../src/identity/sign.ts";
import { KEY_ID_PATTERN, generateSecret, isWellFormedSecret } from "../../src/keys/format.ts";
import { hashSecret } from "../../src/keys/hash.ts";
import { isKeyRecord, kvKeys, type KeyRecord } from "../../src/keys/record.ts";
import { KEY_CHANGE_BOUND_S } from "../../src/keys/sync.ts";
import { createIdentityVerifier } from "../../src/verify/index.ts";
import { runScript } from "../support/run.ts";
import { freePort, type Stack, startStack } from "../support/stack.ts";

const KEY_OBJECT_FIELDS = ["object", "key_id", "name", "created_at", "expires_at", "revoked_at", "last_used_at"];
const UNAUTHORIZED =
  '{"error":{"type":"authentication_error","code":"invalid_api_key","message":"Invalid or missing API key"}}';

let dir: string;

const signing = (args: string[], input?: string) => runScript("signing-keys", args, { input });

/** The command printed one JSON document on one line, and nothing else. */
function expectSingleJson(stdout: string) {
  expect(stdout.endsWith("\n")).toBe(true);
  expect(stdout.trimEnd().split("\n")).toHaveLength(1);
  return JSON.parse(stdout);
}

/** A record as the state holds it, read through wrangler's getPlatformProxy (what `wrangler dev` reads). */
async function readRecord(persistDir: string, keyId: string): Promise<KeyRecord | null> {
  const local = await openLocalKv({ persistTo: persistDir });
  try {
    const value = await local.kv.get(kvKeys.record(keyId), "json");
    return isKeyRecord(value) ? value : null;
  } finally {
    await local.close();
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nixflex-cli-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("keys create / list / revoke / roll, through a running local gateway", () => {
  let stack: Stack;
  // biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON answer, read field by field
  let created: Record<string, any>;
  const keys = (...args: string[]) => stack.keys(args);
  const api = (method: string, path: string, authorization: string, body?: unknown) =>
    fetch(`${stack.gatewayUrl}${path}`, {
      method,
      headers: { authorization, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  beforeAll(async () => {
    stack = await startStack();
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it("create --json prints one key object with key_secret, written by the gateway as operator:local", async () => {
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
    expect(result.code, result.stderr).toBe(0);
    created = expectSingleJson(result.stdout);
    expect(Object.keys(created)).toEqual([...KEY_OBJECT_FIELDS, "key_secret"]);
    expect(created).toMatchObject({
      object: "api_key",
      name: "Production",
      expires_at: "2999-01-30T23:00:00.000Z",
      revoked_at: null,
    });
    expect(created.key_id).toMatch(KEY_ID_PATTERN);
    expect(isWellFormedSecret(created.key_secret)).toBe(true);
    expect(result.stderr).not.toContain(created.key_secret);
    expect(result.stderr).not.toMatch(/starting one/);
    // The gateway made the change: its audit line names the operator; the key works at once.
    expect(stack.gatewayLog()).toMatch(
      new RegExp(`"event":"audit".*"target_key_id":"${created.key_id}".*"action":"create","actor":"operator:local"`),
    );
    const used = await api("GET", "/v1/agents", `Bearer ${created.key_id}:${created.key_secret}`);
    expect(used.status).toBe(200);
  });

  // 100 code points but 200 UTF-16 units: the API's limit counts code points, and so does the CLI now.
  const astral = "\u{1F600}".repeat(100);

  it("create prints the secret once in its human summary; a name of 100 astral characters is valid", async () => {
    const result = await keys("create", "--account", "acct_cli", "--name", astral);
    expect(result.code, result.stderr).toBe(0);
    const secrets = result.stdout.match(/nxfs_[0-9A-Za-z]{64}/g) ?? [];
    expect(secrets).toHaveLength(1);
    expect(result.stdout).toContain("shown only now");
    expect(result.stdout).toContain(astral);
  });

  it("list --json prints the API's page, newest first, without secrets or hashes; other accounts stay apart", async () => {
    const result = await keys("list", "--account", "acct_cli", "--json");
    expect(result.code, result.stderr).toBe(0);
    const listed = expectSingleJson(result.stdout);
    expect(Object.keys(listed)).toEqual(["data", "has_more", "next_cursor"]);
    expect(listed).toMatchObject({ has_more: false, next_cursor: null });
    expect(listed.data.map((k: { name: string }) => k.name)).toEqual([astral, "Production"]);
    for (const key of listed.data) expect(Object.keys(key)).toEqual(KEY_OBJECT_FIELDS);
    expect(result.stdout).not.toMatch(/nxfs_|sha256:|secret_hash|key_secret/);
    const other = await keys("list", "--account", "acct_other", "--json");
    expect(other.json).toEqual({ data: [], has_more: false, next_cursor: null });
  });

  it("list --limit prints one page with its cursor, as GET /v1/keys pages", async () => {
    const first = await keys("list", "--account", "acct_cli", "--limit", "1", "--json");
    expect(first.code, first.stderr).toBe(0);
    expect(first.json.data).toHaveLength(1);
    expect(first.json.has_more).toBe(true);
    const second = await keys(
      "list",
      "--account",
      "acct_cli",
      "--limit",
      "1",
      "--cursor",
      first.json.next_cursor,
      "--json",
    );
    expect(second.json.data.map((k: { name: string }) => k.name)).toEqual(["Production"]);
  });

  it("roll --json gives a new secret; the old one keeps working for the grace period", async () => {
    const result = await keys("roll", created.key_id, "--grace-period-seconds", "120", "--json");
    expect(result.code, result.stderr).toBe(0);
    const rolled = expectSingleJson(result.stdout);
    expect(Object.keys(rolled)).toEqual([...KEY_OBJECT_FIELDS, "key_secret"]);
    expect(rolled.key_id).toBe(created.key_id);
    expect(isWellFormedSecret(rolled.key_secret)).toBe(true);
    expect(rolled.key_secret).not.toBe(created.key_secret);
    expect((await api("GET", "/v1/agents", `Bearer ${created.key_id}:${rolled.key_secret}`)).status).toBe(200);
    expect((await api("GET", "/v1/agents", `Bearer ${created.key_id}:${created.key_secret}`)).status).toBe(200);
    const record = (await readRecord(stack.persistDir, created.key_id))!;
    expect(record.secret_hash).toBe(await hashSecret(rolled.key_secret));
    expect(record.previous_secret_hash).toBe(await hashSecret(created.key_secret));
    created.key_secret = rolled.key_secret;
  });

  it("revoke of a key in use: the very next request with it is the standard 401", async () => {
    const authorization = `Bearer ${created.key_id}:${created.key_secret}`;
    // Used just now, so the gateway holds the record in its cache (what a KV write alone could not reach).
    expect((await api("GET", "/v1/agents", authorization)).status).toBe(200);
    const human = await keys("revoke", created.key_id);
    expect(human.code, human.stderr).toBe(0);
    const refused = await api("GET", "/v1/agents", authorization);
    expect(refused.status).toBe(401);
    expect(await refused.text()).toBe(UNAUTHORIZED);
    expect(human.stdout).toContain("refuses it from its very next request");
    expect(human.stdout).toContain(`within ${KEY_CHANGE_BOUND_S} s`);
  });

  it("revoke --json prints the key object plus revocation_propagation_seconds; a second revoke keeps the first time", async () => {
    const again = await keys("revoke", created.key_id, "--json");
    expect(again.code, again.stderr).toBe(0);
    const revoked = expectSingleJson(again.stdout);
    expect(Object.keys(revoked)).toEqual([...KEY_OBJECT_FIELDS, "revocation_propagation_seconds"]);
    expect(revoked.revocation_propagation_seconds).toBe(KEY_CHANGE_BOUND_S);
    expect(revoked.revoked_at).toBe((await readRecord(stack.persistDir, created.key_id))!.revoked_at);
    expect(again.stdout).not.toMatch(/nxfs_/);
  });

  it("refuses to roll a revoked key (exit 1, nothing on stdout)", async () => {
    const result = await keys("roll", created.key_id, "--json");
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/revoked.*key_revoked/);
  });

  it("answers an unknown or malformed key_id with exit 1", async () => {
    for (const id of [`nxf_${"a".repeat(32)}`, "nxf_XYZ"]) {
      const result = await keys("revoke", id);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`no key ${id}`);
    }
  });

  it.for<[string, string[], Record<string, unknown>]>([
    ["a name of 101 code points", ["--name", "\u00e9".repeat(101)], { name: "\u00e9".repeat(101) }],
    ["a name with a control character", ["--name", "bad\u0007name"], { name: "bad\u0007name" }],
    ["a date-only expiry", ["--name", "n", "--expires-at", "2999-01-31"], { name: "n", expires_at: "2999-01-31" }],
    [
      "a lower-case expiry",
      ["--name", "n", "--expires-at", "2999-01-31t00:00:00z"],
      { name: "n", expires_at: "2999-01-31t00:00:00z" },
    ],
    ["an account id with a colon", ["--name", "n", "--account", "acct:1"], { name: "n" }],
  ])("refuses %s with the API's own 400 message (exit 2, nothing stored)", async ([, flags, body]) => {
    const account = flags.includes("--account") ? [] : ["--account", "acct_parity"];
    const result = await keys("create", ...account, ...flags, "--json");
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    if (!flags.includes("--account")) {
      const caller = await stack.createKey("acct_parity_caller");
      const viaApi = await (await api("POST", "/v1/keys", caller.authorization, body)).json();
      expect(viaApi.error.code).toBe("invalid_parameters");
      expect(result.stderr).toContain(viaApi.error.message);
    } else {
      expect(result.stderr).toContain("account_id: must match ^[A-Za-z0-9_-]{1,64}$");
    }
    expect((await keys("list", "--account", "acct_parity", "--json")).json.data).toEqual([]);
  });

  it("creates keys from several CLI processes at once", async () => {
    const results = await Promise.all(
      [1, 2, 3].map((n) => keys("create", "--account", "acct_parallel", "--name", `Parallel ${n}`, "--json")),
    );
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    const ids = results.map((result) => result.json.key_id);
    expect(new Set(ids).size).toBe(3);
    const listed = await keys("list", "--account", "acct_parallel", "--json");
    expect(listed.json.data.map((k: { key_id: string }) => k.key_id).sort()).toEqual([...ids].sort());
  });

  it("refuses a wrong operator token with exit 1 and says why", async () => {
    const wrong = join(dir, "wrong.vars");
    writeFileSync(wrong, `IDENTITY_SIGNING_KEYS='${stack.signingKeys}'\nOPERATOR_TOKEN='nxop_${"x".repeat(43)}'\n`);
    const result = await runScript("keys", [
      "list",
      "--account",
      "a",
      "--gateway",
      stack.gatewayUrl,
      "--dev-vars",
      wrong,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/refused the operator token/);
    expect(result.stderr).not.toContain("nxop_");
  });
});

describe("keys with no gateway running", () => {
  it("starts a gateway for the call on the same local state, and stops it after", async () => {
    const state = join(dir, "no-gateway");
    const devVars = join(dir, "no-gateway.vars");
    const port = await freePort();
    const started = Date.now();
    const result = await runScript("keys", [
      "create",
      "--account",
      "acct_alone",
      "--name",
      "No gateway",
      "--gateway",
      `http://127.0.0.1:${port}`,
      "--persist-to",
      state,
      "--dev-vars",
      devVars,
      "--json",
    ]);
    const tookMs = Date.now() - started;
    expect(result.code, result.stderr).toBe(0);
    const key = expectSingleJson(result.stdout);
    expect(result.stderr).toMatch(/No gateway answers at http:\/\/127\.0\.0\.1:\d+; starting one/);
    expect(result.stderr).toMatch(/Local gateway ready on http:\/\/127\.0\.0\.1:\d+ in [\d.]+ s/);
    // The token it created is in the file, private; the record is in the state npm start reads.
    expect(readDevVar(devVars, "OPERATOR_TOKEN")).toMatch(/^nxop_[\w-]{43}$/);
    expect(statSync(devVars).mode & 0o777).toBe(0o600);
    expect(await readRecord(state, key.key_id)).toMatchObject({ account_id: "acct_alone", name: "No gateway" });
    // Stopped after: nothing answers on the port it used.
    const startedOn = Number(/ready on http:\/\/127\.0\.0\.1:(\d+)/.exec(result.stderr)![1]);
    await expect(fetch(`http://127.0.0.1:${startedOn}/healthz`)).rejects.toThrow();
    console.info(
      `keys create with no gateway running took ${tookMs} ms (${/in ([\d.]+ s)/.exec(result.stderr)![1]} to start it)`,
    );
  });
});

describe("keys --remote", () => {
  /** A stand-in for the deployed gateway: records each request's headers and answers like the operator API. */
  async function fakeGateway(answer: (headers: IncomingHttpHeaders) => [number, string]) {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      const [status, body] = answer(req.headers);
      res.writeHead(status, { "content-type": "application/json" }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const address = server.address();
    const url = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
    return { url, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  it("sends the service token from CF_ACCESS_CLIENT_ID / CF_ACCESS_CLIENT_SECRET, and no local token", async () => {
    const page = JSON.stringify({ data: [], has_more: false, next_cursor: null });
    const gateway = await fakeGateway(() => [200, page]);
    try {
      const result = await runScript(
        "keys",
        ["list", "--account", "acct_r", "--remote", "--gateway", gateway.url, "--json"],
        {
          env: { CF_ACCESS_CLIENT_ID: "client-id.access", CF_ACCESS_CLIENT_SECRET: "client-secret" },
        },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe(`${page}\n`);
      expect(gateway.seen).toHaveLength(1);
      expect(gateway.seen[0]).toMatchObject({
        "cf-access-client-id": "client-id.access",
        "cf-access-client-secret": "client-secret",
      });
      expect(gateway.seen[0]!.authorization).toBeUndefined();
    } finally {
      await gateway.close();
    }
  });

  it("reports a refused credential (the operator API's 404) with exit 1 and what to check", async () => {
    const notFound = '{"error":{"type":"invalid_request_error","code":"not_found","message":"No such route"}}';
    const gateway = await fakeGateway(() => [404, notFound]);
    try {
      const result = await runScript(
        "keys",
        ["revoke", `nxf_${"b".repeat(32)}`, "--remote", "--gateway", gateway.url],
        {
          env: { CF_ACCESS_TOKEN: "eyJhbGciOiJSUzI1NiJ9.e30.sig" },
        },
      );
      expect(result.code).toBe(1);
      expect(gateway.seen[0]!["cf-access-token"]).toBe("eyJhbGciOiJSUzI1NiJ9.e30.sig");
      expect(result.stderr).toMatch(/did not accept the Access credential/);
      expect(result.stderr).not.toContain("eyJhbGciOiJSUzI1NiJ9.e30.sig");
    } finally {
      await gateway.close();
    }
  });
});

describe("keys: bad usage exits 2 with a message, before calling any gateway", () => {
  const cases: [string, string[], RegExp][] = [
    ["no command", [], /no command/],
    ["unknown command", ["delete", "x"], /unknown command/],
    ["create without --account", ["create", "--name", "n"], /--account/],
    ["create without --name", ["create", "--account", "a"], /--name/],
    ["unknown option", ["list", "--account", "a", "--limits", "5"], /Unknown option/],
    ["revoke without KEY_ID", ["revoke"], /needs a KEY_ID/],
    ["roll with two KEY_IDs", ["roll", "nxf_1", "nxf_2"], /takes one KEY_ID/],
    ["check without an argument", ["check"], /check takes one argument/],
    [
      "--remote with --persist-to",
      ["list", "--account", "a", "--remote", "--persist-to", "x"],
      /--persist-to is for local/,
    ],
    ["--remote without Access credentials", ["list", "--account", "a", "--remote"], /CF_ACCESS_CLIENT_ID/],
    [
      "a gateway that is not on this machine",
      ["list", "--account", "a", "--gateway", "https://api.nixflex.com"],
      /--remote/,
    ],
    ["a gateway URL with a path", ["list", "--account", "a", "--gateway", "http://127.0.0.1:8787/v1"], /origin only/],
    ["a gateway that is not a URL", ["list", "--account", "a", "--gateway", "localhost"], /must be a URL/],
  ];

  it.concurrent.for(cases)("%s", async ([, args, message], { expect }) => {
    const result = await runScript("keys", args, {
      env: { CF_ACCESS_CLIENT_ID: "", CF_ACCESS_CLIENT_SECRET: "", CF_ACCESS_TOKEN: "" },
    });
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
