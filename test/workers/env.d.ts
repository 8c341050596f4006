// Bindings the test config adds on top of wrangler.toml (vitest.config.ts).
declare namespace Cloudflare {
  interface Env {
    IDENTITY_SIGNING_KEYS: string;
    TEST_ES256_SIGNING_KEYS: string;
    /** fuzz.test.ts run count; empty for the CI default. */
    FUZZ_RUNS: string;
    /** A service binding to the gateway's `KeyAdmin` entrypoint (key-admin.test.ts). */
    KEY_ADMIN: Service<typeof import("../../src/index.ts").KeyAdmin>;
  }
}

// workerd implements node:zlib's crc32 (nodejs_compat); the workers tsconfig has no @types/node.
declare module "node:zlib" {
  export function crc32(data: string | ArrayBufferView, value?: number): number;
}
