/**
 * A stand-in for the Nixflex engine, for `npm start` and the end-to-end tests: a plain
 * node:http server that trusts a request only through the shipped verifier
 * (src/verify, what the real engine imports) and answers with what it verified.
 *
 *   node scripts/demo-engine.ts [--port 8788] [--host 127.0.0.1]
 *        [--jwks-url http://127.0.0.1:8787/.well-known/jwks.json] [--issuer …] [--audience …]
 *
 * 200 {"verified":true,"account_id","key_id","request_id","method","path","query",
 *      "body_sha256","body_bytes","header_names":[…]}
 * 401 the standard answer of SPEC §3 (the gateway's own bytes) when the identity header is
 *     missing, does not verify for this method and path, or was already used (503 in the
 *     standard envelope when the gateway's JWKS cannot be fetched).
 *
 * It logs one JSON line per request with identifiers only — never the identity token; a
 * refusal's line carries the verifier's reason (`code`), which the client never sees.
 * Once listening it prints {"event":"engine_listening","url":…} so a parent process can
 * learn the port it got (--port 0 picks a free one).
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { createIdentityVerifier, IdentityError, identityFailure, nodeRequestFacts } from "../src/verify/index.ts";

export interface DemoEngineOptions {
  jwksUrl: string;
  issuer?: string;
  audience?: string;
  /** Where the per-request log lines go. Default: stdout. */
  log?: (line: string) => void;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

/** The engine's request handler: verify the identity, hash the streamed body, echo. */
export function createDemoEngineHandler(
  options: DemoEngineOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const verifier = createIdentityVerifier({
    jwksUrl: options.jwksUrl,
    issuer: options.issuer,
    audience: options.audience,
  });
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));

  return function demoEngine(req, res) {
    // The raw request target, as the gateway signed it: `new URL(req.url, base)` would read
    // `//v1/reports` as host `v1`, and decoding or normalising would change the path.
    const facts = nodeRequestFacts(req);
    const { method, path } = facts;
    const target = req.url ?? "/";
    const query = target.includes("?") ? target.slice(target.indexOf("?")) : "";
    // Verify while the body streams in: the hash never waits for the JWKS and vice versa.
    const identity = verifier.verifyFacts(facts).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    const hash = createHash("sha256");
    let bytes = 0;
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on("error", () => res.destroy());
    req.on("end", async () => {
      const result = await identity;
      const base = { event: "engine_request", method, path, body_bytes: bytes };
      if (!result.ok) {
        const error =
          result.error instanceof IdentityError
            ? result.error
            : new IdentityError("ERR_IDENTITY_INVALID", "identity token is not valid");
        const answer = identityFailure(error);
        log(JSON.stringify({ ...base, status: answer.status, code: error.code }));
        res.writeHead(answer.status, { ...answer.headers, "content-length": Buffer.byteLength(answer.body) });
        res.end(answer.body);
        return;
      }
      const { accountId, keyId, requestId } = result.value;
      log(JSON.stringify({ ...base, status: 200, account_id: accountId, key_id: keyId, request_id: requestId }));
      send(res, 200, {
        verified: true,
        account_id: accountId,
        key_id: keyId,
        request_id: requestId,
        method,
        path,
        query,
        body_sha256: hash.digest("hex"),
        body_bytes: bytes,
        // Names only: a value could be a credential.
        header_names: Object.keys(req.headers).sort(),
      });
    });
  };
}

/** Starts the demo engine; resolves once it listens. */
export async function startDemoEngine(
  options: DemoEngineOptions & { port?: number; host?: string },
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer(createDemoEngineHandler(options));
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8788, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  return {
    server,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8788" },
      host: { type: "string", default: "127.0.0.1" },
      "jwks-url": { type: "string", default: "http://127.0.0.1:8787/.well-known/jwks.json" },
      issuer: { type: "string" },
      audience: { type: "string" },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error("--port must be 0-65535");
  const engine = await startDemoEngine({
    port,
    host: values.host,
    jwksUrl: values["jwks-url"],
    issuer: values.issuer,
    audience: values.audience,
  });
  process.stdout.write(
    `${JSON.stringify({ event: "engine_listening", url: engine.url, jwks_url: values["jwks-url"] })}\n`,
  );
  const stop = () => void engine.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`demo engine: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
