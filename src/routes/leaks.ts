/**
 * The leak-report paths (SPEC §6, §10): public, outside API-key authentication, each
 * authenticated by its own means. Both act through `actOnLeaks` (src/leaks/report.ts).
 *
 * - `POST /v1/secret-scanning/github`: GitHub's secret-scanning partner reports, signed with
 *   ECDSA P-256 over the raw body. Nothing is read from KV before the signature verified.
 * - `POST /v1/leaked-keys`: anyone who found a secret. The answer is the same bytes whatever
 *   was submitted, and comes before any key work (which runs in `waitUntil`), so neither its
 *   content nor its timing tells whether the secret was live. Every submission counts
 *   against the client address like a failed authentication.
 */
import type { Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { errorResponse, GatewayError } from "../errors.ts";
import { digestSecret, toHex } from "../keys/hash.ts";
import { log } from "../log.ts";
import { clientAddress } from "../auth/rate-limit.ts";
import { derToRawSignature } from "../leaks/der.ts";
import { fromBase64 } from "../lib/base64.ts";
import { actOnLeaks, type ReportedToken } from "../leaks/report.ts";
import { decodeJson, NO_STORE, readLimited } from "./keys-http.ts";

export const GITHUB_REPORT_PATH = "/v1/secret-scanning/github";
export const LEAK_REPORT_PATH = "/v1/leaked-keys";

/** Largest GitHub report read: 1,000 matches with long URLs fit several times over. */
export const GITHUB_REPORT_LIMIT_BYTES = 1024 * 1024;
/** Largest public leak report read: one secret in a small JSON object. */
export const LEAK_REPORT_LIMIT_BYTES = 4 * 1024;

/** The one answer of `POST /v1/leaked-keys`, whatever was submitted (modelled on GitHub's 202). */
export const LEAK_REPORT_ANSWER = JSON.stringify({
  object: "leak_report",
  status: "received",
  message: "Thank you. If this is a live Nixflex key secret, it is revoked now and its owner is told.",
});

const badSignature = (detail: string) => new GatewayError("invalid_signature", { detail });

/** Verifies GitHub's signature over `body`; throws `invalid_signature` or `signature_keys_unavailable`. */
async function verifyGitHubSignature(c: Context<AppEnv>, body: Uint8Array): Promise<void> {
  const identifier = c.req.header("github-public-key-identifier")?.trim() ?? "";
  const signature = c.req.header("github-public-key-signature")?.trim() ?? "";
  if (identifier === "" || signature === "") throw badSignature("missing GitHub signature headers");
  const der = fromBase64(signature);
  const raw = der === null ? null : derToRawSignature(der);
  if (raw === null) throw badSignature("signature is not a base64 DER ECDSA P-256 signature");
  const found = await c.var.services.githubKeys.key(identifier.slice(0, 200));
  if (!found.ok) {
    if (found.reason === "keys_unavailable") throw new GatewayError("signature_keys_unavailable");
    throw badSignature("unknown GitHub key identifier");
  }
  const valid = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, found.key, raw, body);
  if (!valid) throw badSignature("signature does not verify");
}

const text = (value: unknown): string | null => (typeof value === "string" ? value : null);

/** The matches of a verified report: an array of objects with a string `token`. */
function parseGitHubReport(value: unknown): (ReportedToken & { type: string })[] {
  const invalid = (message: string) => new GatewayError("invalid_parameters", { message });
  if (!Array.isArray(value)) throw invalid("body: must be a JSON array of {token, type, url, source}");
  return value.map((entry: unknown, index) => {
    const match = (typeof entry === "object" && entry !== null ? entry : {}) as Record<string, unknown>;
    const token = text(match.token);
    if (token === null) throw invalid(`body[${index}].token: must be a string`);
    return { token, type: text(match.type) ?? "", source: text(match.source), url: text(match.url) };
  });
}

/** `POST /v1/secret-scanning/github`: verify, act, answer GitHub's feedback format. */
async function githubReport(c: Context<AppEnv>): Promise<Response> {
  const body = await readLimited(c.req.raw, GITHUB_REPORT_LIMIT_BYTES, "split the report");
  await verifyGitHubSignature(c, body);
  const matches = parseGitHubReport(
    decodeJson(c.req.raw, body, 'a JSON array such as [{"token":"nxfs_…","type":"nixflex_key_secret"}]'),
  );
  const services = c.var.services;
  const requestId = c.var.requestId;
  const live = await actOnLeaks(services, "github_secret_scanning", matches, requestId, c.executionCtx);
  // token_hash, never token_raw: the answer must not carry a secret (SPEC §10).
  const hashes = await Promise.all(matches.map(async (m) => toHex(await digestSecret(m.token))));
  const feedback = matches.map((m, i) => ({
    token_hash: hashes[i],
    token_type: m.type,
    label: live[i] ? "true_positive" : "false_positive",
  }));
  log("info", "leak_report", {
    request_id: requestId,
    reporter: "github_secret_scanning",
    tokens: matches.length,
    true_positives: live.filter(Boolean).length,
  });
  return c.json(feedback, 200, NO_STORE);
}

/** The submitted token: `{"key_secret": "nxfs_…"}` or `{"key_secret": "KEY_ID:KEY_SECRET"}`. */
function parseLeakReport(value: unknown): ReportedToken {
  const fields = (typeof value === "object" && value !== null && !Array.isArray(value) ? value : null) as Record<
    string,
    unknown
  > | null;
  const secret = fields === null ? null : text(fields.key_secret);
  const url = fields === null ? null : text(fields.url);
  if (secret === null || (fields!.url !== undefined && url === null)) {
    throw new GatewayError("invalid_parameters", {
      message: 'body: send {"key_secret": "nxfs_…"} (or the pair KEY_ID:KEY_SECRET), optionally with "url"',
    });
  }
  return { token: secret, source: null, url };
}

/** `POST /v1/leaked-keys`: count, answer at once, act after the answer. */
async function leakReport(c: Context<AppEnv>): Promise<Response> {
  const services = c.var.services;
  const requestId = c.var.requestId;
  // Every submission counts as a failure: the same limit as failed authentication (SPEC §3).
  const counted = await services.limiter.fail(clientAddress(c.req.raw.headers));
  if (counted.limited) throw rateLimited(counted.retryAfterS);
  const body = await readLimited(c.req.raw, LEAK_REPORT_LIMIT_BYTES, 'send {"key_secret": "nxfs_…"}');
  const report = parseLeakReport(decodeJson(c.req.raw, body, 'a JSON object such as {"key_secret":"nxfs_…"}'));
  c.executionCtx.waitUntil(
    actOnLeaks(services, "leak_report", [report], requestId, c.executionCtx).then(
      (live) =>
        log("info", "leak_report", {
          request_id: requestId,
          reporter: "leak_report",
          tokens: 1,
          true_positives: live.filter(Boolean).length,
        }),
      (error: unknown) =>
        log("error", "leak_report_failed", {
          request_id: requestId,
          error: error instanceof GatewayError ? error.code : error instanceof Error ? error.name : "unknown",
        }),
    ),
  );
  return c.body(LEAK_REPORT_ANSWER, 202, { "Content-Type": "application/json", ...NO_STORE });
}

const rateLimited = (retryAfterS: number) =>
  new GatewayError("rate_limited", { headers: { "Retry-After": String(retryAfterS) } });

/** Registers both leak paths; another method on them answers 405 with `Allow: POST`. */
export function registerLeakRoutes(app: Hono<AppEnv>): void {
  app.post(GITHUB_REPORT_PATH, githubReport);
  app.post(LEAK_REPORT_PATH, leakReport);
  for (const path of [GITHUB_REPORT_PATH, LEAK_REPORT_PATH]) {
    app.all(path, (c) => errorResponse("method_not_allowed", c.var.requestId, { headers: { Allow: "POST" } }));
  }
}
