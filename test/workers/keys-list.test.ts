/**
 * `GET /v1/keys` (SPEC §5): cursor pagination over the per-account index, newest first,
 * only the caller's account, and never a scan of other accounts' keys.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { gateway, type Gateway, KEY_OBJECT_FIELDS, type Key, uniqueAccount } from "./keys-support.ts";

/** KV with every `list` and bulk `get` recorded. */
function spyingEnv() {
  const lists: KVNamespaceListOptions[] = [];
  const bulkGets: number[] = [];
  const kv = new Proxy(env.API_KEYS, {
    get(target, prop) {
      if (prop === "list") {
        return (options: KVNamespaceListOptions) => {
          lists.push(options);
          return target.list(options);
        };
      }
      if (prop === "get") {
        return (key: string | string[], ...rest: unknown[]) => {
          if (Array.isArray(key)) bulkGets.push(key.length);
          return (target.get as (...args: unknown[]) => unknown).call(target, key, ...rest);
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { kvEnv: { ...env, API_KEYS: kv } as typeof env, lists, bulkGets };
}

/** `count` keys created one millisecond apart, oldest first. */
async function manyKeys(g: Gateway, account: string, count: number): Promise<Key[]> {
  const keys: Key[] = [];
  for (let i = 0; i < count; i++) {
    g.advance(1);
    keys.push(await g.createKey(account, { name: `key ${i}` }));
  }
  return keys;
}

async function allPages(g: Gateway, caller: Key, limit?: number) {
  const pages: { ids: string[]; has_more: boolean; next_cursor: string | null }[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams();
    if (limit !== undefined) query.set("limit", String(limit));
    if (cursor !== null) query.set("cursor", cursor);
    const answer = await g.call("GET", `/v1/keys?${query}`, { auth: caller });
    expect(answer.status).toBe(200);
    expect(answer.headers.get("cache-control")).toBe("no-store");
    expect(Object.keys(answer.json)).toEqual(["data", "has_more", "next_cursor"]);
    pages.push({
      ids: answer.json.data.map((key: { key_id: string }) => key.key_id),
      has_more: answer.json.has_more,
      next_cursor: answer.json.next_cursor,
    });
    cursor = answer.json.next_cursor;
    expect(pages.length).toBeLessThan(20);
  } while (cursor !== null);
  return pages;
}

describe("GET /v1/keys", () => {
  it("pages through 26 keys 10 at a time, newest first, each key exactly once", async () => {
    const g = gateway();
    const account = uniqueAccount();
    const caller = await g.createKey(account, { name: "caller" });
    const keys = await manyKeys(g, account, 25);
    const pages = await allPages(g, caller, 10);
    expect(pages.map((page) => page.ids.length)).toEqual([10, 10, 6]);
    expect(pages.map((page) => page.has_more)).toEqual([true, true, false]);
    expect(pages.at(-1)!.next_cursor).toBeNull();
    expect(pages.flatMap((page) => page.ids)).toEqual(
      [...keys]
        .reverse()
        .map((key) => key.id)
        .concat(caller.id),
    );
  });

  it("defaults to 10 per page and allows up to 100", async () => {
    const g = gateway();
    const account = uniqueAccount();
    const caller = await g.createKey(account);
    await manyKeys(g, account, 11);
    const first = await g.call("GET", "/v1/keys", { auth: caller });
    expect(first.json.data).toHaveLength(10);
    expect(first.json.has_more).toBe(true);
    const all = await g.call("GET", "/v1/keys?limit=100", { auth: caller });
    expect(all.json.data).toHaveLength(12);
    expect(all.json.has_more).toBe(false);
    expect(all.json.next_cursor).toBeNull();
  });

  it("lists revoked keys with revoked_at, at once after the revoke", async () => {
    const g = gateway();
    const account = uniqueAccount();
    const caller = await g.createKey(account);
    const target = await g.createKey(account);
    await g.call("DELETE", `/v1/keys/${target.id}`, { auth: caller });
    const answer = await g.call("GET", "/v1/keys", { auth: caller });
    const listed = answer.json.data.find((key: { key_id: string }) => key.key_id === target.id);
    expect(listed.revoked_at).toBe(new Date(g.now()).toISOString());
  });

  it("never shows another account's keys, even with that account's cursor", async () => {
    const g = gateway();
    const mine = uniqueAccount("mine");
    const theirs = uniqueAccount("theirs");
    const caller = await g.createKey(mine);
    const own = [caller, ...(await manyKeys(g, mine, 3))].map((key) => key.id);
    const other = await g.createKey(theirs);
    await manyKeys(g, theirs, 12);
    const theirPage = await g.call("GET", "/v1/keys?limit=5", { auth: other });
    expect(theirPage.json.has_more).toBe(true);
    const answer = await g.call("GET", `/v1/keys?cursor=${encodeURIComponent(theirPage.json.next_cursor)}`, {
      auth: caller,
    });
    expect(answer.status).toBe(200);
    for (const key of answer.json.data) expect(own).toContain(key.key_id);
    const mineOnly = await allPages(g, caller, 2);
    expect(mineOnly.flatMap((page) => page.ids).sort()).toEqual([...own].sort());
  });

  it("lists each key as exactly the key object, with no secret and no hash anywhere in the body", async () => {
    const g = gateway();
    const account = uniqueAccount();
    const caller = await g.createKey(account, { name: "caller" });
    await g.call("GET", "/v1/agents", { auth: caller }); // sets the caller's last_used_at
    const expiring = await g.createKey(account, { name: "expiring", expiresAt: "2040-01-01T00:00:00.000Z" });
    const rolled = await g.createKey(account, { name: "rolled" });
    const revoked = await g.createKey(account, { name: "revoked" });
    expect(
      (await g.call("POST", `/v1/keys/${rolled.id}/roll`, { auth: caller, body: { grace_period_seconds: 60 } })).status,
    ).toBe(200);
    expect((await g.call("DELETE", `/v1/keys/${revoked.id}`, { auth: caller })).status).toBe(200);

    const answer = await g.call("GET", "/v1/keys", { auth: caller });
    expect(answer.status).toBe(200);
    expect(answer.text).not.toContain("nxfs_");
    expect(answer.text).not.toContain("sha256:");
    expect(answer.json.data).toHaveLength(4);
    for (const item of answer.json.data) {
      expect(Object.keys(item), item.name).toEqual(KEY_OBJECT_FIELDS);
      // The same object GET /v1/keys/{key_id} answers, field for field.
      expect(item).toEqual((await g.call("GET", `/v1/keys/${item.key_id}`, { auth: caller })).json);
    }
    const byId = new Map(answer.json.data.map((item: { key_id: string }) => [item.key_id, item]));
    expect(byId.get(caller.id)).toMatchObject({ last_used_at: expect.any(String) });
    expect(byId.get(expiring.id)).toMatchObject({ expires_at: "2040-01-01T00:00:00.000Z" });
    expect(byId.get(revoked.id)).toMatchObject({ revoked_at: expect.any(String) });
  });

  it("reads only the caller's index prefix and at most `limit` records (never a scan of all keys)", async () => {
    const spy = spyingEnv();
    const g = gateway({ kvEnv: spy.kvEnv });
    const account = uniqueAccount();
    const caller = await g.createKey(account);
    await manyKeys(g, account, 7);
    // Noise in other accounts must not be touched.
    await manyKeys(g, uniqueAccount("noise"), 5);
    spy.lists.length = 0;
    spy.bulkGets.length = 0;
    const pages = await allPages(g, caller, 3);
    expect(pages.flatMap((page) => page.ids)).toHaveLength(8);
    expect(spy.lists.length).toBe(pages.length);
    for (const options of spy.lists) {
      expect(options.prefix).toBe(`acct:${account}:`);
      expect(options.limit).toBe(3);
    }
    for (const size of spy.bulkGets) expect(size).toBeLessThanOrEqual(3);
  });
});
