/**
 * The `KeyAdmin` entrypoint over a real service binding (vitest.config.ts binds `KEY_ADMIN`
 * to the gateway's own named entrypoint, as examples/dashboard/wrangler.toml does): every
 * method, the same answers and error codes as `/v1/keys`, account isolation, the caller's
 * validation as typed values, the audit line naming the dashboard user, and no HTTP path in.
 */
import { env, SELF } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AdminCaller } from "../../src/index.ts";
import { rememberSensitive } from "./harness.ts";
import {
  accountSnapshot,
  gateway,
  KEY_OBJECT_FIELDS,
  keySnapshot,
  STANDARD_401,
  uniqueAccount,
  unknownKeyId,
} from "./keys-support.ts";

const admin = env.KEY_ADMIN;
const lines = () => (globalThis as { __nixflexLogLines?: string[] }).__nixflexLogLines ?? [];
const by = (accountId: string, userId = "user_42"): AdminCaller => ({ accountId, actor: { userId } });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Creates a key over the binding and answers its id and secret (remembered for the log-hygiene check). */
async function created(accountId: string, name = "dashboard key") {
  const outcome = await admin.create(by(accountId), { name });
  if (!outcome.ok) throw new Error(`create failed: ${JSON.stringify(outcome.error)}`);
  rememberSensitive(outcome.value.key_secret);
  return outcome.value;
}

/** The audit lines of one key, parsed. */
function auditOf(keyId: string): Record<string, unknown>[] {
  return lines()
    .filter((line) => line.includes('"event":"audit"') && line.includes(keyId))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("KeyAdmin over a service binding: every method", () => {
  it("create answers the key object and its secret (201), and the key authenticates at once", async () => {
    const account = uniqueAccount();
    const outcome = await admin.create(by(account), { name: "Production" });
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    rememberSensitive(outcome.value.key_secret);
    expect(outcome.status).toBe(201);
    expect(outcome.requestId).toMatch(UUID);
    expect(Object.keys(outcome.value)).toEqual([...KEY_OBJECT_FIELDS, "key_secret"]);
    expect(outcome.value).toMatchObject({ object: "api_key", name: "Production", revoked_at: null, expires_at: null });
    const http = gateway({ start: Date.now() });
    const answer = await http.call("GET", "/v1/keys", {
      auth: `Bearer ${outcome.value.key_id}:${outcome.value.key_secret}`,
    });
    expect(answer.status).toBe(200);
    expect(answer.json.data.map((key: { key_id: string }) => key.key_id)).toEqual([outcome.value.key_id]);
  });

  it("list pages through the account's keys, newest first, with next_cursor", async () => {
    const account = uniqueAccount();
    const ids: string[] = [];
    for (const name of ["one", "two", "three"]) ids.push((await created(account, name)).key_id);
    const first = await admin.list(by(account), { limit: 2 });
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect(first.status).toBe(200);
    expect(first.value.has_more).toBe(true);
    const rest = await admin.list(by(account), { limit: 2, cursor: first.value.next_cursor! });
    if (!rest.ok) throw new Error(JSON.stringify(rest.error));
    expect(rest.value.has_more).toBe(false);
    const seen = [...first.value.data, ...rest.value.data].map((key) => key.key_id);
    expect(seen.sort()).toEqual([...ids].sort());
    // The default page, like GET /v1/keys without a query.
    const all = await admin.list(by(account));
    expect(all.ok && all.value.data.length).toBe(3);
  });

  it("get answers the key object, as GET /v1/keys/{key_id} does, byte for byte", async () => {
    const account = uniqueAccount();
    const key = await created(account);
    const outcome = await admin.get(by(account), key.key_id);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    const http = await gateway({ start: Date.now() }).call("GET", `/v1/keys/${key.key_id}`, {
      auth: `Bearer ${key.key_id}:${key.key_secret}`,
    });
    expect(outcome.value).toEqual({ ...http.json, last_used_at: outcome.value.last_used_at });
    expect(Object.keys(outcome.value)).toEqual(KEY_OBJECT_FIELDS);
  });

  it("roll answers a new secret; the old one keeps working only for the grace period asked for", async () => {
    const account = uniqueAccount();
    const key = await created(account);
    const outcome = await admin.roll(by(account), key.key_id, { grace_period_seconds: 3600 });
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    rememberSensitive(outcome.value.key_secret);
    expect(outcome.status).toBe(200);
    expect(outcome.value.key_id).toBe(key.key_id);
    expect(outcome.value.key_secret).not.toBe(key.key_secret);
    const http = gateway({ start: Date.now() });
    const oldOne = await http.call("GET", "/v1/keys", { auth: `Bearer ${key.key_id}:${key.key_secret}` });
    const newOne = await http.call("GET", "/v1/keys", {
      auth: `Bearer ${key.key_id}:${outcome.value.key_secret}`,
    });
    expect([oldOne.status, newOne.status]).toEqual([200, 200]);
    // Without a grace period, the replaced secret stops at once.
    const again = await admin.roll(by(account), key.key_id);
    if (!again.ok) throw new Error(JSON.stringify(again.error));
    rememberSensitive(again.value.key_secret);
    // A fresh instance: `http` may still hold the record it verified a moment ago (the stated propagation bound).
    const replaced = await gateway({ start: Date.now() }).call("GET", "/v1/keys", {
      auth: `Bearer ${key.key_id}:${outcome.value.key_secret}`,
    });
    expect(replaced.text).toBe(STANDARD_401);
  });

  it("revoke answers the revoked key; the next request with it gets the standard 401, and a roll key_revoked", async () => {
    const account = uniqueAccount();
    const key = await created(account);
    const outcome = await admin.revoke(by(account), key.key_id);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.value.revoked_at).not.toBeNull();
    expect(outcome.value.revocation_propagation_seconds).toBeGreaterThan(0);
    const http = await gateway({ start: Date.now() }).call("GET", "/v1/keys", {
      auth: `Bearer ${key.key_id}:${key.key_secret}`,
    });
    expect(http.status).toBe(401);
    expect(http.text).toBe(STANDARD_401);
    const roll = await admin.roll(by(account), key.key_id);
    expect(roll).toMatchObject({ ok: false, error: { status: 400, code: "key_revoked" } });
  });
});

describe("KeyAdmin and HTTP in one isolate", () => {
  it("a revoke in the dashboard is refused at once by the deployed entry's HTTP path, even while it holds the key in cache", async () => {
    const account = uniqueAccount();
    const key = await created(account);
    const viaHttp = () =>
      SELF.fetch("https://api.nixflex.com/v1/keys", {
        headers: {
          authorization: `Bearer ${key.key_id}:${key.key_secret}`,
          "cf-connecting-ip": `203.0.113.${Math.floor(Math.random() * 250)}`,
        },
      });
    const before = await viaHttp();
    expect(before.status).toBe(200);
    await before.arrayBuffer();
    const revoked = await admin.revoke(by(account), key.key_id);
    expect(revoked.ok).toBe(true);
    const after = await viaHttp();
    expect(after.status).toBe(401);
    expect(await after.text()).toBe(STANDARD_401);
  });
});

describe("KeyAdmin: the audit line names the dashboard user", () => {
  it("create, roll and revoke each write one audit line with actor dashboard_user:<id> and the call's request id", async () => {
    const account = uniqueAccount();
    const create = await admin.create(by(account, "user_audit_7"), { name: "audited" });
    if (!create.ok) throw new Error(JSON.stringify(create.error));
    rememberSensitive(create.value.key_secret);
    const keyId = create.value.key_id;
    const roll = await admin.roll(by(account, "user_audit_8"), keyId);
    if (!roll.ok) throw new Error(JSON.stringify(roll.error));
    rememberSensitive(roll.value.key_secret);
    const revoke = await admin.revoke(by(account, "user_audit_9"), keyId);
    if (!revoke.ok) throw new Error(JSON.stringify(revoke.error));
    const audit = auditOf(keyId);
    expect(audit.map((line) => [line.action, line.actor, line.request_id, line.account_id])).toEqual([
      ["create", "dashboard_user:user_audit_7", create.requestId, account],
      ["roll", "dashboard_user:user_audit_8", roll.requestId, account],
      ["revoke", "dashboard_user:user_audit_9", revoke.requestId, account],
    ]);
    // A read changes nothing, so it writes no audit line.
    await admin.get(by(account), keyId);
    await admin.list(by(account));
    expect(auditOf(keyId)).toHaveLength(3);
  });
});

describe("KeyAdmin: account isolation", () => {
  it("a call for account A never sees or changes account B's keys", async () => {
    const a = uniqueAccount("acct_a");
    const b = uniqueAccount("acct_b");
    const mine = await created(a, "A's key");
    const theirs = await created(b, "B's key");
    const before = { key: await keySnapshot(theirs.key_id), index: await accountSnapshot(b) };

    const list = await admin.list(by(a));
    expect(list.ok && list.value.data.map((key) => key.key_id)).toEqual([mine.key_id]);
    const notFound = { ok: false, error: { status: 404, type: "not_found_error", code: "key_not_found" } };
    expect(await admin.get(by(a), theirs.key_id)).toMatchObject(notFound);
    expect(await admin.roll(by(a), theirs.key_id, { grace_period_seconds: 60 })).toMatchObject(notFound);
    expect(await admin.revoke(by(a), theirs.key_id)).toMatchObject(notFound);
    // The same answer as a key that never existed: nothing tells A that B's key exists.
    const never = await admin.get(by(a), unknownKeyId());
    expect(never).toMatchObject(notFound);
    const foreign = await admin.get(by(a), theirs.key_id);
    expect(!foreign.ok && !never.ok && foreign.error).toEqual(!never.ok && never.error);

    expect(await keySnapshot(theirs.key_id)).toEqual(before.key);
    expect(await accountSnapshot(b)).toEqual(before.index);
    const still = await admin.get(by(b), theirs.key_id);
    expect(still.ok && still.value.revoked_at).toBeNull();
    expect(auditOf(theirs.key_id).map((line) => line.action)).toEqual(["create"]);
  });
});

describe("KeyAdmin: validation as typed values, as /v1/keys answers them", () => {
  const invalid = (message: string) => ({
    ok: false,
    error: { status: 400, type: "invalid_request_error", code: "invalid_parameters", message },
  });

  it.each([
    ["an empty name", { name: "" }],
    ["a name of spaces", { name: "   " }],
    ["a control character", { name: "a\u0000b" }],
    ["a name too long", { name: "x".repeat(101) }],
    ["no name", {}],
    ["an unknown field", { name: "ok", scope: "admin" }],
    ["an expiry in the past", { name: "ok", expires_at: "2001-01-01T00:00:00Z" }],
    ["an expiry that is not a date-time", { name: "ok", expires_at: "tomorrow" }],
    ["a name that is not a string", { name: 42 }],
  ])("create with %s answers the error POST /v1/keys answers", async (_label, input) => {
    const account = uniqueAccount();
    const outcome = await admin.create(by(account), input as never);
    expect(outcome.ok).toBe(false);
    const seed = await created(uniqueAccount());
    const http = await gateway({ start: Date.now() }).call("POST", "/v1/keys", {
      auth: `Bearer ${seed.key_id}:${seed.key_secret}`,
      body: input,
    });
    if (outcome.ok) return;
    // The gateway's clock in the message may differ by a millisecond between the two calls.
    const clockless = (text: string) => text.replace(/gateway's time is [^)]+/, "gateway's time is …");
    expect({ ...outcome.error, message: clockless(outcome.error.message) }).toEqual({
      status: http.status,
      ...http.json.error,
      message: clockless(http.json.error.message),
    });
    expect(await accountSnapshot(account)).toEqual([]);
  });

  it("list, roll and key ids: the same codes as the HTTP routes", async () => {
    const account = uniqueAccount();
    const key = await created(account);
    expect(await admin.list(by(account), { limit: 0 })).toMatchObject(
      invalid("limit: must be an integer from 1 to 100"),
    );
    expect(await admin.list(by(account), { cursor: "not a cursor" })).toMatchObject({
      ok: false,
      error: { code: "invalid_parameters" },
    });
    expect(await admin.roll(by(account), key.key_id, { grace_period_seconds: 86_401 })).toMatchObject({
      ok: false,
      error: { code: "invalid_parameters" },
    });
    for (const keyId of ["", "nxf_", "NXF_0123", key.key_id.toUpperCase(), `${key.key_id} `, 42, null]) {
      expect(await admin.get(by(account), keyId as string)).toMatchObject({
        ok: false,
        error: { status: 404, code: "key_not_found" },
      });
    }
  });

  it.each([
    ["no caller", null],
    ["an account id with a space", { accountId: "acct demo", actor: { userId: "u_1" } }],
    ["an empty account id", { accountId: "", actor: { userId: "u_1" } }],
    ["an account id of 65 characters", { accountId: "a".repeat(65), actor: { userId: "u_1" } }],
    ["an account id that is not a string", { accountId: 7, actor: { userId: "u_1" } }],
  ])(
    "a caller with %s is refused as invalid_parameters naming accountId, and nothing is written",
    async (_label, caller) => {
      const outcome = await admin.create(caller as never, { name: "never stored" });
      expect(outcome).toMatchObject({ ok: false, error: { status: 400, code: "invalid_parameters" } });
      expect(!outcome.ok && outcome.error.message).toContain("accountId: must be 1–64 letters, digits, _ or -");
    },
  );

  it.each([
    ["no actor", { accountId: "acct_x" }],
    ["an empty user id", { accountId: "acct_x", actor: { userId: "" } }],
    ["a user id with a space", { accountId: "acct_x", actor: { userId: "user 1" } }],
    ["a user id with a newline", { accountId: "acct_x", actor: { userId: 'u\n{"forged":1}' } }],
    ["a user id of 129 characters", { accountId: "acct_x", actor: { userId: "u".repeat(129) } }],
    ["a non-ASCII user id", { accountId: "acct_x", actor: { userId: "usér" } }],
  ])("a caller with %s is refused as invalid_parameters naming actor.userId", async (_label, caller) => {
    const outcome = await admin.list(caller as never);
    expect(outcome).toMatchObject({
      ok: false,
      error: {
        code: "invalid_parameters",
        message: "actor.userId: must be 1–128 printable ASCII characters without spaces",
      },
    });
  });

  it("any caller value answers a value, never throws, and only a valid user id reaches the store", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 140 }), fc.string({ maxLength: 70 }), async (userId, accountId) => {
        const outcome = await admin.list({ accountId, actor: { userId } });
        const valid = /^[\x21-\x7e]{1,128}$/.test(userId) && /^[A-Za-z0-9_-]{1,64}$/.test(accountId);
        expect(outcome.ok).toBe(valid);
        if (!outcome.ok) expect(outcome.error.code).toBe("invalid_parameters");
      }),
      { numRuns: 60 },
    );
  });
});

describe("KeyAdmin: no way in over HTTP", () => {
  it.each([
    "/KeyAdmin",
    "/KeyAdmin/create",
    "/keyadmin/list",
    "/admin/keys",
    "/rpc/KeyAdmin.list",
    "/v1/keys?accountId=acct_demo",
  ])("%s without a key answers the standard 401 (the forwarding path), never a key", async (path) => {
    for (const method of ["GET", "POST"]) {
      const response = await SELF.fetch(`https://api.nixflex.com${path}`, {
        method,
        headers: {
          "cf-connecting-ip": `198.51.100.${Math.floor(Math.random() * 250)}`,
          "content-type": "application/json",
        },
        body:
          method === "POST" ? JSON.stringify({ accountId: "acct_demo", actor: { userId: "u" }, name: "x" }) : undefined,
      });
      expect(response.status).toBe(401);
      expect(await response.text()).toBe(STANDARD_401);
    }
  });

  it("the entrypoint has no HTTP handler even for a Worker bound to it", async () => {
    await expect(admin.fetch("https://gateway.internal/keys")).rejects.toThrow();
  });
});
