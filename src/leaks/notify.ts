/**
 * The `key.leaked` notification (SPEC §10: "the owner is told"): one event per leak report
 * that killed at least one secret, POSTed to `LEAK_WEBHOOK_URL` (the engine or the
 * dashboard, which mails the owner). It is signed like the identity header — a JWT from the
 * gateway's `IDENTITY_SIGNING_KEYS`, verifiable with the public JWKS — in
 * `X-Nixflex-Signature`, whose `body_sha256` claim binds it to the exact body
 * (docs/engine-integration.md, "The key.leaked webhook").
 *
 * Delivery runs after the answer, inside `waitUntil`, with a few bounded retries: the audit
 * line is the durable record of the revocation, the webhook is the prompt to tell the owner.
 * A Durable Object alarm would survive an isolate's end; the whole schedule here fits in
 * the 30 s a Worker may keep running after its answer.
 */
import { base64url, CompactSign } from "jose";
import type { SigningKeySet } from "../identity/keys.ts";
import { log } from "../log.ts";

/** `typ` of the webhook token: never mistaken for an identity token (`nixflex-identity+jwt`). */
export const WEBHOOK_TYP = "nixflex-webhook+jwt";
/** `aud` of the webhook token. */
export const WEBHOOK_AUDIENCE = "nixflex-webhook";
/** The header carrying the token. */
export const WEBHOOK_SIGNATURE_HEADER = "X-Nixflex-Signature";
/** The token's lifetime: longer than the whole retry schedule. */
export const WEBHOOK_TOKEN_TTL_S = 300;
/** Wait before each attempt. The sum plus every attempt's timeout stays under 30 s. */
export const WEBHOOK_RETRY_DELAYS_MS = [0, 500, 2_000, 8_000] as const;
export const WEBHOOK_ATTEMPT_TIMEOUT_MS = 3_000;

/** One key whose leaked secret was killed. */
export interface LeakedKey {
  account_id: string;
  key_id: string;
  /** `revoked`: the current secret leaked; `grace_ended`: the previous secret of a roll leaked. */
  action: "revoked" | "grace_ended";
  revoked_at: string | null;
  /** Where the report came from: `github_secret_scanning` or `leak_report` (`POST /v1/leaked-keys`). */
  reported_by: string;
  /** GitHub's `source` (`content`, `commit`, …) when GitHub reported it. */
  source: string | null;
  /** Where the secret was seen, when the reporter said. */
  url: string | null;
}

/** The event body. */
export interface LeakEvent {
  type: "key.leaked";
  id: string;
  created_at: string;
  request_id: string;
  keys: LeakedKey[];
}

export interface WebhookTarget {
  url: string;
  fetch: typeof fetch;
  signing: SigningKeySet;
  issuer: string;
  /** Milliseconds since the epoch. */
  now: () => number;
}

const encoder = new TextEncoder();

/**
 * The signature token for `body`: who sent it, to whom, when, and the body's SHA-256. Signed
 * with jose's compact JWS signer over a claims set written here, as the identity token is
 * (src/identity/sign.ts): `SignJWT` would add its claims machinery to the bundle for one call.
 */
export async function signWebhook(target: WebhookTarget, body: string, eventId: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(body)));
  const now = Math.floor(target.now() / 1000);
  const claims = {
    iss: target.issuer,
    aud: WEBHOOK_AUDIENCE,
    iat: now,
    exp: now + WEBHOOK_TOKEN_TTL_S,
    jti: eventId,
    body_sha256: base64url.encode(digest),
  };
  return new CompactSign(encoder.encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: target.signing.active.alg, kid: target.signing.active.kid, typ: WEBHOOK_TYP })
    .sign(await target.signing.signingKey());
}

const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * Delivers `event`, retrying network failures, 408, 429 and 5xx on the schedule above. Never
 * throws: the outcome is a log line naming the event and its keys (never a secret).
 */
export async function deliverLeakEvent(target: WebhookTarget, event: LeakEvent): Promise<void> {
  const body = JSON.stringify(event);
  const fields = {
    event_id: event.id,
    request_id: event.request_id,
    key_ids: event.keys.map((k) => k.key_id).join(","),
  };
  let status = 0;
  let attempts = 0;
  try {
    const token = await signWebhook(target, body, event.id);
    for (const delay of WEBHOOK_RETRY_DELAYS_MS) {
      if (delay > 0) await scheduler.wait(delay);
      attempts++;
      try {
        const response = await target.fetch(target.url, {
          method: "POST",
          headers: { "Content-Type": "application/json", [WEBHOOK_SIGNATURE_HEADER]: token },
          body,
          signal: AbortSignal.timeout(WEBHOOK_ATTEMPT_TIMEOUT_MS),
        });
        status = response.status;
        await response.body?.cancel();
        if (response.ok) {
          log("info", "leak_webhook_delivered", { ...fields, attempts, status });
          return;
        }
        if (!retryable(status)) break;
      } catch {
        status = 0;
      }
    }
  } catch (error) {
    log("error", "leak_webhook_unsigned", { ...fields, error: error instanceof Error ? error.name : "unknown" });
    return;
  }
  log("error", "leak_webhook_failed", { ...fields, attempts, status });
}
