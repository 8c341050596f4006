/**
 * The benchmark harness hosts what the gateway's bundle declares: a Durable Object class the
 * bundle exports and wrangler.toml binds (SQLite-backed), the Cache API through the counting
 * cache host, and nothing the bundle does not export (an older `--baseline` commit).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { gatewayBindings } from "../../scripts/bench/bindings.ts";
import { startWorkerd } from "../../scripts/bench/workerd.ts";

const dir = mkdtempSync(join(tmpdir(), "nixflex-bench-harness-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const WRANGLER_TOML = `name = "scratch"
main = "index.js"

[vars]
ENGINE_URL = "http://127.0.0.1:1"
LIMITS = { a = 1 }

[[kv_namespaces]]
binding = "API_KEYS"
id = "x"

[[ratelimits]]
name = "AUTH_FAILURE_LIMITER"
namespace_id = "1"
simple = { limit = 5, period = 10 }

[[durable_objects.bindings]]
name = "KEY_CHANGES"
class_name = "KeyChangeLog"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["KeyChangeLog"]
`;

// Counts calls in SQLite, and reads then fills the default cache, on every request.
const WITH_DO = `import { DurableObject } from "cloudflare:workers";
export class KeyChangeLog extends DurableObject {
  bump() {
    this.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS calls (n INTEGER)");
    this.ctx.storage.sql.exec("INSERT INTO calls VALUES (1)");
    return this.ctx.storage.sql.exec("SELECT count(*) AS n FROM calls").one().n;
  }
}
export default {
  async fetch(request, env) {
    const calls = await env.KEY_CHANGES.get(env.KEY_CHANGES.idFromName("log")).bump();
    const key = "https://cache.example/entry";
    const cached = await caches.default.match(key);
    await caches.default.put(key, new Response("kept", { headers: { "cache-control": "max-age=60" } }));
    await caches.default.put("https://cache.example/private", new Response("no", { headers: { "cache-control": "no-store" } }));
    const privateHit = await caches.default.match("https://cache.example/private");
    return Response.json({ calls, cached: cached ? await cached.text() : null, privateHit: privateHit !== undefined });
  },
};
`;

function tree(name: string, source: string): { root: string; file: string } {
  const root = join(dir, name);
  const file = join(root, "index.js");
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, "wrangler.toml"), WRANGLER_TOML);
  writeFileSync(file, source);
  return { root, file };
}

describe("bench harness: bindings from wrangler.toml", () => {
  it("binds vars, KV, rate limits and an exported Durable Object class, with the bench's engine and keys", async () => {
    const { root, file } = tree("with-do", WITH_DO);
    const found = await gatewayBindings(root, file, { engineUrl: "http://127.0.0.1:9", signingKeys: "{}" });
    expect(found.durableObjects).toEqual(["KeyChangeLog"]);
    expect(found.bindings).toEqual({
      ENGINE_URL: "http://127.0.0.1:9",
      LIMITS: { json: { a: 1 } },
      API_KEYS: { kvNamespace: "api-keys" },
      AUTH_FAILURE_LIMITER: { ratelimit: { limit: 5, period: 10 } },
      KEY_CHANGES: { durableObject: { className: "KeyChangeLog" } },
      IDENTITY_SIGNING_KEYS: "{}",
    });
  });

  it("leaves a Durable Object unbound when the bundle does not export its class", async () => {
    const { root, file } = tree("without-do", "export default { fetch() { return new Response('ok'); } };\n");
    const found = await gatewayBindings(root, file, { engineUrl: "http://127.0.0.1:9", signingKeys: "{}" });
    expect(found.durableObjects).toEqual([]);
    expect(found.bindings.KEY_CHANGES).toBeUndefined();
    const w = await startWorkerd({ script: file, bindings: found.bindings });
    try {
      expect((await fetch(w.url)).status).toBe(200);
    } finally {
      await w.stop();
    }
  });
});

describe("bench harness: workerd hosts the bundle's Durable Object and the Cache API", () => {
  it("keeps SQLite state across requests and serves cached entries from the counting cache host", async () => {
    const { root, file } = tree("hosted", WITH_DO);
    const { bindings } = await gatewayBindings(root, file, { engineUrl: "http://127.0.0.1:9", signingKeys: "{}" });
    const w = await startWorkerd({ script: file, bindings });
    try {
      const answers = [];
      for (let i = 0; i < 2; i++) answers.push(await (await fetch(w.url)).json());
      expect(answers).toEqual([
        { calls: 1, cached: null, privateHit: false },
        { calls: 2, cached: "kept", privateHit: false },
      ]);
      expect(w.cache.takeCounts()).toEqual({ matches: 4, hits: 1, puts: 4, deletes: 0 });
    } finally {
      await w.stop();
    }
  });
});
