/**
 * The one implementation of acting on a leak report (SPEC §10), behind both public paths:
 * parse each token, find what it is (`KeyStore.matchLeaked`), kill every working secret
 * through the one write path (`KeyStore.revokeLeaked`, each audit line naming where the
 * secret was seen), and tell the owner (`key.leaked`, src/leaks/notify.ts) after the answer.
 */
import type { Services, WaitUntil } from "../env.ts";
import { GatewayError } from "../errors.ts";
import type { LiveLeak } from "../keys/store.ts";
import { redact } from "../log.ts";
import { deliverLeakEvent, type LeakedKey } from "./notify.ts";
import { parseLeakedToken } from "./token.ts";

/** One reported token and where it was seen. */
export interface ReportedToken {
  token: string;
  /** GitHub's `source` field, when GitHub reported it. */
  source: string | null;
  url: string | null;
}

/** Who reported: the audit actor's `source` and the event's `reported_by`. */
export type Reporter = "github_secret_scanning" | "leak_report";

/**
 * The most secrets one report may kill. Workers allow 1,000 KV operations per invocation and
 * each revoke costs three; a report with more working secrets than this answers 503 once
 * these are revoked, so the sender's retry revokes the next batch.
 */
export const MAX_KILLS_PER_REPORT = 200;
/** Revocations written at once. */
const WRITE_CONCURRENCY = 16;
/** Longest `url` kept in an audit line or event; GitHub's are repository blob URLs. */
const MAX_URL_LENGTH = 2_048;

const sourcePattern = /^[A-Za-z_]{1,40}$/;

/** What a report's `source` becomes in the audit line: GitHub's word, or `unknown`. */
function cleanSource(source: string | null): string | null {
  if (source === null) return null;
  return sourcePattern.test(source) ? source.toLowerCase() : "unknown";
}

/** The URL as kept: bounded, and with anything secret-shaped in it (a key in a query) redacted. */
function cleanUrl(url: string | null): string | null {
  return url === null || url === "" ? null : redact(url.slice(0, MAX_URL_LENGTH));
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/**
 * Acts on every token of a report; returns, per token in order, whether it was a working
 * Nixflex secret (now dead). Throws only `service_unavailable` (the key store) — after
 * which no answer is owed for any token, and a retry of the same report is safe: a secret
 * already killed is simply no longer live.
 */
export async function actOnLeaks(
  services: Services,
  reporter: Reporter,
  tokens: readonly ReportedToken[],
  requestId: string,
  ctx: WaitUntil,
): Promise<boolean[]> {
  const candidates = tokens.map((t) => parseLeakedToken(t.token));
  const checked = candidates.flatMap((candidate, index) => (candidate === null ? [] : [{ candidate, index }]));
  const matches = await services.store.matchLeaked(checked.map((c) => c.candidate));

  const live = new Array<boolean>(tokens.length).fill(false);
  // The same secret twice in one report is killed once, attributed to its first sighting.
  const kills = new Map<string, { match: LiveLeak; token: ReportedToken }>();
  matches.forEach((match, i) => {
    if (match.state === "not_live") return;
    const index = checked[i]!.index;
    live[index] = true;
    const id = `${match.keyId} ${match.secretHash}`;
    if (!kills.has(id)) kills.set(id, { match, token: tokens[index]! });
  });
  const todo = [...kills.values()];

  const killed: LeakedKey[] = [];
  await eachLimited(todo.slice(0, MAX_KILLS_PER_REPORT), WRITE_CONCURRENCY, async ({ match, token }) => {
    const source = cleanSource(token.source);
    const url = cleanUrl(token.url);
    const auditSource = source === null ? reporter : `${reporter}:${source}`;
    const done = await services.store.revokeLeaked(match, { source: auditSource, url: url ?? undefined }, requestId);
    if (done === null) return;
    killed.push({
      account_id: match.accountId,
      key_id: match.keyId,
      action: done.action,
      revoked_at: done.key.revoked_at,
      reported_by: reporter,
      source,
      url,
    });
  });

  const { webhookUrl } = services.config.leaks;
  if (killed.length > 0 && webhookUrl !== null) {
    const target = {
      url: webhookUrl,
      fetch: services.outboundFetch,
      signing: services.config.signing,
      issuer: services.config.issuer,
      now: () => services.store.now(),
    };
    const event = {
      type: "key.leaked" as const,
      id: crypto.randomUUID(),
      created_at: new Date(services.store.now()).toISOString(),
      request_id: requestId,
      keys: killed,
    };
    ctx.waitUntil(deliverLeakEvent(target, event));
  }
  if (todo.length > MAX_KILLS_PER_REPORT) {
    throw new GatewayError("service_unavailable", {
      detail: `leak report carried ${todo.length} working secrets; ${MAX_KILLS_PER_REPORT} revoked, the rest await a retry`,
      headers: { "Retry-After": "1" },
    });
  }
  return live;
}
