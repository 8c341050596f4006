/**
 * The whole path over real HTTP on 127.0.0.1: keys CLI → the gateway's operator API → `wrangler dev`
 * gateway → demo engine verifying the identity header with the shipped verifier.
 */
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSigningJwk, serializeSet } from "../../scripts/lib/signing.ts";
import { UNAUTHORIZED_BODY } from "../../src/errors.ts";
import { parseSigningKeys } from "../../src/identity/keys.ts";
import { signIdentity } from "../../src/identity/sign.ts";
import { generateSecret } from "../../src/keys/format.ts";
import { KEY_CHANGE_BOUND_S } from "../../src/keys/sync.ts";
import { expectStandard401 } from "../support/standard-401.ts";
import { startStack, type CreatedKey, type KeysResult, type Stack } from "../support/stack.ts";

const JWT_SHAPE = /eyJ[\w-]+\.[\w-]+\.[\w-]*/;

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

let stack: Stack;
let key: CreatedKey;
/** Revoked (in beforeAll) right after its first use, while the gateway holds its record in cache. */
let inUse: CreatedKey;
let inUseBefore: { res: Response; text: string };
let inUseRevoke: KeysResult;
/** Every secret this file saw, to be looked for in the logs at the end. */
const secrets: string[] = [];

beforeAll(async () => {
  stack = await startStack();
  [key, inUse] = await Promise.all([
    stack.createKey("acct_vertical", "Vertical"),
    stack.createKey("acct_vertical", "In use"),
  ]);
  secrets.push(key.secret, inUse.secret);
  // Used once (cached by the gateway), then revoked with the CLI right after.
  inUseBefore = await call("/v1/agents", { authorization: inUse.authorization });
  inUseRevoke = await stack.keys(["revoke", inUse.keyId]);
});

afterAll(async () => {
  await stack?.stop();
});

async function call(path: string, init: RequestInit & { authorization?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.authorization !== undefined) headers.set("authorization", init.authorization);
  const res = await fetch(`${stack.gatewayUrl}${path}`, { ...init, headers });
  return { res, text: await res.text() };
}

describe("vertical: CLI → operator API → gateway → engine", () => {
  it("answers a request without a key with the byte-exact 401", async () => {
    const { res, text } = await call("/v1/agents");
    expectStandard401(res, text);
  });

  it("answers a wrong secret, a bad checksum and an unknown key with the same bytes", async () => {
    const badChecksum = key.secret.slice(0, 5) + (key.secret[5] === "A" ? "B" : "A") + key.secret.slice(6);
    const cases = [
      `Bearer ${key.keyId}:${generateSecret()}`,
      `Bearer ${key.keyId}:${badChecksum}`,
      `Bearer nxf_${"0".repeat(32)}:${key.secret}`,
    ];
    for (const authorization of cases) {
      const { res, text } = await call("/v1/agents", { authorization });
      expectStandard401(res, text);
    }
  });

  it("forwards an authenticated request with an identity the engine verifies", async () => {
    const body = JSON.stringify({ prompt: "hello", n: 1 });
    const { res, text } = await call("/v1/agents/run?verbose=1", {
      method: "POST",
      authorization: key.authorization,
      headers: { "content-type": "application/json", "x-nixflex-identity": "spoofed", "x-request-id": "client-chosen" },
      body,
    });
    expect(res.status).toBe(200);
    const echo = JSON.parse(text);
    expect(echo).toMatchObject({
      verified: true,
      account_id: "acct_vertical",
      key_id: key.keyId,
      method: "POST",
      path: "/v1/agents/run",
      query: "?verbose=1",
      body_sha256: sha256(body),
      body_bytes: Buffer.byteLength(body),
    });
    expect(echo.request_id).toBe(res.headers.get("x-request-id"));
    expect(echo.request_id).not.toBe("client-chosen");
    expect(echo.header_names).not.toContain("authorization");
    expect(echo.header_names).toContain("x-nixflex-identity");
  });

  it("streams a 2 MB body to the engine intact", async () => {
    const body = randomBytes(2 * 1024 * 1024);
    const { res, text } = await call("/v1/uploads", {
      method: "POST",
      authorization: key.authorization,
      headers: { "content-type": "application/octet-stream" },
      body,
    });
    expect(res.status).toBe(200);
    const echo = JSON.parse(text);
    expect(echo.body_bytes).toBe(body.length);
    expect(echo.body_sha256).toBe(sha256(body));
    expect(echo.key_id).toBe(key.keyId);
  });

  it("has an engine that refuses requests that did not come through the gateway", async () => {
    const direct = await fetch(`${stack.engineUrl}/v1/agents`);
    expect(direct.status).toBe(401);
    // The gateway's own 401 (SPEC §9): the engine does not say which check failed.
    expect(await direct.text()).toBe(UNAUTHORIZED_BODY);
    expect(direct.headers.get("www-authenticate")).toBe('Bearer realm="api.nixflex.com"');

    // A well-formed token from a key the gateway does not publish.
    const forger = parseSigningKeys(serializeSet({ keys: [await generateSigningJwk("EdDSA")] }));
    const token = await signIdentity(forger, {
      issuer: "https://api.nixflex.com",
      audience: "nixflex-engine",
      accountId: "acct_vertical",
      keyId: key.keyId,
      requestId: "forged",
      method: "GET",
      path: "/v1/agents",
      now: Math.floor(Date.now() / 1000),
    });
    const forged = await fetch(`${stack.engineUrl}/v1/agents`, { headers: { "x-nixflex-identity": token } });
    expect(forged.status).toBe(401);
    expect(await forged.text()).toBe(UNAUTHORIZED_BODY);
  });

  it("rejects a key revoked with the CLI on its very first request", async () => {
    const fresh = await stack.createKey("acct_vertical", "Revoked before use");
    secrets.push(fresh.secret);
    const revoked = await stack.keys(["revoke", fresh.keyId]);
    expect(revoked.code).toBe(0);
    const { res, text } = await call("/v1/agents", { authorization: fresh.authorization });
    expectStandard401(res, text);
  });

  it("stops a key in use on its very next request after a CLI revoke, and it stays stopped", async () => {
    // beforeAll used the key once (the gateway read KV then and cached the record) and revoked
    // it with the CLI right after. The CLI goes through the gateway's operator API, so the
    // revoke is in force in the gateway that holds the cached record at once.
    expect(inUseBefore.res.status).toBe(200);
    expect(inUseRevoke.code).toBe(0);
    expect(inUseRevoke.stdout).toContain(`${KEY_CHANGE_BOUND_S} s`);
    expect(inUseRevoke.stdout + inUseRevoke.stderr).not.toMatch(/nxfs_/);
    for (let i = 0; i < 3; i++) {
      const { res, text } = await call("/v1/agents", { authorization: inUse.authorization });
      expectStandard401(res, text);
    }
  });

  it("lists the revoked keys with keys list --json, without any secret or hash", async () => {
    const listed = await stack.keys(["list", "--account", "acct_vertical", "--json"]);
    expect(listed.code).toBe(0);
    expect(Object.keys(listed.json)).toEqual(["data", "has_more", "next_cursor"]);
    const byId = new Map(listed.json.data.map((k: { key_id: string }) => [k.key_id, k]));
    expect(byId.get(key.keyId)).toMatchObject({ object: "api_key", name: "Vertical", revoked_at: null });
    const revoked = byId.get(inUse.keyId) as Record<string, unknown>;
    expect(revoked).toMatchObject({
      object: "api_key",
      key_id: inUse.keyId,
      name: "In use",
      revoked_at: expect.any(String),
    });
    expect(revoked.last_used_at === null || typeof revoked.last_used_at === "string").toBe(true);
    for (const secret of secrets) expect(listed.stdout).not.toContain(secret);
    expect(listed.stdout).not.toMatch(/nxfs_|sha256:|secret_hash|key_secret/);
  });

  it("keeps every secret, Authorization value and JWT out of the gateway's and the engine's logs", () => {
    const gatewayLog = stack.gatewayLog();
    const gatewayDebugLog = stack.gatewayDebugLog();
    const engineLog = stack.engineLog();
    // Not vacuous: the logs hold the requests made above, by key_id.
    expect(gatewayLog).toContain(key.keyId);
    expect(gatewayDebugLog).toContain(key.keyId);
    expect(engineLog).toContain(key.keyId);
    for (const log of [gatewayLog, gatewayDebugLog, engineLog]) {
      for (const secret of secrets) expect(log).not.toContain(secret);
      expect(log).not.toMatch(/nxfs_[0-9A-Za-z]{8}/);
      expect(log).not.toMatch(/bearer\s+nxf_/i);
      expect(log).not.toMatch(JWT_SHAPE);
      expect(log).not.toContain("spoofed");
    }
  });
});
