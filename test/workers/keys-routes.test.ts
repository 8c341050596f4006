/**
 * Happy paths of every key route (SPEC §5), the answers' headers, the paths the gateway
 * owns under /v1/keys (404 / 405, never forwarded) and the audit lines.
 */
import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { isWellFormedSecret } from "../../src/keys/format.ts";
import { kvKeys } from "../../src/keys/record.ts";
import { KEY_CHANGE_BOUND_S } from "../../src/keys/sync.ts";
import {
  accountSnapshot,
  type Answer,
  expectStandard401,
  gateway,
  KEY_OBJECT_FIELDS,
  keySnapshot,
  uniqueAccount,
} from "./keys-support.ts";

function expectKeyAnswerHeaders(answer: Answer): void {
  expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
  expect(answer.headers.get("cache-control")).toBe("no-store");
  expect(answer.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
}

async function setup() {
  const g = gateway();
  const account = uniqueAccount();
  const caller = await g.createKey(account, { name: "admin" });
  return { g, account, caller };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("POST /v1/keys", () => {
  it("creates a key in the caller's account and shows its secret once", async () => {
    const { g, account, caller } = await setup();
    const answer = await g.call("POST", "/v1/keys", { auth: caller, body: { name: "Production" } });
    expect(answer.status).toBe(201);
    expectKeyAnswerHeaders(answer);
    const { key_secret, ...key } = answer.json;
    expect(Object.keys(key)).toEqual(KEY_OBJECT_FIELDS);
    expect(key).toEqual({
      object: "api_key",
      key_id: expect.stringMatching(/^nxf_[0-9a-f]{32}$/),
      name: "Production",
      created_at: new Date(g.now()).toISOString(),
      expires_at: null,
      revoked_at: null,
      last_used_at: null,
    });
    expect(isWellFormedSecret(key_secret)).toBe(true);
    // Stored: a hash, never the secret; indexed under the caller's account only.
    const stored = await keySnapshot(key.key_id);
    expect(stored.record).not.toContain(key_secret);
    expect(JSON.parse(stored.record!).account_id).toBe(account);
    expect(JSON.parse(stored.record!).secret_hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await accountSnapshot(account)).toContainEqual(
      expect.stringMatching(new RegExp(`:${key.key_id}=${key.key_id}$`)),
    );
    expect(g.engineCalls).toHaveLength(0);
  });

  it("stores expires_at in UTC with millisecond precision", async () => {
    const { g, caller } = await setup();
    const answer = await g.call("POST", "/v1/keys", {
      auth: caller,
      body: { name: "temp", expires_at: "2031-03-04T07:06:07.5+02:00" },
    });
    expect(answer.status).toBe(201);
    expect(answer.json.expires_at).toBe("2031-03-04T05:06:07.500Z");
  });

  it("accepts expires_at: null as never expiring", async () => {
    const { g, caller } = await setup();
    const answer = await g.call("POST", "/v1/keys", { auth: caller, body: { name: "n", expires_at: null } });
    expect(answer.status).toBe(201);
    expect(answer.json.expires_at).toBeNull();
  });

  it("the new key works on the very next request", async () => {
    const { g, caller } = await setup();
    const created = (await g.call("POST", "/v1/keys", { auth: caller, body: { name: "fresh" } })).json;
    const answer = await g.call("GET", `/v1/keys/${created.key_id}`, {
      auth: `Bearer ${created.key_id}:${created.key_secret}`,
    });
    expect(answer.status).toBe(200);
    expect(answer.json.key_id).toBe(created.key_id);
  });

  it("the new key works in another gateway instance too (read from KV, not only from memory)", async () => {
    const { g, caller } = await setup();
    const created = (await g.call("POST", "/v1/keys", { auth: caller, body: { name: "fresh" } })).json;
    const other = gateway();
    const answer = await other.call("GET", "/v1/keys", { auth: `Bearer ${created.key_id}:${created.key_secret}` });
    expect(answer.status).toBe(200);
  });
});

describe("GET /v1/keys/{key_id}", () => {
  it("answers the key object, never a hash or secret", async () => {
    const { g, account, caller } = await setup();
    const target = await g.createKey(account, { name: "target" });
    const answer = await g.call("GET", `/v1/keys/${target.id}`, { auth: caller });
    expect(answer.status).toBe(200);
    expectKeyAnswerHeaders(answer);
    expect(Object.keys(answer.json)).toEqual(KEY_OBJECT_FIELDS);
    expect(answer.json.name).toBe("target");
    expect(answer.text).not.toMatch(/sha256|nxfs_/);
  });

  it("HEAD answers the same status and headers without a body", async () => {
    const { g, account, caller } = await setup();
    const target = await g.createKey(account);
    const answer = await g.call("HEAD", `/v1/keys/${target.id}`, { auth: caller });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe("");
    expect(answer.headers.get("cache-control")).toBe("no-store");
  });
});

describe("DELETE /v1/keys/{key_id}", () => {
  it("revokes, states the global bound, and is idempotent", async () => {
    const { g, account, caller } = await setup();
    const target = await g.createKey(account);
    const first = await g.call("DELETE", `/v1/keys/${target.id}`, { auth: caller });
    expect(first.status).toBe(200);
    expectKeyAnswerHeaders(first);
    expect(Object.keys(first.json)).toEqual([...KEY_OBJECT_FIELDS, "revocation_propagation_seconds"]);
    expect(first.json.revoked_at).toBe(new Date(g.now()).toISOString());
    // The key change log took the revoke: the stated bound is the log's, not KV's.
    expect(first.json.revocation_propagation_seconds).toBe(KEY_CHANGE_BOUND_S);
    expect(KEY_CHANGE_BOUND_S).toBe(5);
    const record = await keySnapshot(target.id);

    g.advance(10_000);
    const second = await g.call("DELETE", `/v1/keys/${target.id}`, { auth: caller });
    expect(second.status).toBe(200);
    expect(second.json).toEqual(first.json);
    expect(await keySnapshot(target.id)).toEqual(record);
  });

  it("a revoked key fails on the very next request", async () => {
    const { g, account, caller } = await setup();
    const target = await g.createKey(account);
    // Cached as valid in this isolate first.
    expect((await g.call("GET", "/v1/keys", { auth: target })).status).toBe(200);
    expect((await g.call("DELETE", `/v1/keys/${target.id}`, { auth: caller })).status).toBe(200);
    const after = await g.call("GET", "/v1/keys", { auth: target });
    expectStandard401(after, after.text);
  });

  it("a key may revoke itself; its next request fails", async () => {
    const { g, caller } = await setup();
    const answer = await g.call("DELETE", `/v1/keys/${caller.id}`, { auth: caller });
    expect(answer.status).toBe(200);
    expect((await g.call("GET", "/v1/keys", { auth: caller })).status).toBe(401);
  });
});

describe("POST /v1/keys/{key_id}/roll", () => {
  it("without grace: new secret works at once, the old one fails at once", async () => {
    const { g, account, caller } = await setup();
    const target = await g.createKey(account, { name: "rolled" });
    expect((await g.call("GET", "/v1/keys", { auth: target })).status).toBe(200);
    const before = JSON.parse((await keySnapshot(target.id)).record!);
    const answer = await g.call("POST", `/v1/keys/${target.id}/roll`, { auth: caller });
    expect(answer.status).toBe(200);
    expectKeyAnswerHeaders(answer);
    const { key_secret, ...key } = answer.json;
    expect(Object.keys(key)).toEqual(KEY_OBJECT_FIELDS);
    expect(key.key_id).toBe(target.id);
    expect(key.name).toBe("rolled");
    expect(isWellFormedSecret(key_secret)).toBe(true);
    expect(key_secret).not.toBe(target.secret);
    const after = JSON.parse((await keySnapshot(target.id)).record!);
    expect(after.secret_hash).not.toBe(before.secret_hash);
    expect(after.previous_secret_hash).toBeNull();

    expect((await g.call("GET", "/v1/keys", { auth: target })).status).toBe(401);
    expect((await g.call("GET", "/v1/keys", { auth: { ...target, secret: key_secret } })).status).toBe(200);
  });

  it("with grace: the old secret works until the grace period ends, then fails", async () => {
    const { g, account, caller } = await setup();
    const target = await g.createKey(account);
    const answer = await g.call("POST", `/v1/keys/${target.id}/roll`, {
      auth: caller,
      body: { grace_period_seconds: 60 },
    });
    expect(answer.status).toBe(200);
    const fresh = { ...target, secret: answer.json.key_secret };
    g.advance(59_999);
    expect((await g.call("GET", "/v1/keys", { auth: target })).status).toBe(200);
    expect((await g.call("GET", "/v1/keys", { auth: fresh })).status).toBe(200);
    g.advance(1);
    const expired = await g.call("GET", "/v1/keys", { auth: target });
    expectStandard401(expired, expired.text);
    expect((await g.call("GET", "/v1/keys", { auth: fresh })).status).toBe(200);
  });

  it("the grace period also holds in another gateway instance (read from KV)", async () => {
    const { g, account, caller } = await setup();
    const target = await g.createKey(account);
    const answer = await g.call("POST", `/v1/keys/${target.id}/roll`, {
      auth: caller,
      body: { grace_period_seconds: 30 },
    });
    const other = gateway({ start: g.now() });
    expect((await other.call("GET", "/v1/keys", { auth: target })).status).toBe(200);
    expect((await other.call("GET", "/v1/keys", { auth: { ...target, secret: answer.json.key_secret } })).status).toBe(
      200,
    );
  });

  it("refuses to roll a revoked key (400 key_revoked) and changes nothing", async () => {
    const { g, account, caller } = await setup();
    const target = await g.createKey(account);
    await g.store.revoke(account, target.id);
    const before = await keySnapshot(target.id);
    const answer = await g.call("POST", `/v1/keys/${target.id}/roll`, { auth: caller });
    expect(answer.status).toBe(400);
    expect(answer.json.error).toEqual({
      type: "invalid_request_error",
      code: "key_revoked",
      message: expect.stringContaining("create a new key"),
    });
    expect(await keySnapshot(target.id)).toEqual(before);
  });

  it("refuses to roll an expired key (400 key_expired) and changes nothing", async () => {
    const { g, account, caller } = await setup();
    const target = await g.createKey(account, { expiresAt: new Date(g.now() + 1000).toISOString() });
    g.advance(1000);
    const before = await keySnapshot(target.id);
    const answer = await g.call("POST", `/v1/keys/${target.id}/roll`, { auth: caller });
    expect(answer.status).toBe(400);
    expect(answer.json.error.code).toBe("key_expired");
    expect(await keySnapshot(target.id)).toEqual(before);
  });
});

describe("paths under /v1/keys", () => {
  const cases: [string, string, number, string, string | null][] = [
    ["PUT", "/v1/keys", 405, "method_not_allowed", "GET, HEAD, POST"],
    ["PATCH", "/v1/keys/nxf_0123456789abcdef0123456789abcdef", 405, "method_not_allowed", "GET, HEAD, DELETE"],
    ["POST", "/v1/keys/nxf_0123456789abcdef0123456789abcdef", 405, "method_not_allowed", "GET, HEAD, DELETE"],
    ["GET", "/v1/keys/nxf_0123456789abcdef0123456789abcdef/roll", 405, "method_not_allowed", "POST"],
    ["OPTIONS", "/v1/keys", 405, "method_not_allowed", "GET, HEAD, POST"],
    ["GET", "/v1/keys/nxf_0123456789abcdef0123456789abcdef/rotate", 404, "not_found", null],
    ["POST", "/v1/keys/nxf_0123456789abcdef0123456789abcdef/roll/extra", 404, "not_found", null],
    ["DELETE", "/v1/keys/a/b/c", 404, "not_found", null],
    ["GET", "/v1/keys//roll", 404, "not_found", null],
  ];

  it.each(cases)("%s %s answers %i %s and is never forwarded", async (method, path, status, code, allow) => {
    const { g, caller } = await setup();
    const answer = await g.call(method, path, { auth: caller });
    expect(answer.status).toBe(status);
    expect(answer.json.error.code).toBe(code);
    expect(answer.json.error.type).toBe("invalid_request_error");
    expect(answer.headers.get("allow")).toBe(allow);
    expect(answer.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(g.engineCalls).toHaveLength(0);
  });

  it("answers GET /v1/keys/ as GET /v1/keys: one trailing slash is tolerated on the gateway's own paths", async () => {
    const { g, caller } = await setup();
    const plain = await g.call("GET", "/v1/keys", { auth: caller });
    const slashed = await g.call("GET", "/v1/keys/", { auth: caller });
    expect(slashed.status).toBe(200);
    expect(slashed.json).toEqual(plain.json);
    expect(g.engineCalls).toHaveLength(0);
  });

  it("answers the standard 401 before anything else on unknown sub-paths", async () => {
    const g = gateway();
    const answer = await g.call("GET", "/v1/keys/whatever/else");
    expectStandard401(answer, answer.text);
    expect(g.engineCalls).toHaveLength(0);
  });
});

describe("audit", () => {
  it("create, roll and revoke each write one audit line, without any secret", async () => {
    const { g, account, caller } = await setup();
    const lines: string[] = [];
    const capture = (...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    };
    vi.spyOn(console, "log").mockImplementation(capture);
    vi.spyOn(console, "warn").mockImplementation(capture);
    vi.spyOn(console, "error").mockImplementation(capture);

    const created = (await g.call("POST", "/v1/keys", { auth: caller, body: { name: "audited" } })).json;
    g.advance(1000);
    const rolled = (await g.call("POST", `/v1/keys/${created.key_id}/roll`, { auth: caller })).json;
    g.advance(1000);
    await g.call("DELETE", `/v1/keys/${created.key_id}`, { auth: caller });
    // Failures are not audited as changes: nothing changed.
    await g.call("DELETE", "/v1/keys/nxf_0123456789abcdef0123456789abcdef", { auth: caller });

    const audits = lines.map((line) => JSON.parse(line)).filter((entry) => entry.event === "audit");
    const start = Date.parse("2031-03-04T05:06:07.000Z");
    expect(audits.map(({ request_id, ...rest }) => rest)).toEqual(
      (["create", "roll", "revoke"] as const).map((action, i) => ({
        level: "info",
        event: "audit",
        account_id: account,
        target_key_id: created.key_id,
        action,
        actor: `api_key:${caller.id}`,
        actor_key_id: caller.id,
        at: new Date(start + i * 1000).toISOString(),
      })),
    );
    const all = lines.join("\n");
    for (const secret of [caller.secret, created.key_secret, rolled.key_secret]) expect(all).not.toContain(secret);
    expect(all).not.toMatch(/nxfs_|sha256:/);
  });
});

describe("KV", () => {
  it("writes only the record and the account index on create", async () => {
    const { g, account, caller } = await setup();
    const created = (await g.call("POST", "/v1/keys", { auth: caller, body: { name: "kv" } })).json;
    const names = (await env.API_KEYS.list({ prefix: `acct:${account}:` })).keys.map((entry) => entry.name);
    expect(names).toHaveLength(2);
    expect(await env.API_KEYS.get(kvKeys.lastUsed(created.key_id))).toBeNull();
  });
});
