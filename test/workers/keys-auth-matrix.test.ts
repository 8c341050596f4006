/**
 * The shared auth matrix (SPEC §3, §5): every key route, run against no key, malformed
 * and wrong keys, a revoked key, an expired key, and another account's key_id. Each
 * failure must be the byte-exact 401 (or the 404 an unknown id gets) and leave every
 * KV value untouched and the engine uncalled.
 */
import { describe, expect, it } from "vitest";
import { generateSecret } from "../../src/keys/format.ts";
import { KEY_ROUTES } from "../../src/routes/keys.ts";
import {
  accountSnapshot,
  type Answer,
  gateway,
  type Key,
  expectStandard401,
  KEY_NOT_FOUND_404,
  keySnapshot,
  uniqueAccount,
  unknownKeyId,
} from "./keys-support.ts";

interface RouteCase {
  method: string;
  /** The OpenAPI path template, to prove the matrix covers every route. */
  template: string;
  path(targetKeyId: string): string;
  body?: unknown;
  targetsKey: boolean;
}

const ROUTES: RouteCase[] = [
  { method: "POST", template: "/v1/keys", path: () => "/v1/keys", body: { name: "matrix" }, targetsKey: false },
  { method: "GET", template: "/v1/keys", path: () => "/v1/keys", targetsKey: false },
  { method: "GET", template: "/v1/keys/{key_id}", path: (id) => `/v1/keys/${id}`, targetsKey: true },
  { method: "DELETE", template: "/v1/keys/{key_id}", path: (id) => `/v1/keys/${id}`, targetsKey: true },
  {
    method: "POST",
    template: "/v1/keys/{key_id}/roll",
    path: (id) => `/v1/keys/${id}/roll`,
    body: { grace_period_seconds: 0 },
    targetsKey: true,
  },
];

/** Two accounts: the caller's (with a target key, a revoked and a soon-expiring key) and another. */
async function world() {
  const g = gateway();
  const mine = uniqueAccount("mine");
  const theirs = uniqueAccount("theirs");
  const caller = await g.createKey(mine, { name: "caller" });
  const target = await g.createKey(mine, { name: "target" });
  const revoked = await g.createKey(mine, { name: "revoked" });
  await g.store.revoke(mine, revoked.id);
  const expiring = await g.createKey(mine, { name: "expiring", expiresAt: new Date(g.now() + 5_000).toISOString() });
  const foreign = await g.createKey(theirs, { name: "foreign" });
  return { g, mine, theirs, caller, target, revoked, expiring, foreign };
}

type World = Awaited<ReturnType<typeof world>>;

/**
 * Every KV value the matrix could disturb. The caller's own `used:` entry is left out
 * where the caller authenticated: recording a successful use is the one write allowed.
 */
async function state(w: World, keys: Key[] = [w.caller, w.target, w.revoked, w.expiring, w.foreign]) {
  return {
    keys: await Promise.all(keys.map((key) => keySnapshot(key.id))),
    mine: await accountSnapshot(w.mine),
    theirs: await accountSnapshot(w.theirs),
  };
}

/** Headers minus the per-request id, for "indistinguishable" comparisons. */
function stableHeaders(answer: Answer): [string, string][] {
  return [...answer.headers].filter(([name]) => name !== "x-request-id");
}

const badCredentials: [string, (w: World) => string | Key | null][] = [
  ["no Authorization header", () => null],
  ["an empty Authorization header", () => ""],
  ["the Basic scheme", (w) => `Basic ${btoa(`${w.caller.id}:${w.caller.secret}`)}`],
  ["a space instead of the colon", (w) => `Bearer ${w.caller.id} ${w.caller.secret}`],
  [
    "a bad checksum",
    (w) => `Bearer ${w.caller.id}:${w.caller.secret.slice(0, -1)}${w.caller.secret.endsWith("A") ? "B" : "A"}`,
  ],
  ["the wrong secret for a real key_id", (w) => `Bearer ${w.caller.id}:${generateSecret()}`],
  ["an unknown key_id", () => `Bearer ${unknownKeyId()}:${generateSecret()}`],
  ["another key's secret", (w) => `Bearer ${w.caller.id}:${w.target.secret}`],
  ["a revoked key", (w) => w.revoked],
];

describe("the auth matrix", () => {
  it("covers every key route the app serves", () => {
    const served = KEY_ROUTES.map((route) => `${route.method.toUpperCase()} ${route.path}`).sort();
    expect(ROUTES.map((route) => `${route.method} ${route.template}`).sort()).toEqual(served);
  });

  describe.each(ROUTES)("$method $template", (route) => {
    const call = (w: World, auth: string | Key | null, keyId = w.target.id) =>
      w.g.call(route.method, route.path(keyId), { auth, body: route.body });

    it.each(badCredentials)("answers the standard 401 to %s and changes nothing", async (_, credential) => {
      const w = await world();
      const before = await state(w);
      const answer = await call(w, credential(w));
      expectStandard401(answer, answer.text);
      expect(await state(w)).toEqual(before);
      expect(w.g.engineCalls).toHaveLength(0);
    });

    it("answers the standard 401 to a key from the instant it expires, and changes nothing", async () => {
      const w = await world();
      w.g.advance(4_999);
      const live = await w.g.call("GET", `/v1/keys/${w.expiring.id}`, { auth: w.expiring });
      expect(live.status).toBe(200);
      w.g.advance(1);
      const before = await state(w);
      const answer = await call(w, w.expiring);
      expectStandard401(answer, answer.text);
      expect(await state(w)).toEqual(before);
      expect(w.g.engineCalls).toHaveLength(0);
    });

    if (route.targetsKey) {
      it("answers another account's key_id exactly as an unknown one and leaves it untouched", async () => {
        const w = await world();
        const notCaller = [w.target, w.revoked, w.expiring, w.foreign];
        const before = await state(w, notCaller);
        const foreign = await call(w, w.caller, w.foreign.id);
        const unknown = await call(w, w.caller, unknownKeyId());
        const malformed = await call(w, w.caller, "nxf_NOT-A-KEY");
        for (const answer of [foreign, unknown, malformed]) {
          expect(answer.status).toBe(404);
          expect(answer.text).toBe(KEY_NOT_FOUND_404);
          expect(answer.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
        }
        expect(stableHeaders(foreign)).toEqual(stableHeaders(unknown));
        expect(stableHeaders(malformed)).toEqual(stableHeaders(unknown));
        expect(await state(w, notCaller)).toEqual(before);
        // The foreign key still authenticates: nothing was revoked or rolled.
        expect((await w.g.call("GET", `/v1/keys/${w.foreign.id}`, { auth: w.foreign })).status).toBe(200);
        expect(w.g.engineCalls).toHaveLength(0);
      });

      it("answers another account's key_id the same from another account's point of view", async () => {
        const w = await world();
        const notCaller = [w.caller, w.target, w.revoked, w.expiring];
        const before = await state(w, notCaller);
        // The foreign account's key aims at the caller's target: same 404, target untouched.
        const answer = await call(w, w.foreign, w.target.id);
        expect(answer.status).toBe(404);
        expect(answer.text).toBe(KEY_NOT_FOUND_404);
        expect(await state(w, notCaller)).toEqual(before);
      });
    } else {
      it("acts only inside the caller's account", async () => {
        const w = await world();
        const theirsBefore = await accountSnapshot(w.theirs);
        const foreignBefore = await keySnapshot(w.foreign.id);
        const answer = await call(w, w.caller);
        expect(answer.status).toBeLessThan(300);
        if (route.method === "GET") {
          const ids = (answer.json.data as { key_id: string }[]).map((key) => key.key_id);
          expect(ids.sort()).toEqual([w.caller.id, w.target.id, w.revoked.id, w.expiring.id].sort());
        } else {
          const mine = await accountSnapshot(w.mine);
          expect(mine.some((entry) => entry.endsWith(`:${answer.json.key_id}=${answer.json.key_id}`))).toBe(true);
        }
        expect(await accountSnapshot(w.theirs)).toEqual(theirsBefore);
        expect(await keySnapshot(w.foreign.id)).toEqual(foreignBefore);
      });
    }
  });
});
