/**
 * `GET /v1/keys?cursor=` (issue 14 item 5; SPEC §6: a malformed list cursor is 400): a
 * cursor not shaped like a Workers KV cursor never reaches KV, and one KV refuses is the
 * caller's 400, not a 503.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { gateway, uniqueAccount } from "./keys-support.ts";

/** The real local KV, except that `list` fails as `failure` says whenever it is given a cursor. */
function refusingKv(failure: string) {
  const inner = env.API_KEYS;
  let lists = 0;
  const kv = {
    get: inner.get.bind(inner),
    getWithMetadata: inner.getWithMetadata.bind(inner),
    put: inner.put.bind(inner),
    delete: inner.delete.bind(inner),
    list: (options?: KVNamespaceListOptions) => {
      lists++;
      if (options?.cursor !== undefined) return Promise.reject(new Error(failure));
      return inner.list(options);
    },
  } as unknown as KVNamespace;
  return { kvEnv: { ...env, API_KEYS: kv }, lists: () => lists };
}

describe("GET /v1/keys with a cursor", () => {
  it.each(["!!!", "abc?def", "a.b", "Zm9v=x", "====", "a%00b", "\u00e9t\u00e9"])(
    "refuses %j before any KV list: 400 invalid_parameters naming cursor",
    async (cursor) => {
      const spy = refusingKv("unused");
      const g = gateway({ kvEnv: spy.kvEnv });
      const caller = await g.createKey(uniqueAccount());
      const answer = await g.call("GET", `/v1/keys?cursor=${encodeURIComponent(cursor)}`, { auth: caller });
      expect(answer.status).toBe(400);
      expect(answer.json.error).toEqual({
        type: "invalid_request_error",
        code: "invalid_parameters",
        message: expect.stringMatching(/^cursor: /),
      });
      expect(spy.lists()).toBe(0);
    },
  );

  it("accepts the shapes KV issues: base64url (deployed) and padded base64 (local)", async () => {
    const g = gateway();
    const account = uniqueAccount();
    const caller = await g.createKey(account);
    for (let i = 0; i < 3; i++) await g.createKey(account);
    const first = await g.call("GET", "/v1/keys?limit=2", { auth: caller });
    expect(first.json.next_cursor).toMatch(/^[A-Za-z0-9+/_-]+={0,2}$/);
    const second = await g.call("GET", `/v1/keys?limit=2&cursor=${encodeURIComponent(first.json.next_cursor)}`, {
      auth: caller,
    });
    expect(second.status).toBe(200);
    const deployedShape =
      "6Ck1la0VxJ0djhidm1MdX2FyDGxLKVeeHZZmORS_8XeSuhz9SjIJRaSa2lnsF01tQOHrfTGAP3R5X1Kv5iVUuMbNKhWNAXHOl6ePB0TUL8nw";
    const third = await g.call("GET", `/v1/keys?cursor=${deployedShape}`, { auth: caller });
    expect(third.status).toBe(200);
  });

  it("answers a well-shaped cursor KV refuses 400 invalid_cursor, not 503", async () => {
    const g = gateway({ kvEnv: refusingKv("KV GET failed: 400 invalid cursor").kvEnv });
    const caller = await g.createKey(uniqueAccount());
    const answer = await g.call("GET", "/v1/keys?cursor=AAAAANuhDN7SjacTnSVsDu3WW1Lvst6dxJGTjRY5Bhx", { auth: caller });
    expect(answer.status).toBe(400);
    expect(answer.json.error).toEqual({
      type: "invalid_request_error",
      code: "invalid_cursor",
      message: expect.stringContaining("next_cursor"),
    });
    expect(answer.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("still answers 503 when KV fails otherwise", async () => {
    const g = gateway({ kvEnv: refusingKv("KV GET failed: 500 Internal Server Error").kvEnv });
    const caller = await g.createKey(uniqueAccount());
    const answer = await g.call("GET", "/v1/keys?cursor=AAAA", { auth: caller });
    expect(answer.status).toBe(503);
    expect(answer.json.error.code).toBe("service_unavailable");
  });
});
