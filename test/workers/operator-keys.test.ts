/**
 * The operator API's calls for real against the local KV (src/routes/operator.ts): every
 * operation, account isolation, and the same validation, answers and error codes as
 * `/v1/keys` (they run the same route objects).
 */
import { describe, expect, it } from "vitest";
import { isWellFormedSecret } from "../../src/keys/format.ts";
import { KEY_CHANGE_BOUND_S } from "../../src/keys/sync.ts";
import { STANDARD_401_BODY } from "./harness.ts";
import { LOCAL_ORIGIN, LOCAL_TOKEN, localEnv, operatorGateway } from "./operator-support.ts";

const KEY_OBJECT_FIELDS = ["object", "key_id", "name", "created_at", "expires_at", "revoked_at", "last_used_at"];
const KEY_NOT_FOUND = '{"error":{"type":"not_found_error","code":"key_not_found","message":"No such API key"}}';
const asOperator = { authorization: `Bearer ${LOCAL_TOKEN}` };

function setup() {
  // A clock that stands still: answers that quote the gateway's time compare exactly.
  const now = Date.now();
  const g = operatorGateway(localEnv(), { now: () => now });
  const op = (method: string, path: string, body?: unknown, headers: Record<string, string> = asOperator) =>
    g.call(method, `${LOCAL_ORIGIN}/v1/operator${path}`, { headers, body });
  const api = (method: string, path: string, authorization: string, body?: unknown) =>
    g.call(method, `${LOCAL_ORIGIN}${path}`, { headers: { authorization }, body });
  const account = `acct_op_${crypto.randomUUID().slice(0, 8)}`;
  return { g, op, api, account };
}

describe("every operation, through the operator API", () => {
  it("creates, lists, gets, rolls and revokes a key of a named account", async () => {
    const { op, account } = setup();
    const created = await op("POST", `/accounts/${account}/keys`, {
      name: "Operator made",
      expires_at: "2999-01-31T00:00:00+01:00",
    });
    expect(created.status).toBe(201);
    expect(created.headers.get("cache-control")).toBe("no-store");
    const { key_secret, ...key } = created.json;
    expect(Object.keys(key)).toEqual(KEY_OBJECT_FIELDS);
    expect(key).toMatchObject({ name: "Operator made", expires_at: "2999-01-30T23:00:00.000Z", revoked_at: null });
    expect(isWellFormedSecret(key_secret)).toBe(true);

    const listed = await op("GET", `/accounts/${account}/keys?limit=5`);
    expect(listed.status).toBe(200);
    expect(listed.json).toEqual({ data: [key], has_more: false, next_cursor: null });

    const got = await op("GET", `/keys/${key.key_id}`);
    expect(got.status).toBe(200);
    expect(got.json).toEqual(key);

    const rolled = await op("POST", `/keys/${key.key_id}/roll`, { grace_period_seconds: 60 });
    expect(rolled.status).toBe(200);
    expect(rolled.json.key_id).toBe(key.key_id);
    expect(isWellFormedSecret(rolled.json.key_secret)).toBe(true);
    expect(rolled.json.key_secret).not.toBe(key_secret);

    const revoked = await op("DELETE", `/keys/${key.key_id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.json).toMatchObject({ key_id: key.key_id, revocation_propagation_seconds: KEY_CHANGE_BOUND_S });
    expect(typeof revoked.json.revoked_at).toBe("string");
    const again = await op("DELETE", `/keys/${key.key_id}`);
    expect(again.json.revoked_at).toBe(revoked.json.revoked_at);
    expect((await op("POST", `/keys/${key.key_id}/roll`)).json.error.code).toBe("key_revoked");
  });

  it("pages a listing with limit and cursor as /v1/keys does", async () => {
    const { op, account } = setup();
    for (const name of ["one", "two", "three"]) await op("POST", `/accounts/${account}/keys`, { name });
    const first = await op("GET", `/accounts/${account}/keys?limit=2`);
    expect(first.json.data).toHaveLength(2);
    expect(first.json.has_more).toBe(true);
    const second = await op("GET", `/accounts/${account}/keys?limit=2&cursor=${first.json.next_cursor}`);
    expect(second.json).toMatchObject({ has_more: false, next_cursor: null });
    expect([...first.json.data, ...second.json.data].map((k: { name: string }) => k.name).sort()).toEqual([
      "one",
      "three",
      "two",
    ]);
  });

  it("refuses a used key on the very next request after an operator revoke", async () => {
    const { op, api, account } = setup();
    const created = (await op("POST", `/accounts/${account}/keys`, { name: "in use" })).json;
    const authorization = `Bearer ${created.key_id}:${created.key_secret}`;
    expect((await api("GET", "/v1/agents", authorization)).status).toBe(200); // cached by this isolate now
    expect((await op("DELETE", `/keys/${created.key_id}`)).status).toBe(200);
    const after = await api("GET", "/v1/agents", authorization);
    expect(after.status).toBe(401);
    expect(after.text).toBe(STANDARD_401_BODY);
  });
});

describe("accounts", () => {
  it("keeps each account's keys apart, and finds a key's account from its record", async () => {
    const a = setup();
    const otherAccount = `acct_op_${crypto.randomUUID().slice(0, 8)}`;
    const mine = (await a.op("POST", `/accounts/${a.account}/keys`, { name: "mine" })).json;
    const theirs = (await a.op("POST", `/accounts/${otherAccount}/keys`, { name: "theirs" })).json;
    const listMine = (await a.op("GET", `/accounts/${a.account}/keys`)).json.data.map(
      (k: { key_id: string }) => k.key_id,
    );
    expect(listMine).toEqual([mine.key_id]);
    const revoked = await a.op("DELETE", `/keys/${theirs.key_id}`);
    expect(revoked.json.key_id).toBe(theirs.key_id);
    expect((await a.op("GET", `/keys/${mine.key_id}`)).json.revoked_at).toBeNull();
    // An API key of one account still cannot see the other's key: /v1/keys is unchanged.
    const asMine = `Bearer ${mine.key_id}:${mine.key_secret}`;
    const peek = await a.api("GET", `/v1/keys/${theirs.key_id}`, asMine);
    expect(peek.status).toBe(404);
    expect(peek.text).toBe(KEY_NOT_FOUND);
  });

  it.for(["acct:1", "a".repeat(65), "acct%20one", "%C3%A9"])("refuses account id %s with 400", async (bad) => {
    const { op } = setup();
    const answer = await op("GET", `/accounts/${bad}/keys`);
    expect(answer.status).toBe(400);
    expect(answer.json.error).toMatchObject({ type: "invalid_request_error", code: "invalid_parameters" });
    expect(answer.json.error.message).toContain("account_id: must match ^[A-Za-z0-9_-]{1,64}$");
  });

  it.for([`nxf_${"0".repeat(32)}`, "nxf_XYZ", "not-a-key"])(
    "answers key %s with the API's key_not_found",
    async (id) => {
      const { op } = setup();
      for (const [method, path] of [
        ["GET", `/keys/${id}`],
        ["DELETE", `/keys/${id}`],
        ["POST", `/keys/${id}/roll`],
      ] as const) {
        const answer = await op(method, path);
        expect(answer.status, `${method} ${path}`).toBe(404);
        expect(answer.text).toBe(KEY_NOT_FOUND);
      }
    },
  );
});

describe("the same validation and answers as /v1/keys", () => {
  const badBodies: [string, unknown][] = [
    ["a name of 101 code points", { name: "é".repeat(101) }],
    ["a name with a control character", { name: "bad\u0007name" }],
    ["a name of spaces only", { name: "   " }],
    ["no name", {}],
    ["a date-only expiry", { name: "n", expires_at: "2999-01-31" }],
    ["a lower-case date-time expiry", { name: "n", expires_at: "2999-01-31t00:00:00z" }],
    ["an expiry without a zone", { name: "n", expires_at: "2999-01-31T00:00:00" }],
    ["an expiry in the past", { name: "n", expires_at: "2001-01-01T00:00:00Z" }],
    ["an unknown field", { name: "n", colour: "blue" }],
    ["invalid JSON", "{not json"],
  ];

  it.for(badBodies)("answers create with %s exactly as POST /v1/keys does", async ([, body]) => {
    const { g, op, api, account } = setup();
    const caller = await g.store.create(account, { name: "caller", expiresAt: null });
    const viaOperator = await op("POST", `/accounts/${account}/keys`, body);
    const viaApi = await api("POST", "/v1/keys", `Bearer ${caller.key.key_id}:${caller.secret}`, body);
    expect(viaOperator.status).toBe(400);
    expect(viaOperator.status).toBe(viaApi.status);
    expect(viaOperator.text).toBe(viaApi.text);
  });

  it("keeps 101 code points apart from 101 UTF-16 units: 100 astral characters are a valid name", async () => {
    const { op, account } = setup();
    const created = await op("POST", `/accounts/${account}/keys`, { name: "😀".repeat(100) });
    expect(created.status).toBe(201);
  });

  it.for<[string, unknown]>([
    ["a grace period over a day", { grace_period_seconds: 86_401 }],
    ["a negative grace period", { grace_period_seconds: -1 }],
  ])("answers roll with %s exactly as /v1/keys does", async ([, body]) => {
    const { g, op, api, account } = setup();
    const caller = await g.store.create(account, { name: "caller", expiresAt: null });
    const path = `/keys/${caller.key.key_id}/roll`;
    const viaOperator = await op("POST", path, body);
    const viaApi = await api("POST", `/v1${path}`, `Bearer ${caller.key.key_id}:${caller.secret}`, body);
    expect(viaOperator.status).toBe(400);
    expect(viaOperator.text).toBe(viaApi.text);
  });

  it("answers a known path with another method 405 with Allow", async () => {
    const { op, account } = setup();
    const answer = await op("PUT", `/accounts/${account}/keys`);
    expect(answer.status).toBe(405);
    expect(answer.headers.get("allow")).toBe("GET, HEAD, POST");
    expect((await op("PATCH", `/keys/nxf_${"1".repeat(32)}`)).headers.get("allow")).toBe("GET, HEAD, DELETE");
  });
});
