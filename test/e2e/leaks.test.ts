/**
 * Leak reports over real HTTP (SPEC §10) against the real local gateway (`wrangler dev`):
 * a keys document and a webhook receiver on a loopback server, a P-256 key pair signing
 * reports the way GitHub does (node's own DER signatures, not the tests' encoder), and keys
 * made with the CLI. Measures the time from a report to the key failing.
 */
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { createServer, type Server } from "node:http";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startStack, type Stack } from "../support/stack.ts";

const IDENTIFIER = "e2e-github-key-1";
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const PEM = publicKey.export({ format: "pem", type: "spki" }).toString();

const hooks: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
let server: Server;
let stack: Stack;

beforeAll(async () => {
  const port = await freePort();
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      if (req.url === "/keys") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ public_keys: [{ key_identifier: IDENTIFIER, key: PEM, is_current: true }] }));
      } else if (req.url === "/hook" && req.method === "POST") {
        hooks.push({ headers: req.headers, body });
        res.writeHead(204).end();
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  stack = await startStack({
    env: {
      GITHUB_SECRET_SCANNING_KEYS_URL: `http://127.0.0.1:${port}/keys`,
      LEAK_WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
    },
  });
});

afterAll(async () => {
  await stack?.stop();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

const report = (tokens: string[]) =>
  JSON.stringify(
    tokens.map((token) => ({
      token,
      type: "nixflex_key_secret",
      url: "https://github.com/o/r/blob/x/.env",
      source: "content",
    })),
  );

async function postReport(body: string) {
  const signature = sign("sha256", Buffer.from(body), privateKey).toString("base64");
  return fetch(`${stack.gatewayUrl}/v1/secret-scanning/github`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "github-public-key-identifier": IDENTIFIER,
      "github-public-key-signature": signature,
    },
    body,
  });
}

const agents = async (authorization: string) =>
  (await fetch(`${stack.gatewayUrl}/v1/agents`, { headers: { authorization } })).status;

describe("leak reports over real HTTP", () => {
  it("a GitHub report revokes the key: refused on the next request, owner told by a signed webhook", async () => {
    const key = await stack.createKey("acct_leak_e2e", "leaky");
    expect(await agents(key.authorization)).toBe(200);

    const started = performance.now();
    const res = await postReport(report([key.secret]));
    const answeredMs = performance.now() - started;
    const feedback = await res.json();
    const status = await agents(key.authorization);
    const refusedMs = performance.now() - started;
    console.log(
      `e2e: report answered in ${answeredMs.toFixed(0)} ms; key refused ${refusedMs.toFixed(0)} ms after the report was sent`,
    );

    expect(res.status).toBe(200);
    expect(feedback).toEqual([
      {
        token_hash: createHash("sha256").update(key.secret).digest("hex"),
        token_type: "nixflex_key_secret",
        label: "true_positive",
      },
    ]);
    expect(status).toBe(401);

    for (let i = 0; i < 100 && hooks.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(hooks).toHaveLength(1);
    const jwks = createRemoteJWKSet(new URL(`${stack.gatewayUrl}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(String(hooks[0]!.headers["x-nixflex-signature"]), jwks, {
      audience: "nixflex-webhook",
      typ: "nixflex-webhook+jwt",
    });
    expect(payload.body_sha256).toBe(createHash("sha256").update(hooks[0]!.body).digest("base64url"));
    expect(JSON.parse(hooks[0]!.body).keys[0]).toMatchObject({ key_id: key.keyId, action: "revoked" });
    expect(hooks[0]!.body).not.toContain(key.secret);
    expect(stack.gatewayLog()).not.toContain(key.secret);
  });

  it("a report signed by another key changes nothing", async () => {
    const key = await stack.createKey("acct_leak_e2e", "safe");
    const other = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey;
    const body = report([key.secret]);
    const res = await fetch(`${stack.gatewayUrl}/v1/secret-scanning/github`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "github-public-key-identifier": IDENTIFIER,
        "github-public-key-signature": sign("sha256", Buffer.from(body), other).toString("base64"),
      },
      body,
    });
    expect(res.status).toBe(401);
    expect(await agents(key.authorization)).toBe(200);
  });

  it("the public leak report answers the same bytes for a live and an unknown secret, and revokes the live one", async () => {
    const key = await stack.createKey("acct_leak_e2e", "found");
    const submit = async (secret: string) => {
      const res = await fetch(`${stack.gatewayUrl}/v1/leaked-keys`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key_secret: secret }),
      });
      return { status: res.status, body: await res.text() };
    };
    const live = await submit(key.secret);
    const unknown = await submit(`nxfs_${"A".repeat(58)}000000`);
    expect(live.status).toBe(202);
    expect(unknown).toEqual(live);
    let status = 200;
    for (let i = 0; i < 50 && status === 200; i++) {
      status = await agents(key.authorization);
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
  });
});
