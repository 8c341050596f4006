/**
 * Who gets into the operator API (src/operator/gate.ts): a valid Cloudflare Access
 * assertion in a deployed environment, the local token in local development only, and
 * nobody else — every refusal is the 404 of an unknown route, nothing reaches the engine
 * and nothing changes in KV.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createKey, type TestEnv } from "./harness.ts";
import {
  AUD,
  accessCerts,
  accessEnv,
  accessKey,
  assertion,
  CERTS_URL,
  DEPLOYED_ORIGIN,
  ISSUER,
  LOCAL_ORIGIN,
  LOCAL_TOKEN,
  localEnv,
  NOT_FOUND_BODY,
  operatorGateway,
} from "./operator-support.ts";

const trusted = await accessKey();
const stranger = await accessKey(trusted.kid); // same kid, another key: a forged signature
const certs = accessCerts([trusted]);
const lines = (globalThis as { __nixflexLogLines?: string[] }).__nixflexLogLines!;

function expectNotFound(answer: { status: number; text: string; headers: Headers }) {
  expect(answer.status).toBe(404);
  expect(answer.text).toBe(NOT_FOUND_BODY);
  expect(answer.headers.get("www-authenticate")).toBeNull();
}

/** Creates a key through the operator API with these headers; returns the answer and what KV then holds. */
async function tryCreate(bindings: TestEnv, origin: string, headers: Record<string, string>) {
  const g = operatorGateway(bindings, { accessFetch: certs.accessFetch });
  const account = `acct_gate_${crypto.randomUUID().slice(0, 8)}`;
  const answer = await g.call("POST", `${origin}/v1/operator/accounts/${account}/keys`, {
    headers,
    body: { name: "from the gate test" },
  });
  const stored = await g.store.list(account, { limit: 10 });
  return { answer, stored: stored.data, engineCalls: g.engine.calls.length };
}

describe("Cloudflare Access", () => {
  it("lets a valid user assertion in and names the user in the audit line", async () => {
    const token = await assertion(trusted, { email: "alice@nixflex.com" });
    const before = lines.length;
    const { answer, stored } = await tryCreate(accessEnv(), DEPLOYED_ORIGIN, { "cf-access-jwt-assertion": token });
    expect(answer.status).toBe(201);
    expect(stored.map((key) => key.key_id)).toEqual([answer.json.key_id]);
    const audit = lines
      .slice(before)
      .map((line) => JSON.parse(line))
      .find((entry) => entry.event === "audit");
    expect(audit).toMatchObject({ action: "create", actor: "operator:alice@nixflex.com" });
    expect(certs.fetched.every((url) => url === CERTS_URL)).toBe(true);
    expect(certs.fetched.length).toBeGreaterThan(0);
  });

  it("lets a service token's assertion in, named by its client id (common_name)", async () => {
    const token = await assertion(trusted, { common_name: "8c1b7d.access", sub: "" });
    const before = lines.length;
    const { answer } = await tryCreate(accessEnv(), DEPLOYED_ORIGIN, { "cf-access-jwt-assertion": token });
    expect(answer.status).toBe(201);
    expect(lines.slice(before).join("\n")).toContain('"actor":"operator:service_token:8c1b7d.access"');
  });

  const now = Math.floor(Date.now() / 1000);
  const refused: [string, string, () => Promise<Record<string, string>>][] = [
    ["no credential at all", "no_credential", async () => ({})],
    [
      "an assertion for another application (aud)",
      "ERR_JWT_CLAIM_VALIDATION_FAILED",
      async () => ({
        "cf-access-jwt-assertion": await assertion(trusted, undefined, { audience: "someone-elses-aud" }),
      }),
    ],
    [
      "an assertion from another team (iss)",
      "ERR_JWT_CLAIM_VALIDATION_FAILED",
      async () => ({
        "cf-access-jwt-assertion": await assertion(trusted, undefined, { issuer: "https://evil.cloudflareaccess.com" }),
      }),
    ],
    [
      "an expired assertion",
      "ERR_JWT_EXPIRED",
      async () => ({
        "cf-access-jwt-assertion": await assertion(trusted, undefined, { expiresIn: now - 5 }),
      }),
    ],
    [
      "an assertion signed by another key under the trusted kid",
      "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
      async () => ({
        "cf-access-jwt-assertion": await assertion(stranger),
      }),
    ],
    [
      "an assertion with an unknown kid",
      "ERR_JWKS_NO_MATCHING_KEY",
      async () => ({
        "cf-access-jwt-assertion": await assertion(trusted, undefined, { kid: "not-a-team-key" }),
      }),
    ],
    [
      "an assertion with no subject (no email, no common_name)",
      "no_subject",
      async () => ({
        "cf-access-jwt-assertion": await assertion(trusted, { sub: "x" }),
      }),
    ],
    [
      "an unsigned token (alg none)",
      "ERR_JOSE_ALG_NOT_ALLOWED",
      async () => {
        const part = (value: object) => btoa(JSON.stringify(value)).replace(/=+$/, "");
        const claims = { iss: ISSUER, aud: [AUD], email: "alice@nixflex.com", exp: now + 60 };
        return { "cf-access-jwt-assertion": `${part({ alg: "none" })}.${part(claims)}.` };
      },
    ],
    ["garbage in the assertion header", "ERR_JWS_INVALID", async () => ({ "cf-access-jwt-assertion": "not a jwt" })],
    ["a valid API key instead", "no_credential", async () => ({ authorization: (await createKey()).authorization })],
    [
      "the local token, in a deployed environment",
      "no_credential",
      async () => ({ authorization: `Bearer ${LOCAL_TOKEN}` }),
    ],
  ];

  it.for(refused)(
    "answers %s with the 404 of an unknown route, forwarding and storing nothing",
    async ([, reason, headers]) => {
      const before = lines.length;
      const { answer, stored, engineCalls } = await tryCreate(
        accessEnv({ OPERATOR_TOKEN: LOCAL_TOKEN }),
        DEPLOYED_ORIGIN,
        await headers(),
      );
      expectNotFound(answer);
      expect(stored).toEqual([]);
      expect(engineCalls).toBe(0);
      // Why goes to the log only (as a jose error code), never to the client.
      expect(lines.slice(before).join("\n")).toContain(`"event":"operator_denied","reason":"${reason}"`);
    },
  );

  it("answers 404 to everything where Access is not configured, even a valid assertion", async () => {
    const token = await assertion(trusted);
    const { answer, stored } = await tryCreate(accessEnv({ ACCESS_TEAM_DOMAIN: "", ACCESS_AUD: "" }), DEPLOYED_ORIGIN, {
      "cf-access-jwt-assertion": token,
    });
    expectNotFound(answer);
    expect(stored).toEqual([]);
  });

  it.for<[string, Partial<TestEnv>]>([
    ["a team domain outside cloudflareaccess.com", { ACCESS_TEAM_DOMAIN: "nixflex.example.com" }],
    ["a team domain without its AUD", { ACCESS_AUD: "" }],
  ])("stays off (404, the setting named in the log) with %s", async ([, overrides]) => {
    const before = lines.length;
    const { answer } = await tryCreate(accessEnv(overrides), DEPLOYED_ORIGIN, {
      "cf-access-jwt-assertion": await assertion(trusted),
    });
    expectNotFound(answer);
    expect(lines.slice(before).join("\n")).toContain('"event":"operator_api_misconfigured"');
  });

  it("accepts the team domain written as a URL", async () => {
    const { answer } = await tryCreate(accessEnv({ ACCESS_TEAM_DOMAIN: `${ISSUER}/` }), DEPLOYED_ORIGIN, {
      "cf-access-jwt-assertion": await assertion(trusted),
    });
    expect(answer.status).toBe(201);
  });
});

describe("the local token", () => {
  it("is accepted in local development on a loopback address, as operator `local`", async () => {
    const before = lines.length;
    const { answer } = await tryCreate(localEnv(), LOCAL_ORIGIN, { authorization: `Bearer ${LOCAL_TOKEN}` });
    expect(answer.status).toBe(201);
    expect(lines.slice(before).join("\n")).toContain('"actor":"operator:local"');
  });

  it.for<[string, TestEnv, string, Record<string, string>]>([
    ["a wrong token", localEnv(), LOCAL_ORIGIN, { authorization: `Bearer ${LOCAL_TOKEN}x` }],
    ["a prefix of the token", localEnv(), LOCAL_ORIGIN, { authorization: `Bearer ${LOCAL_TOKEN.slice(0, -1)}` }],
    ["no token", localEnv(), LOCAL_ORIGIN, {}],
    ["the token sent to a public hostname", localEnv(), DEPLOYED_ORIGIN, { authorization: `Bearer ${LOCAL_TOKEN}` }],
    [
      "the token where OPERATOR_TOKEN_ALLOWED is absent (every deployed environment)",
      localEnv({ OPERATOR_TOKEN_ALLOWED: undefined }),
      LOCAL_ORIGIN,
      { authorization: `Bearer ${LOCAL_TOKEN}` },
    ],
    [
      "a token shorter than 32 characters, even when it matches",
      localEnv({ OPERATOR_TOKEN: "short-token" }),
      LOCAL_ORIGIN,
      { authorization: "Bearer short-token" },
    ],
  ])("refuses %s with the 404", async ([, bindings, origin, headers]) => {
    const { answer, stored, engineCalls } = await tryCreate(bindings, origin, headers);
    expectNotFound(answer);
    expect(stored).toEqual([]);
    expect(engineCalls).toBe(0);
  });

  it("comes from wrangler.toml's top level only: the test env (the top level) allows it", () => {
    // The deployed environments' vars are checked by test/e2e/operator-config.test.ts.
    expect((env as TestEnv).OPERATOR_TOKEN_ALLOWED).toBe("true");
  });
});

describe("the operator prefix", () => {
  it.for(["/v1/operator", "/v1/operator/", "/v1/operator/nothing/here", "/v1/operator/keys"])(
    "answers %s with the 404 for a valid API key, a valid operator alike",
    async (path) => {
      const g = operatorGateway(localEnv());
      const key = await createKey();
      expectNotFound(await g.call("GET", `${LOCAL_ORIGIN}${path}`, { headers: { authorization: key.authorization } }));
      expectNotFound(
        await g.call("GET", `${LOCAL_ORIGIN}${path}`, { headers: { authorization: `Bearer ${LOCAL_TOKEN}` } }),
      );
      expect(g.engine.calls).toHaveLength(0);
    },
  );
});
