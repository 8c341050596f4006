import { generateKeyPairSync } from "node:crypto";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** Fresh test-only signing keys per run, handed to the Worker as bindings. */
function privateJwk(kind: "ed25519" | "ec", kid: string): Record<string, string> {
  const { privateKey } =
    kind === "ed25519" ? generateKeyPairSync("ed25519") : generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { ...(privateKey.export({ format: "jwk" }) as Record<string, string>), kid };
}

const ed = privateJwk("ed25519", "test-ed-1");
const ed2 = privateJwk("ed25519", "test-ed-2");
const ec = privateJwk("ec", "test-ec-1");

// workerd warns, quoting the whole value, whenever a test sets a non-ASCII header value.
// The fuzz does that on purpose with look-alike key pairs; those warnings are dropped so the
// test output carries no secret-shaped strings. Every other line passes through untouched.
const QUIRK_WARNING = "contains non-ASCII characters";
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream);
  stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    if (String(chunk).includes(QUIRK_WARNING)) return true;
    return write(chunk, ...rest);
  }) as typeof stream.write;
}

export default defineConfig({
  test: {
    // Console lines of passing tests are not printed, so a failure (with its own lines) stands
    // out. The log-hygiene capture (test/support/workers-log-capture.ts) wraps the console
    // inside each isolate and still sees every line, whatever the reporter shows.
    silent: "passed-only",
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                IDENTITY_SIGNING_KEYS: JSON.stringify({ keys: [ed, ed2] }),
                TEST_ES256_SIGNING_KEYS: JSON.stringify({ keys: [ec, ed] }),
                FUZZ_RUNS: process.env.FUZZ_RUNS ?? "",
              },
              // The dashboard's way in (key-admin.test.ts): a real service binding to the gateway's own
              // named entrypoint, as examples/dashboard/wrangler.toml declares it.
              serviceBindings: { KEY_ADMIN: { name: "nixflex-gateway", entrypoint: "KeyAdmin" } },
            },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          setupFiles: ["./test/support/workers-log-capture.ts"],
          // One workerd per worker, reused from file to file, instead of a fresh one per file:
          // starting workerd and the environment was most of a short file's time. Each test
          // builds its gateway with fresh caches and its own keys and accounts (harness.ts).
          isolate: false,
        },
      },
      {
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
