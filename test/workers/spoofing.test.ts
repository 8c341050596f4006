/**
 * Spoofing (issue 5, item 2; SPEC §4): nothing a client sends reaches the engine as
 * trusted data. The engine trusts X-Nixflex-Identity, X-Request-Id and X-Forwarded-*;
 * each is the gateway's own, whatever names, casings, duplicates or captured tokens the
 * client tries.
 */
import { describe, expect, it } from "vitest";
import { IdentityError } from "../../src/verify/index.ts";
import {
  createKey,
  expectStandard401,
  gateway,
  jwtParts,
  PUBLIC_ORIGIN,
  type Gateway,
  type TestKey,
} from "./harness.ts";

const ENGINE_ORIGIN = "http://127.0.0.1:8788";

/** Headers the engine received whose name, read the way CGI-style servers do, is gateway-owned. */
function trustedLooking(seen: Request): Array<[string, string]> {
  const owned = /^(x-nixflex-.*|x-request-id|x-forwarded-(for|host|proto|port)|x-real-ip|forwarded)$/;
  return [...seen.headers].filter(([name]) => owned.test(name.replace(/_/g, "-")));
}

async function forwardWith(h: Gateway, key: TestKey, headers: Headers, path = "/v1/calls", method = "POST") {
  headers.set("authorization", key.authorization);
  headers.set("cf-connecting-ip", "198.51.100.20");
  const sent = await h.send(h.request(path, { method, headers, body: method === "GET" ? undefined : "{}" }));
  expect(sent.res.status).toBe(200);
  return h.engine.calls.at(-1)!;
}

/** The engine must see exactly the gateway's own values for the headers it trusts. */
async function expectOnlyGatewayValues(h: Gateway, key: TestKey, seen: Request): Promise<void> {
  const requestId = seen.headers.get("x-request-id")!;
  expect(trustedLooking(seen).sort()).toEqual(
    [
      ["x-forwarded-for", "198.51.100.20"],
      ["x-forwarded-host", "api.nixflex.com"],
      ["x-forwarded-proto", "https"],
      ["x-nixflex-identity", seen.headers.get("x-nixflex-identity")!],
      ["x-request-id", requestId],
    ].sort(),
  );
  const identity = await h.verifier()(seen);
  expect(identity).toEqual({ accountId: key.accountId, keyId: key.keyId, requestId });
}

describe("client headers that imitate the gateway's", () => {
  it("drops x-nixflex-* in every casing, sent several times", async () => {
    const [h, key] = [gateway(), await createKey()];
    const headers = new Headers();
    for (const name of [
      "X-Nixflex-Identity",
      "x-nixflex-identity",
      "X-NIXFLEX-IDENTITY",
      "X-Nixflex-Account-Id",
      "x-NIXFLEX-key-id",
      "X-Nixflex-Request-Id",
      "x-nixflex-",
    ]) {
      headers.append(name, "acct_victim");
      headers.append(name, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhY2N0X3ZpY3RpbSJ9.");
    }
    await expectOnlyGatewayValues(h, key, await forwardWith(h, key, headers));
  });

  it("replaces X-Request-Id, X-Forwarded-*, X-Real-IP and Forwarded, even when sent twice", async () => {
    const [h, key] = [gateway(), await createKey()];
    const headers = new Headers();
    for (const value of ["1.2.3.4", "5.6.7.8"]) {
      headers.append("X-Request-Id", `spoof-${value}`);
      headers.append("x-forwarded-for", value);
      headers.append("X-Forwarded-Host", "admin.internal");
      headers.append("x-forwarded-proto", "http");
      headers.append("X-Forwarded-Port", "22");
      headers.append("x-real-ip", value);
      headers.append("Forwarded", `for=${value}`);
    }
    const seen = await forwardWith(h, key, headers);
    await expectOnlyGatewayValues(h, key, seen);
    for (const [, value] of seen.headers) expect(value).not.toMatch(/spoof|1\.2\.3\.4|5\.6\.7\.8|admin\.internal/);
  });

  it("sends no X-Forwarded-For when the request has no CF-Connecting-IP, even if the client sent one", async () => {
    const [h, key] = [gateway(), await createKey()];
    const request = new Request(`${PUBLIC_ORIGIN}/v1/calls`, {
      headers: { authorization: key.authorization, "x-forwarded-for": "203.0.113.66" },
    });
    expect((await h.send(request)).res.status).toBe(200);
    expect(h.engine.calls[0]!.headers.has("x-forwarded-for")).toBe(false);
  });

  it("drops underscore look-alikes (x_nixflex_identity, x_request_id, x_forwarded_for) that CGI-style servers fold onto the real names", async () => {
    const [h, key] = [gateway(), await createKey()];
    const captured = (await forwardWith(h, key, new Headers())).headers.get("x-nixflex-identity")!;
    const headers = new Headers({
      x_nixflex_identity: captured,
      X_Nixflex_Account: "acct_victim",
      x_request_id: "spoofed-id",
      x_forwarded_for: "10.0.0.1",
      X_Forwarded_Host: "admin.internal",
      x_real_ip: "10.0.0.2",
    });
    await expectOnlyGatewayValues(h, key, await forwardWith(h, key, headers));
  });
});

describe("a second Authorization header", () => {
  it.each([
    ["the same valid pair twice", (a: TestKey, _b: TestKey) => [a.authorization, a.authorization]],
    ["two different valid pairs", (a: TestKey, b: TestKey) => [a.authorization, b.authorization]],
    ["a valid pair, then garbage", (a: TestKey) => [a.authorization, "Bearer x"]],
    ["garbage, then a valid pair", (a: TestKey) => ["Basic Zm9vOmJhcg==", a.authorization]],
  ])("answers the standard 401 to %s (comma-joined by the runtime)", async (_name, values) => {
    const [h, a, b] = [gateway(), await createKey(), await createKey()];
    const headers = new Headers({ "cf-connecting-ip": "198.51.100.21" });
    for (const value of values(a, b)) headers.append("authorization", value);
    const { res, body } = await h.send(h.request("/v1/calls", { method: "POST", headers, body: "{}" }));
    expectStandard401(res, body);
    expect(h.engine.calls).toHaveLength(0);
  });
});

describe("a validly signed identity token captured from an earlier forward", () => {
  async function capture() {
    const h = gateway();
    const victim = await createKey({ accountId: "acct_victim" });
    const seen = await forwardWith(h, victim, new Headers());
    return { h, victim, token: seen.headers.get("x-nixflex-identity")! };
  }

  it("does not authenticate a request that carries no key", async () => {
    const { h, token } = await capture();
    const { res, body } = await h.send(
      h.request("/v1/calls", { method: "POST", body: "{}", headers: { "X-Nixflex-Identity": token } }),
    );
    expectStandard401(res, body);
    expect(h.engine.calls).toHaveLength(1);
  });

  it("does not authenticate when sent as the Bearer credential", async () => {
    const { h, token } = await capture();
    const { res } = await h.send(
      h.request("/v1/calls", { method: "POST", body: "{}", authorization: `Bearer ${token}` }),
    );
    expect(res.status).toBe(401);
    expect(h.engine.calls).toHaveLength(1);
  });

  it("is replaced by a fresh token for the caller's own account when sent alongside another key", async () => {
    const { h, token } = await capture();
    const attacker = await createKey({ accountId: "acct_attacker" });
    const seen = await forwardWith(
      h,
      attacker,
      new Headers({ "x-nixflex-identity": token, "X-NIXFLEX-IDENTITY": token }),
    );
    for (const [, value] of seen.headers) expect(value).not.toContain(token);
    await expectOnlyGatewayValues(h, attacker, seen);
    expect(jwtParts(seen.headers.get("x-nixflex-identity")!).payload.sub).toBe("acct_attacker");
  });

  it.each([
    ["another method", "DELETE", "/v1/calls"],
    ["another path", "POST", "/v1/keys"],
    ["a sub-path", "POST", "/v1/calls/admin"],
    ["the same path with a trailing slash", "POST", "/v1/calls/"],
  ])("is rejected by the verifier when replayed straight at the engine with %s", async (_name, method, path) => {
    const { h, token } = await capture();
    const replay = new Request(ENGINE_ORIGIN + path, { method, headers: { "x-nixflex-identity": token } });
    const error = await h
      .verifier()(replay)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentityError);
    expect((error as IdentityError).code).toBe("ERR_IDENTITY_MISMATCH");
  });

  it("still verifies for the exact method and path it was issued for, until it expires", async () => {
    // The residual risk SPEC §4 accepts: a header captured on the engine's side of the
    // gateway can be replayed against the same endpoint until it expires.
    const { h, token, victim } = await capture();
    const replay = new Request(`${ENGINE_ORIGIN}/v1/calls`, {
      method: "POST",
      headers: { "x-nixflex-identity": token },
    });
    await expect(h.verifier()(replay)).resolves.toMatchObject({ accountId: victim.accountId });
  });
});
