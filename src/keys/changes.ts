/**
 * Who changes a key, and the audit line every change writes (SPEC §5: one write path,
 * whoever makes the change). `KeyStore`'s create, roll and revoke take a `ChangeContext`
 * and write this line once the change is stored, so no caller can forget it.
 */
import { log } from "../log.ts";

/** Who made a change. Identifiers only: never a secret. */
export type Actor =
  /** A request authenticated by an API key of the same account (`/v1/keys`). */
  | { type: "api_key"; keyId: string }
  /** A signed-in dashboard user, named by the dashboard (the `KeyAdmin` entrypoint). */
  | { type: "dashboard_user"; userId: string }
  /** An operator (the operator API / CLI): the Access identity or `local` in development. */
  | { type: "operator"; subject: string }
  /** A leak report (secret scanning, the public leak form): where the secret was seen. */
  | { type: "leak_report"; source: string; url?: string }
  /** Seeding and tests that write the store directly. */
  | { type: "system"; name: string };

/** What kind of change. */
/** `end_grace`: a leak report ended a roll's grace period because the previous secret leaked. */
export type KeyAction = "create" | "roll" | "revoke" | "end_grace";

/** Who acts, and the request the change belongs to (for the audit line). */
export interface ChangeContext {
  actor: Actor;
  requestId: string;
}

/** The context of a write made outside any request (seeding, tests). */
export const SYSTEM_CHANGE: ChangeContext = { actor: { type: "system", name: "direct" }, requestId: "" };

/** The actor as `type:id` for one log field, e.g. `api_key:nxf_…` or `dashboard_user:u_123`. */
export function describeActor(actor: Actor): string {
  switch (actor.type) {
    case "api_key":
      return `api_key:${actor.keyId}`;
    case "dashboard_user":
      return `dashboard_user:${actor.userId}`;
    case "operator":
      return `operator:${actor.subject}`;
    case "leak_report":
      return `leak_report:${actor.source}`;
    case "system":
      return `system:${actor.name}`;
  }
}

/** The audit line of one stored change: who, in which account, on which key, when. */
export function auditChange(
  change: ChangeContext,
  action: KeyAction,
  target: { accountId: string; keyId: string },
  atMs: number,
): void {
  const actor = change.actor;
  log("info", "audit", {
    request_id: change.requestId || undefined,
    account_id: target.accountId,
    target_key_id: target.keyId,
    action,
    actor: describeActor(actor),
    actor_key_id: actor.type === "api_key" ? actor.keyId : undefined,
    leak_url: actor.type === "leak_report" ? actor.url : undefined,
    at: new Date(atMs).toISOString(),
  });
}
