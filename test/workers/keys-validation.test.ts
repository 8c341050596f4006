/**
 * Hostile and mistaken inputs to the key routes (SPEC §5, §7): each answers the one
 * envelope with a specific code and a message naming the field and what to fix, and
 * changes nothing in KV.
 */
import { describe, expect, it } from "vitest";
import { accountSnapshot, gateway, keySnapshot, uniqueAccount } from "./keys-support.ts";

async function setup() {
  const g = gateway();
  const account = uniqueAccount();
  const caller = await g.createKey(account, { name: "admin" });
  const target = await g.createKey(account, { name: "target" });
  return { g, account, caller, target };
}

type Case = {
  name: string;
  body: unknown;
  headers?: Record<string, string>;
  status: number;
  code: string;
  message: RegExp;
};

const json = (value: unknown) => JSON.stringify(value);

const createCases: Case[] = [
  {
    name: "bad JSON",
    body: '{"name": "x",}',
    status: 400,
    code: "invalid_json",
    message: /not valid JSON; send a JSON object/,
  },
  { name: "truncated JSON", body: '{"name": "x"', status: 400, code: "invalid_json", message: /not valid JSON/ },
  {
    name: "invalid UTF-8",
    body: new Uint8Array([0x7b, 0x22, 0x6e, 0xff, 0x22, 0x7d]),
    headers: { "content-type": "application/json" },
    status: 400,
    code: "invalid_json",
    message: /UTF-8/,
  },
  {
    name: "an empty body",
    body: "",
    status: 400,
    code: "invalid_parameters",
    message: /^name: is required: a name of 1–100 characters$/,
  },
  { name: "an empty object", body: {}, status: 400, code: "invalid_parameters", message: /^name: is required/ },
  {
    name: "a missing name with another field",
    body: { expires_at: null },
    status: 400,
    code: "invalid_parameters",
    message: /^name: is required/,
  },
  {
    name: "an empty name",
    body: { name: "" },
    status: 400,
    code: "invalid_parameters",
    message: /^name: must be 1–100 characters \(got 0\)$/,
  },
  {
    name: "a 101-character name",
    body: { name: "x".repeat(101) },
    status: 400,
    code: "invalid_parameters",
    message: /^name: must be 1–100 characters \(got 101\)$/,
  },
  { name: "101 emoji", body: { name: "🔑".repeat(101) }, status: 400, code: "invalid_parameters", message: /got 101/ },
  {
    name: "a whitespace-only name",
    body: { name: "   " },
    status: 400,
    code: "invalid_parameters",
    message: /^name: must contain a visible character$/,
  },
  {
    name: "a name with a newline",
    body: { name: "a\nb" },
    status: 400,
    code: "invalid_parameters",
    message: /^name: must not contain control characters$/,
  },
  {
    name: "a name with a lone surrogate",
    body: '{"name":"a\\ud800b"}',
    status: 400,
    code: "invalid_parameters",
    message: /control characters/,
  },
  {
    name: "a numeric name",
    body: { name: 42 },
    status: 400,
    code: "invalid_parameters",
    message: /^name: must be a string of 1–100 characters$/,
  },
  {
    name: "a past expires_at",
    body: { name: "x", expires_at: "2020-01-01T00:00:00Z" },
    status: 400,
    code: "invalid_parameters",
    message: /^expires_at: must be in the future \(the gateway's time is 2031-03-04T05:06:07.000Z\)$/,
  },
  {
    name: "expires_at equal to now",
    body: { name: "x", expires_at: "2031-03-04T05:06:07.000Z" },
    status: 400,
    code: "invalid_parameters",
    message: /^expires_at: must be in the future/,
  },
  {
    name: "a date-only expires_at",
    body: { name: "x", expires_at: "2032-01-01" },
    status: 400,
    code: "invalid_parameters",
    message: /^expires_at: must be an ISO 8601 date-time with a time zone, e.g. 2030-01-01T00:00:00Z$/,
  },
  {
    name: "expires_at without a time zone",
    body: { name: "x", expires_at: "2032-01-01T00:00:00" },
    status: 400,
    code: "invalid_parameters",
    message: /^expires_at: must be an ISO 8601/,
  },
  {
    name: "expires_at as a number",
    body: { name: "x", expires_at: 1956528000000 },
    status: 400,
    code: "invalid_parameters",
    message: /^expires_at: must be an ISO 8601/,
  },
  {
    name: "an impossible date",
    body: { name: "x", expires_at: "2032-02-30T00:00:00Z" },
    status: 400,
    code: "invalid_parameters",
    message: /^expires_at: must be an ISO 8601/,
  },
  {
    name: "an unknown field",
    body: { name: "x", scopes: ["all"] },
    status: 400,
    code: "invalid_parameters",
    message: /^scopes: unknown field; allowed: name, expires_at$/,
  },
  {
    name: "two unknown fields",
    body: { name: "x", a: 1, b: 2 },
    status: 400,
    code: "invalid_parameters",
    message: /^a, b: unknown fields; allowed: name, expires_at$/,
  },
  {
    name: "a __proto__ field",
    body: '{"name":"x","__proto__":{"admin":true}}',
    status: 400,
    code: "invalid_parameters",
    message: /^__proto__: unknown field/,
  },
  {
    name: "an account_id field",
    body: { name: "x", account_id: "someone_else" },
    status: 400,
    code: "invalid_parameters",
    message: /^account_id: unknown field/,
  },
  {
    name: "an array body",
    body: "[]",
    status: 400,
    code: "invalid_parameters",
    message: /^body: must be a JSON object, e.g. \{"name":"Production"\}$/,
  },
  {
    name: "a null body",
    body: "null",
    status: 400,
    code: "invalid_parameters",
    message: /^body: must be a JSON object/,
  },
  {
    name: "a string body",
    body: '"Production"',
    status: 400,
    code: "invalid_parameters",
    message: /^body: must be a JSON object/,
  },
  {
    name: "several problems at once",
    body: { name: "", expires_at: "soon" },
    status: 400,
    code: "invalid_parameters",
    message: /^name: must be 1–100 characters \(got 0\); expires_at: must be an ISO 8601/,
  },
  {
    name: "a form-encoded body",
    body: "name=Production",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    status: 400,
    code: "invalid_content_type",
    message: /^Content-Type must be application\/json \(got "application\/x-www-form-urlencoded"\)$/,
  },
  {
    name: "text/plain JSON",
    body: json({ name: "x" }),
    headers: { "content-type": "text/plain;charset=UTF-8" },
    status: 400,
    code: "invalid_content_type",
    message: /got "text\/plain"/,
  },
  {
    name: "an oversized body with Content-Length",
    body: json({ name: "x", pad: "y".repeat(20_000) }),
    status: 413,
    code: "payload_too_large",
    message: /larger than 16384 bytes/,
  },
  {
    name: "deep nesting",
    body: `{"name":${"[".repeat(5000)}${"]".repeat(5000)}}`,
    status: 400,
    code: "invalid_parameters",
    message: /^name: must be a string/,
  },
];

describe("POST /v1/keys rejects", () => {
  it.each(createCases)("$name → $status $code", async ({ body, headers, status, code, message }) => {
    const { g, account, caller } = await setup();
    const before = await accountSnapshot(account);
    const answer = await g.call("POST", "/v1/keys", {
      auth: caller,
      body,
      headers: { "content-type": "application/json", ...headers },
    });
    expect(answer.status).toBe(status);
    expect(answer.headers.get("content-type")).toBe("application/json");
    expect(answer.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.json.error.type).toBe("invalid_request_error");
    expect(answer.json.error.code).toBe(code);
    expect(answer.json.error.message).toMatch(message);
    expect(Object.keys(answer.json)).toEqual(["error"]);
    expect(Object.keys(answer.json.error)).toEqual(["type", "code", "message"]);
    expect(await accountSnapshot(account)).toEqual(before);
    expect(g.engineCalls).toHaveLength(0);
  });

  it("an oversized streamed body (no Content-Length) → 413, read no further than the limit", async () => {
    const { g, account, caller } = await setup();
    const before = await accountSnapshot(account);
    let pulled = 0;
    const chunk = new TextEncoder().encode(`{"name":"x","pad":"${"y".repeat(4000)}`);
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 1000) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const answer = await g.call("POST", "/v1/keys", {
      auth: caller,
      body: stream,
      headers: { "content-type": "application/json" },
    });
    expect(answer.status).toBe(413);
    expect(answer.json.error.code).toBe("payload_too_large");
    expect(pulled).toBeLessThan(10);
    expect(await accountSnapshot(account)).toEqual(before);
  });

  it("accepts a body of exactly the limit", async () => {
    const { g, caller } = await setup();
    const base = json({ name: "x" });
    const body = `${base.slice(0, -1)}${" ".repeat(16 * 1024 - base.length)}}`;
    expect(new TextEncoder().encode(body).length).toBe(16 * 1024);
    const answer = await g.call("POST", "/v1/keys", {
      auth: caller,
      body,
      headers: { "content-type": "application/json" },
    });
    expect(answer.status).toBe(201);
  });

  it("accepts exactly 100 characters, counted in code points", async () => {
    const { g, caller } = await setup();
    for (const name of ["x".repeat(100), "🔑".repeat(100)]) {
      const answer = await g.call("POST", "/v1/keys", { auth: caller, body: { name } });
      expect(answer.status).toBe(201);
      expect(answer.json.name).toBe(name);
    }
  });

  it("accepts application/json with a charset and the +json suffix", async () => {
    const { g, caller } = await setup();
    for (const type of ["application/json; charset=utf-8", "application/merge-patch+json", "APPLICATION/JSON"]) {
      const answer = await g.call("POST", "/v1/keys", {
        auth: caller,
        body: json({ name: "x" }),
        headers: { "content-type": type },
      });
      expect(answer.status, type).toBe(201);
    }
  });
});

const rollCases: Case[] = [
  {
    name: "a negative grace",
    body: { grace_period_seconds: -1 },
    status: 400,
    code: "invalid_parameters",
    message: /^grace_period_seconds: must be an integer from 0 to 86400$/,
  },
  {
    name: "a grace over a day",
    body: { grace_period_seconds: 86_401 },
    status: 400,
    code: "invalid_parameters",
    message: /^grace_period_seconds: must be an integer from 0 to 86400$/,
  },
  {
    name: "a fractional grace",
    body: { grace_period_seconds: 1.5 },
    status: 400,
    code: "invalid_parameters",
    message: /^grace_period_seconds: must be an integer/,
  },
  {
    name: "a string grace",
    body: { grace_period_seconds: "60" },
    status: 400,
    code: "invalid_parameters",
    message: /^grace_period_seconds: must be an integer/,
  },
  {
    name: "an unknown field",
    body: { grace: 60 },
    status: 400,
    code: "invalid_parameters",
    message: /^grace: unknown field; allowed: grace_period_seconds$/,
  },
  { name: "bad JSON", body: "{grace_period_seconds: 1}", status: 400, code: "invalid_json", message: /not valid JSON/ },
  {
    name: "an oversized body",
    body: json({ grace_period_seconds: 1, pad: "x".repeat(17_000) }),
    status: 413,
    code: "payload_too_large",
    message: /16384/,
  },
];

describe("POST /v1/keys/{key_id}/roll rejects", () => {
  it.each(rollCases)("$name → $status $code, and the key is unchanged", async ({ body, status, code, message }) => {
    const { g, caller, target } = await setup();
    const before = await keySnapshot(target.id);
    const answer = await g.call("POST", `/v1/keys/${target.id}/roll`, {
      auth: caller,
      body,
      headers: { "content-type": "application/json" },
    });
    expect(answer.status).toBe(status);
    expect(answer.json.error.code).toBe(code);
    expect(answer.json.error.message).toMatch(message);
    expect(await keySnapshot(target.id)).toEqual(before);
  });

  it("accepts no body, an empty body with a JSON Content-Type, and {} (grace 0)", async () => {
    const { g, caller, target } = await setup();
    for (const [body, headers] of [
      [undefined, {}],
      ["", { "content-type": "application/json" }],
      [{}, {}],
    ] as const) {
      const answer = await g.call("POST", `/v1/keys/${target.id}/roll`, { auth: caller, body, headers });
      expect(answer.status).toBe(200);
    }
    const record = JSON.parse((await keySnapshot(target.id)).record!);
    expect(record.previous_secret_hash).toBeNull();
  });

  it("accepts the boundaries 0 and 86400", async () => {
    const { g, caller, target } = await setup();
    for (const grace of [0, 86_400]) {
      const answer = await g.call("POST", `/v1/keys/${target.id}/roll`, {
        auth: caller,
        body: { grace_period_seconds: grace },
      });
      expect(answer.status).toBe(200);
    }
  });
});

describe("GET /v1/keys rejects", () => {
  const cases: [string, RegExp][] = [
    ["limit=0", /^limit: must be an integer from 1 to 100$/],
    ["limit=101", /^limit: must be an integer from 1 to 100$/],
    ["limit=abc", /^limit: must be an integer from 1 to 100$/],
    ["limit=2.5", /^limit: must be an integer from 1 to 100$/],
    ["limit=", /^limit: must be an integer from 1 to 100$/],
    ["limit=1&limit=2", /^limit: must be an integer from 1 to 100$/],
    ["cursor=", /^cursor: must be the next_cursor of the previous page, unchanged$/],
    ["cursor=has%20space", /^cursor: /],
    [`cursor=${"a".repeat(1025)}`, /^cursor: /],
    ["page=2", /^page: unknown query parameter; allowed: limit, cursor$/],
  ];

  it.each(cases)("?%s → 400 invalid_parameters naming the parameter", async (query, message) => {
    const { g, caller } = await setup();
    const answer = await g.call("GET", `/v1/keys?${query}`, { auth: caller });
    expect(answer.status).toBe(400);
    expect(answer.json.error).toEqual({
      type: "invalid_request_error",
      code: "invalid_parameters",
      message: expect.stringMatching(message),
    });
  });
});
