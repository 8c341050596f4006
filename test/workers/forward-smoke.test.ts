import { env, createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { KeyStore } from "../../src/keys/store.ts";
import { createIdentityVerifier } from "../../src/verify/index.ts";

describe("forward smoke", () => {
  it("forwards with a verifiable identity", async () => {
    const store = new KeyStore(env.API_KEYS);
    const { key, secret } = await store.create("acct_1", { name: "t", expiresAt: null });
    let seen: Request | undefined;
    const app = createApp({
      engineFetch: async (input, init) => {
        seen = new Request(input as Request, init);
        return new Response("hello", { status: 201, headers: { location: "http://127.0.0.1:8788/x?y=1" } });
      },
    });
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request("https://api.nixflex.com/v1/agents?q=1", {
        method: "POST",
        body: "abc",
        headers: { authorization: `Bearer ${key.key_id}:${secret}`, "x-nixflex-identity": "spoof" },
      }),
      env,
      ctx,
    );
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe("https://api.nixflex.com/x?y=1");
    expect(await res.text()).toBe("hello");
    await waitOnExecutionContext(ctx);
    expect(seen!.headers.get("authorization")).toBeNull();
    const verify = createIdentityVerifier({
      jwksUrl: "https://api.nixflex.com/.well-known/jwks.json",
      fetch: (u, i) => app.fetch(new Request(u as string, i), env, createExecutionContext()),
    });
    const id = await verify(seen!);
    expect(id.accountId).toBe("acct_1");
    expect(await seen!.text()).toBe("abc");
  });
});
