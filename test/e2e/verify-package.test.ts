/**
 * The verifier as an engine installs it (SPEC §9): `npm pack` the project, install the tarball
 * into a fresh project with no TypeScript tooling, and there verify tokens signed by the gateway's
 * own signing code (src/identity/sign.ts) against a JWKS served over loopback, under the machine's
 * Node (20 here) and the node@22 devDependency — and under Bun and Deno when their npm packages
 * install from the registry (skipped with the reason otherwise). A second engine project that
 * also installs hono (the optional peer) checks the middleware form, `nixflex-gateway/verify/hono`.
 */
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSigningJwk, serializeSet } from "../../scripts/lib/signing.ts";
import { AUTH_CHALLENGE, UNAUTHORIZED_BODY } from "../../src/errors.ts";
import { parseSigningKeys } from "../../src/identity/keys.ts";
import { signIdentity } from "../../src/identity/sign.ts";

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const NPM_FLAGS = ["--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];
// Bun and Deno ship their binaries as npm packages; pinned so a run is reproducible.
const EXTRA_RUNTIMES = { bun: "@oven/bun-linux-x64@1.4.5", deno: "@deno/linux-x64-glibc@2.9.6" };

/** The first `node` on PATH that is not a node_modules shim: the machine's own Node. */
async function machineNode(): Promise<string> {
  const { stdout } = await run("which", ["-a", "node"]);
  const found = stdout
    .split("\n")
    .filter(Boolean)
    .find((path) => !realpathSync(path).includes(`${"/"}node_modules${"/"}`));
  if (found === undefined) throw new Error("no node outside node_modules on PATH");
  return found;
}

// What the engine project runs: only the package's public entry points, plain JavaScript.
const PLAIN_CHECK = `
import { createIdentityVerifier, identityFailure, IdentityError, nodeRequestFacts } from "nixflex-gateway/verify";
const env = (name) => (typeof Deno !== "undefined" ? Deno.env.get(name) : process.env[name]);
const verify = createIdentityVerifier({ jwksUrl: env("JWKS_URL") });
const request = () =>
  new Request("http://engine.internal/v1/agents?limit=1", {
    method: "POST",
    headers: { "x-nixflex-identity": env("TOKEN") },
  });
const code = (promise) => promise.then(() => "accepted", (error) => error.code);
const out = {};
out.identity = await verify(request());
out.replayed = await code(verify(request()));
out.otherPath = await code(verify.verifyFacts({ method: "POST", path: "/v1/keys", token: env("TOKEN") }));
out.doubleSlash = await verify.verifyFacts(
  nodeRequestFacts({ method: "GET", url: "//v1/reports?x=1", headers: { "x-nixflex-identity": env("TOKEN_DOUBLE_SLASH") } }),
);
const down = createIdentityVerifier({ jwksUrl: env("DEAD_JWKS_URL") });
const unavailable = await down(request()).catch((error) => error);
out.unavailable = { code: unavailable.code, answer: identityFailure(unavailable) };
out.missing = identityFailure(new IdentityError("ERR_IDENTITY_MISSING", "no identity header"));
console.log(JSON.stringify(out));
`;

const HONO_CHECK = `
import { Hono } from "hono";
import { identityMiddleware } from "nixflex-gateway/verify/hono";
const reasons = [];
const app = new Hono();
app.use(identityMiddleware({ jwksUrl: process.env.JWKS_URL, onFailure: (error) => reasons.push(error.code) }));
app.post("/v1/agents", (c) => c.json(c.var.identity));
const send = async (token) => {
  const headers = token === undefined ? {} : { "x-nixflex-identity": token };
  const res = await app.request("http://engine.internal/v1/agents", { method: "POST", headers });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
};
const first = await send(process.env.TOKEN);
const again = await send(process.env.TOKEN);
const none = await send(undefined);
console.log(JSON.stringify({ first, again, none, reasons }));
`;

let work: string;
let engine: string;
let honoEngine: string;
let jwksServer: Server;
let tarball: { filename: string; size: number; files: string[] };
let env: Record<string, string>;
let runtimes: Record<string, string | { skipped: string }>;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "nixflex-verify-pack-"));
  engine = join(work, "engine");
  honoEngine = join(work, "engine-hono");
  const runtimeDir = join(work, "runtimes");

  // The gateway's signing code with a fresh key set; the JWKS body is what it publishes.
  const keys = parseSigningKeys(serializeSet({ keys: [await generateSigningJwk("EdDSA")] }));
  jwksServer = createServer((_req, res) =>
    res.writeHead(200, { "content-type": "application/json" }).end(keys.jwksBody),
  );
  await new Promise<void>((done) => jwksServer.listen(0, "127.0.0.1", done));
  const port = (jwksServer.address() as { port: number }).port;
  const dead = createServer();
  await new Promise<void>((done) => dead.listen(0, "127.0.0.1", done));
  const deadPort = (dead.address() as { port: number }).port;
  await new Promise((done) => dead.close(done));
  const claims = {
    issuer: "https://api.nixflex.com",
    audience: "nixflex-engine",
    accountId: "acct_packed",
    keyId: `nxf_${"ab".repeat(16)}`,
    now: Math.floor(Date.now() / 1000),
  };
  env = {
    JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    DEAD_JWKS_URL: `http://127.0.0.1:${deadPort}/.well-known/jwks.json`,
    TOKEN: await signIdentity(keys, { ...claims, requestId: "req-packed-1", method: "POST", path: "/v1/agents" }),
    TOKEN_DOUBLE_SLASH: await signIdentity(keys, {
      ...claims,
      requestId: "req-packed-2",
      method: "GET",
      path: new URL("https://api.nixflex.com//v1/reports").pathname,
    }),
  };

  // `npm pack` runs `prepare`, which builds dist/verify: exactly what a registry would serve.
  const packed = await run("npm", ["pack", "--json", "--pack-destination", work, ...NPM_FLAGS], {
    cwd: ROOT,
    maxBuffer: 16 << 20,
  });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as Array<{
    filename: string;
    size: number;
    files: Array<{ path: string }>;
  }>;
  tarball = { filename: join(work, info!.filename), size: info!.size, files: info!.files.map((f) => f.path) };
  console.log(`packed ${info!.filename}: ${info!.size} bytes, ${tarball.files.length} files`);

  for (const dir of [engine, honoEngine, runtimeDir]) {
    mkdirSync(dir);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: basename(dir), private: true, type: "module" }));
  }
  writeFileSync(join(engine, "plain.mjs"), PLAIN_CHECK);
  writeFileSync(join(honoEngine, "hono.mjs"), HONO_CHECK);
  // The same hono the gateway builds with: the cache has it, and it is a version known to work.
  const { version: honoVersion } = JSON.parse(readFileSync(join(ROOT, "node_modules/hono/package.json"), "utf8")) as {
    version: string;
  };

  const extra =
    process.platform === "linux" && process.arch === "x64"
      ? run("npm", ["install", ...NPM_FLAGS, ...Object.values(EXTRA_RUNTIMES)], { cwd: runtimeDir }).then(
          () => "installed",
          (error: Error) => `npm install failed: ${error.message.split("\n")[0]}`,
        )
      : Promise.resolve(`no pinned binary package for ${process.platform}-${process.arch}`);
  // Three independent installs at once: the plain engine, an engine with hono, the runtimes.
  await Promise.all([
    run("npm", ["install", ...NPM_FLAGS, tarball.filename], { cwd: engine }),
    run("npm", ["install", ...NPM_FLAGS, tarball.filename, `hono@${honoVersion}`], { cwd: honoEngine }),
  ]);
  const extraOutcome = await extra;

  const bin = {
    bun: join(runtimeDir, "node_modules/@oven/bun-linux-x64/bin/bun"),
    deno: join(runtimeDir, "node_modules/@deno/linux-x64-glibc/deno"),
  };
  runtimes = {
    "machine node": await machineNode(),
    "node 22 (devDependency)": join(ROOT, "node_modules/node/bin/node"),
    bun: existsSync(bin.bun) ? bin.bun : { skipped: extraOutcome },
    deno: existsSync(bin.deno) ? bin.deno : { skipped: extraOutcome },
  };
}, 120_000);

afterAll(async () => {
  await new Promise((done) => jwksServer?.close(done));
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

async function runPlain(runtime: string): Promise<Record<string, unknown>> {
  const args = runtime.endsWith("deno")
    ? ["run", "--allow-net", "--allow-env", "--allow-read", "plain.mjs"]
    : ["plain.mjs"];
  const { stdout } = await run(runtime, args, { cwd: engine, env: { ...process.env, ...env, NO_COLOR: "1" } });
  return JSON.parse(stdout);
}

describe("the packed verifier", () => {
  it("holds only the built verifier: JavaScript and declarations, no TypeScript sources, jose its only dependency", async () => {
    expect(tarball.files.filter((f) => f.startsWith("dist/verify/") && f.endsWith(".js")).sort()).toEqual(
      ["errors.js", "index.js", "middleware.js", "node.js", "replay.js", "response.js"].map((f) => `dist/verify/${f}`),
    );
    expect(tarball.files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    expect(tarball.files.some((f) => f.startsWith("src/"))).toBe(false);
    expect(tarball.size).toBeLessThan(64 * 1024);
    const installed = readdirSync(join(engine, "node_modules"))
      .filter((name) => !name.startsWith("."))
      .sort();
    expect(installed).toEqual(["jose", "nixflex-gateway"]);
  });

  for (const name of ["machine node", "node 22 (devDependency)", "bun", "deno"]) {
    it(`verifies a gateway-signed token under ${name}, refuses its replay and answers the standard 401/503`, async (ctx) => {
      const runtime = runtimes[name]!;
      if (typeof runtime !== "string") {
        console.log(`${name}: skipped (${runtime.skipped})`);
        ctx.skip();
        return;
      }
      const version = await run(runtime, ["--version"]);
      console.log(`${name}: ${version.stdout.trim().split("\n")[0]}`);
      const out = await runPlain(runtime);
      expect(out.identity).toEqual({
        accountId: "acct_packed",
        keyId: `nxf_${"ab".repeat(16)}`,
        requestId: "req-packed-1",
      });
      expect(out.replayed).toBe("ERR_IDENTITY_REPLAYED");
      expect(out.otherPath).toBe("ERR_IDENTITY_MISMATCH");
      expect(out.doubleSlash).toMatchObject({ requestId: "req-packed-2" });
      expect(out.missing).toEqual({
        status: 401,
        headers: {
          "Content-Type": "application/json",
          "WWW-Authenticate": AUTH_CHALLENGE,
          "Cache-Control": "no-store",
        },
        body: UNAUTHORIZED_BODY,
      });
      expect(out.unavailable).toMatchObject({
        code: "ERR_IDENTITY_KEYS_UNAVAILABLE",
        answer: { status: 503, headers: { "Cache-Control": "no-store" } },
      });
      expect(JSON.parse((out.unavailable as { answer: { body: string } }).answer.body).error).toMatchObject({
        type: "api_error",
        code: "service_unavailable",
      });
    });
  }

  it("serves the Hono middleware form where hono (the optional peer) is installed, under both Nodes", async () => {
    for (const name of ["machine node", "node 22 (devDependency)"]) {
      const { stdout } = await run(runtimes[name] as string, ["hono.mjs"], {
        cwd: honoEngine,
        env: { ...process.env, ...env },
      });
      const out = JSON.parse(stdout);
      expect(out.first.status).toBe(200);
      expect(JSON.parse(out.first.body)).toMatchObject({ requestId: "req-packed-1" });
      for (const refused of [out.again, out.none]) {
        expect(refused.status).toBe(401);
        expect(refused.body).toBe(UNAUTHORIZED_BODY);
        expect(refused.headers).toMatchObject({
          "www-authenticate": AUTH_CHALLENGE,
          "cache-control": "no-store",
          "content-type": "application/json",
        });
      }
      expect(out.reasons).toEqual(["ERR_IDENTITY_REPLAYED", "ERR_IDENTITY_MISSING"]);
    }
  });
});
