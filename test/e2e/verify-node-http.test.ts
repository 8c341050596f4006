/**
 * The demo engine (scripts/demo-engine.ts, a plain node:http server using the shipped verifier
 * and `nodeRequestFacts`) against raw request targets sent over a socket, so nothing normalises
 * them on the way: a token the gateway signs for the public path verifies on exactly that path,
 * whether the target is `//…`, percent-encoded or absolute-form, and a replay gets the standard 401.
 */
import { connect } from "node:net";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemoEngine } from "../../scripts/demo-engine.ts";
import { generateSigningJwk, serializeSet } from "../../scripts/lib/signing.ts";
import { UNAUTHORIZED_BODY } from "../../src/errors.ts";
import { parseSigningKeys, type SigningKeySet } from "../../src/identity/keys.ts";
import { signIdentity } from "../../src/identity/sign.ts";

let keys: SigningKeySet;
let jwks: Server;
let engine: Awaited<ReturnType<typeof startDemoEngine>>;
const lines: string[] = [];

beforeAll(async () => {
  keys = parseSigningKeys(serializeSet({ keys: [await generateSigningJwk("EdDSA")] }));
  jwks = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(keys.jwksBody));
  await new Promise<void>((done) => jwks.listen(0, "127.0.0.1", done));
  const { port } = jwks.address() as { port: number };
  engine = await startDemoEngine({
    port: 0,
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    log: (line) => lines.push(line),
  });
});

afterAll(async () => {
  await engine?.close();
  await new Promise((done) => jwks?.close(done));
});

/** The token the gateway signs for a public request with this method and target. */
function gatewayToken(method: string, publicTarget: string, requestId: string): Promise<string> {
  return signIdentity(keys, {
    issuer: "https://api.nixflex.com",
    audience: "nixflex-engine",
    accountId: "acct_paths",
    keyId: `nxf_${"cd".repeat(16)}`,
    requestId,
    method,
    path: new URL(`https://api.nixflex.com${publicTarget}`).pathname,
    now: Math.floor(Date.now() / 1000),
  });
}

/** Sends one raw HTTP/1.1 request with exactly this request target; resolves status and body. */
function raw(method: string, target: string, token: string): Promise<{ status: number; body: string }> {
  const { port } = new URL(engine.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1");
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      data += chunk;
    });
    socket.on("error", reject);
    socket.on("end", () => {
      const [head = "", body = ""] = data.split("\r\n\r\n");
      resolve({ status: Number(head.split(" ")[1]), body });
    });
    socket.write(
      `${method} ${target} HTTP/1.1\r\nHost: engine.internal\r\nX-Nixflex-Identity: ${token}\r\nConnection: close\r\n\r\n`,
    );
  });
}

describe("the demo engine's request facts over a real socket", () => {
  it.each([
    ["origin-form with //", "GET", "//v1/reports", "//v1/reports", "//v1/reports"],
    ["origin-form with // and a query", "GET", "//v1/reports?limit=1", "//v1/reports?limit=1", "//v1/reports"],
    ["percent-encoded characters", "POST", "/v1/a%2Fb/caf%C3%A9", "/v1/a%2Fb/caf%C3%A9", "/v1/a%2Fb/caf%C3%A9"],
    ["absolute-form", "GET", "/v1/reports?x=1", "http://engine.internal/v1/reports?x=1", "/v1/reports"],
    ["absolute-form with //", "DELETE", "//v1/reports", "http://engine.internal//v1/reports", "//v1/reports"],
  ])("accepts a gateway token on %s", async (_, method, publicTarget, engineTarget, path) => {
    const requestId = crypto.randomUUID();
    const res = await raw(method, engineTarget, await gatewayToken(method, publicTarget, requestId));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ verified: true, request_id: requestId, method, path });
  });

  it("refuses the same token replayed, and a token for /reports on //v1/reports, with the standard 401", async () => {
    const token = await gatewayToken("GET", "//v1/reports", crypto.randomUUID());
    expect((await raw("GET", "//v1/reports", token)).status).toBe(200);
    const replayed = await raw("GET", "//v1/reports", token);
    expect(replayed).toEqual({ status: 401, body: UNAUTHORIZED_BODY });
    const other = await raw("GET", "//v1/reports", await gatewayToken("GET", "/reports", crypto.randomUUID()));
    expect(other).toEqual({ status: 401, body: UNAUTHORIZED_BODY });
    // The reasons are in the engine's log only.
    const codes = lines.map((line) => JSON.parse(line).code).filter(Boolean);
    expect(codes.slice(-2)).toEqual(["ERR_IDENTITY_REPLAYED", "ERR_IDENTITY_MISMATCH"]);
  });
});
