/**
 * Log hygiene (TEAM rules; SPEC §2, §7): no key secret, Authorization value or JWT in any
 * log line. test/support/workers-log-capture.ts checks every console line of every test
 * file; this file shows the capture sees the gateway's lines, that the shapes it looks
 * for are caught, and drives the paths most likely to leak.
 */
import { describe, expect, it } from "vitest";
import { defaultPrimitives } from "../../src/auth/verify-key.ts";
import { generateKeyId, generateSecret } from "../../src/keys/format.ts";
import { log, redact } from "../../src/log.ts";
import { forbiddenIn } from "../support/workers-log-shapes.ts";
import { createKey, gateway, recordingEngine } from "./harness.ts";

const captured = () => (globalThis as { __nixflexLogLines?: string[] }).__nixflexLogLines ?? [];

/** Lines written while `run` ran. */
async function linesDuring(run: () => Promise<unknown>): Promise<string[]> {
  const before = captured().length;
  await run();
  return captured().slice(before);
}

describe("the console capture", () => {
  it("sees the gateway's access log lines", async () => {
    const h = gateway();
    let requestId = "";
    const lines = await linesDuring(async () => {
      const { res } = await h.send(h.request("/v1/agents"));
      requestId = res.headers.get("x-request-id")!;
    });
    expect(lines.some((line) => line.includes('"event":"request"') && line.includes(requestId))).toBe(true);
  });

  it.each([
    ["a key secret", `{"detail":"${generateSecret()}"}`],
    ["a secret's first characters", `{"detail":"nxfs_${generateSecret().slice(5, 30)}"}`],
    ["a Bearer credential", `authorization=Bearer ${generateKeyId()}:${generateSecret()}`],
    ["a Bearer credential in lower case", "authorization: bearer abcdefgh12345678"],
    ["a Basic credential", "authorization: Basic dXNlcjpwYXNzd29yZA=="],
    ["a key pair without a scheme", `${generateKeyId()}:nxfs_x`],
    ["a JWT", "identity=eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhY2N0In0.c2lnbmF0dXJl"],
    ["an unsigned JWT", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhY2N0In0."],
  ])("flags %s", (_name, line) => {
    expect(forbiddenIn(line)).not.toBeNull();
  });

  it("flags a secret the suite created, even without its prefix", () => {
    const secret = generateSecret();
    expect(forbiddenIn(`random part ${secret.slice(5, -6)}`, [secret])).not.toBeNull();
  });

  it.each([
    ['{"level":"info","event":"request","status":401,"outcome":"bad_checksum"}'],
    ['{"level":"error","event":"configuration_error","detail":"IDENTITY_SIGNING_KEYS is not valid JSON"}'],
    [`{"key_id":"${generateKeyId()}","account_id":"acct_1"}`],
    ["identity token expired; basic authentication is not supported"],
  ])("does not flag an ordinary line: %s", (line) => {
    expect(forbiddenIn(line)).toBeNull();
  });
});

describe("what the gateway logs", () => {
  it("keeps credentials out of the logs on a 401 for a real key_id with the wrong secret", async () => {
    const key = await createKey();
    const h = gateway();
    const wrong = `Bearer ${key.keyId}:${generateSecret()}`;
    const lines = await linesDuring(() => h.send(h.request("/v1/agents", { authorization: wrong })));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(forbiddenIn(line, [key.secret])).toBeNull();
      expect(line).not.toContain(wrong.slice(7));
    }
  });

  it("keeps the secret and the identity token out of the logs on a forward", async () => {
    const key = await createKey();
    const h = gateway();
    const lines = await linesDuring(() => h.send(h.request("/v1/agents", { authorization: key.authorization })));
    const token = h.engine.calls[0]!.headers.get("x-nixflex-identity")!;
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(forbiddenIn(line, [key.secret])).toBeNull();
      expect(line).not.toContain(token.split(".")[2]);
    }
  });

  it("redacts a secret and a JWT carried by an unexpected exception's message", async () => {
    const key = await createKey();
    const jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhY2N0In0.c2lnbmF0dXJlX2J5dGVz";
    const h = gateway({
      primitives: {
        ...defaultPrimitives,
        digest: (secret) => {
          throw new Error(`cannot hash ${secret} for ${jwt}`);
        },
      },
    });
    const lines = await linesDuring(() => h.send(h.request("/v1/agents", { authorization: key.authorization })));
    const errorLine = lines.find((line) => line.includes('"internal_error"'));
    expect(errorLine).toBeDefined();
    expect(errorLine).toContain("[redacted]");
    for (const line of lines) expect(forbiddenIn(line, [key.secret])).toBeNull();
  });

  it("redacts an engine failure that echoes a credential", async () => {
    const key = await createKey();
    const engine = recordingEngine((request) => {
      throw new TypeError(`refused ${request.headers.get("x-nixflex-identity")}`);
    });
    const h = gateway({ engine });
    const lines = await linesDuring(() => h.send(h.request("/v1/agents", { authorization: key.authorization })));
    for (const line of lines) expect(forbiddenIn(line, [key.secret])).toBeNull();
  });

  it("redacts secret shapes that a caller passes to log()", () => {
    const secret = generateSecret();
    const lines: string[] = [];
    const before = captured().length;
    log("warn", "probe", { detail: `got ${secret} and Bearer abc.def and eyJa1234.eyJb5678.sig` });
    lines.push(...captured().slice(before));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("[redacted]");
    expect(forbiddenIn(lines[0]!, [secret])).toBeNull();
  });

  it("redacts a 128 KB line in linear time (a path is logged before any authentication)", () => {
    // A regex that restarts inside long runs is quadratic: 128 KB of "eyJ" took seconds.
    for (const unit of ["eyJ", "-eyJ", ".eyJ", "nxfs_", "bearer "]) {
      const started = performance.now();
      redact(`/${unit.repeat(Math.ceil(131_072 / unit.length))}`);
      expect(performance.now() - started, unit).toBeLessThan(1000);
    }
  });
});
