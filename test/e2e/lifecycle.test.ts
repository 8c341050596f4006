/**
 * The key lifecycle a newcomer walks through, in one scripted test over real HTTP against
 * the real local gateway (`wrangler dev`) and the demo engine that verifies every forward
 * (SPEC §5): bootstrap with the CLI → create a key with that key → use it at once → list
 * it (no secret, no hash) → roll it with a grace period → revoke it → the standard 401.
 * Plus: another account's key_id is indistinguishable from an unknown one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KEY_CHANGE_BOUND_S } from "../../src/keys/sync.ts";
import { expectStandard401 } from "../support/standard-401.ts";
import { startStack, type Stack } from "../support/stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function api(path: string, authorization: string, init: { method?: string; json?: unknown } = {}) {
  const headers = new Headers({ authorization });
  if (init.json !== undefined) headers.set("content-type", "application/json");
  const res = await fetch(`${stack.gatewayUrl}${path}`, {
    method: init.method ?? "GET",
    headers,
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
  const text = await res.text();
  return { res, text, json: text.startsWith("{") ? JSON.parse(text) : undefined };
}

const bearer = (keyId: string, secret: string) => `Bearer ${keyId}:${secret}`;

describe("key lifecycle over real HTTP", () => {
  it("creates, uses, lists, rolls and revokes a key, and the revoked key gets the standard 401", async () => {
    // Bootstrap: the dashboard's job, done from a shell.
    const root = await stack.createKey("acct_life", "Bootstrap");

    // Create a key with an existing key.
    const created = await api("/v1/keys", root.authorization, { method: "POST", json: { name: "Production" } });
    expect(created.res.status).toBe(201);
    expect(created.res.headers.get("cache-control")).toBe("no-store");
    expect(created.json).toMatchObject({ object: "api_key", name: "Production", revoked_at: null });
    const keyId: string = created.json.key_id;
    const secret: string = created.json.key_secret;
    expect(keyId).toMatch(/^nxf_[0-9a-f]{32}$/);
    expect(secret).toMatch(/^nxfs_[0-9A-Za-z]{64}$/);

    // Use it at once: the engine verifies the identity and echoes who it trusted.
    const used = await api("/v1/agents?limit=1", bearer(keyId, secret));
    expect(used.res.status).toBe(200);
    expect(used.json).toMatchObject({
      verified: true,
      account_id: "acct_life",
      key_id: keyId,
      method: "GET",
      path: "/v1/agents",
    });

    // List: both keys, newest first, no secret or hash anywhere in the answer.
    const listed = await api("/v1/keys", bearer(keyId, secret));
    expect(listed.res.status).toBe(200);
    expect(listed.json.data.map((k: { key_id: string }) => k.key_id)).toEqual([keyId, root.keyId]);
    expect(listed.json.has_more).toBe(false);
    expect(listed.text).not.toMatch(/nxfs_|sha256|secret|hash/);

    // Get one.
    const got = await api(`/v1/keys/${keyId}`, root.authorization);
    expect(got.res.status).toBe(200);
    expect(got.json.key_id).toBe(keyId);
    expect(got.text).not.toMatch(/nxfs_|sha256/);

    // Roll with a grace period: old and new secrets both work during it.
    const rolled = await api(`/v1/keys/${keyId}/roll`, root.authorization, {
      method: "POST",
      json: { grace_period_seconds: 3600 },
    });
    expect(rolled.res.status).toBe(200);
    const newSecret: string = rolled.json.key_secret;
    expect(rolled.json.key_id).toBe(keyId);
    expect(newSecret).not.toBe(secret);
    expect((await api("/v1/agents", bearer(keyId, newSecret))).res.status).toBe(200);
    expect((await api("/v1/agents", bearer(keyId, secret))).res.status).toBe(200);

    // Roll again without grace: the secret it replaces stops at once.
    const rolledAgain = await api(`/v1/keys/${keyId}/roll`, root.authorization, {
      method: "POST",
      json: { grace_period_seconds: 0 },
    });
    expect(rolledAgain.res.status).toBe(200);
    const latest: string = rolledAgain.json.key_secret;
    const stale = await api("/v1/agents", bearer(keyId, newSecret));
    expectStandard401(stale.res, stale.text);
    expect((await api("/v1/agents", bearer(keyId, latest))).res.status).toBe(200);

    // Revoke: the answer carries the global bound (the key change log took it); the very next request is refused.
    const revoked = await api(`/v1/keys/${keyId}`, root.authorization, { method: "DELETE" });
    expect(revoked.res.status).toBe(200);
    expect(revoked.json.revoked_at).toEqual(expect.any(String));
    expect(revoked.json.revocation_propagation_seconds).toBe(KEY_CHANGE_BOUND_S);
    const refused = await api("/v1/agents", bearer(keyId, latest));
    expectStandard401(refused.res, refused.text);

    // Revoking again is idempotent: same revoked_at.
    const again = await api(`/v1/keys/${keyId}`, root.authorization, { method: "DELETE" });
    expect(again.res.status).toBe(200);
    expect(again.json.revoked_at).toBe(revoked.json.revoked_at);

    // The bootstrap key still works, and the list shows the revoked key as revoked.
    const after = await api("/v1/keys", root.authorization);
    const entry = after.json.data.find((k: { key_id: string }) => k.key_id === keyId);
    expect(entry.revoked_at).toBe(revoked.json.revoked_at);
    expect(entry.last_used_at).not.toBeNull();
  });

  it("answers another account's key_id exactly like an unknown one, and changes nothing", async () => {
    const mine = await stack.createKey("acct_mine", "Mine");
    const theirs = await stack.createKey("acct_theirs", "Theirs");
    const unknown = "nxf_00000000000000000000000000000000";
    for (const [method, suffix] of [
      ["GET", ""],
      ["DELETE", ""],
      ["POST", "/roll"],
    ] as const) {
      const foreign = await api(`/v1/keys/${theirs.keyId}${suffix}`, mine.authorization, { method });
      const missing = await api(`/v1/keys/${unknown}${suffix}`, mine.authorization, { method });
      expect(foreign.res.status).toBe(404);
      expect(foreign.text).toBe(missing.text);
      expect(JSON.parse(foreign.text).error).toMatchObject({ type: "not_found_error", code: "key_not_found" });
    }
    // Their key is untouched: not revoked, not rolled.
    expect((await api("/v1/agents", theirs.authorization)).res.status).toBe(200);
    const own = await api(`/v1/keys/${theirs.keyId}`, theirs.authorization);
    expect(own.json.revoked_at).toBeNull();
  });

  it("kept every secret out of the gateway's and the engine's logs", () => {
    const logs = stack.gatewayLog() + stack.engineLog();
    expect(logs).not.toMatch(/nxfs_[0-9A-Za-z]{64}/);
    expect(logs).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
  });
});
