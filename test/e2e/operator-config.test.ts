/**
 * The local operator token can never be accepted by a deployed gateway, by construction:
 * only wrangler.toml's top level (local development) sets OPERATOR_TOKEN_ALLOWED and declares
 * the OPERATOR_TOKEN secret, and wrangler does not inherit vars or secrets into an `[env.*]`.
 * Read with wrangler's own config reader, for every environment the file declares, so a new
 * environment is checked too. (What the gateway does without the var: test/workers/operator-gate.test.ts.)
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { WRANGLER_CONFIG } from "../../scripts/lib/project.ts";

const environments = [...readFileSync(WRANGLER_CONFIG, "utf8").matchAll(/^\[env\.([\w-]+)\]$/gm)].map((m) => m[1]!);
const read = (env?: string) => unstable_readConfig({ config: WRANGLER_CONFIG, env }, { hideWarnings: true });

describe("wrangler.toml: who may accept the local operator token", () => {
  it("declares the deployed environments", () => {
    expect(environments).toEqual(expect.arrayContaining(["staging", "production"]));
  });

  it("allows it at the top level (local development), which is never deployed", () => {
    const local = read();
    expect(local.vars.OPERATOR_TOKEN_ALLOWED).toBe("true");
    expect(local.secrets?.required).toContain("OPERATOR_TOKEN");
  });

  it.for(environments)(
    "never in [env.%s]: no OPERATOR_TOKEN_ALLOWED, no OPERATOR_TOKEN secret, Access settings present",
    (env) => {
      const deployed = read(env);
      expect(deployed.vars).not.toHaveProperty("OPERATOR_TOKEN_ALLOWED");
      expect(deployed.secrets?.required ?? []).not.toContain("OPERATOR_TOKEN");
      expect(deployed.vars).toHaveProperty("ACCESS_TEAM_DOMAIN");
      expect(deployed.vars).toHaveProperty("ACCESS_AUD");
    },
  );
});
