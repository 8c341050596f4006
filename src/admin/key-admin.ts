/**
 * `KeyAdmin`: key management for the dashboard (app.nixflex.com), as RPC over a service
 * binding. A named entrypoint is reachable only from a Worker that declares a binding to
 * it, never from the internet: the gateway's HTTP handler (the default export) has no path
 * into this class.
 *
 * The dashboard names the account it acts in and the signed-in user who acts; the gateway
 * trusts that pair, as it trusts its own binding (the dashboard authenticates its users).
 * Each method runs the same route object as `/v1/keys` (src/routes/v1_keys_*.ts) through
 * `callKeyRoute`: the same validation, key objects and error codes, and every change goes
 * through the store's one write path with the user in the audit line.
 *
 * ```ts
 * // In the dashboard Worker: [[services]] binding = "GATEWAY_ADMIN", entrypoint = "KeyAdmin"
 * const caller = { accountId: "acct_123", actor: { userId: "u_42" } };
 * const created = await env.GATEWAY_ADMIN.create(caller, { name: "Production" });
 * if (created.ok) show(created.value.key_secret); else show(created.error.message);
 * ```
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import type { Bindings } from "../env.ts";
import { GatewayError, settleError } from "../errors.ts";
import type { ChangeContext } from "../keys/changes.ts";
import { ACCOUNT_ID_PATTERN } from "../keys/format.ts";
import type { KeyObject } from "../keys/record.ts";
import type { KeyPage } from "../keys/store.ts";
import { callKeyRoute, type KeyOutcome, type KeyRoute, keyErrorOutcome } from "../routes/keys-http.ts";
import type { CreateKeyRequest, ListKeysQuery, RollKeyRequest } from "../routes/keys-schemas.ts";
import type { Infer, ObjectSchema } from "../routes/keys-validate.ts";
import { createKey } from "../routes/v1_keys_createKey.ts";
import { getKey } from "../routes/v1_keys_getKey.ts";
import { listKeys } from "../routes/v1_keys_listKeys.ts";
import { revokeKey } from "../routes/v1_keys_revokeKey.ts";
import { rollKey } from "../routes/v1_keys_rollKey.ts";
import { isolateServices } from "../services.ts";

/** Who calls: the account acted in, and the dashboard user acting (named in the audit line). */
export interface AdminCaller {
  /** The account whose keys are managed, e.g. `acct_123` (letters, digits, `_`, `-`; up to 64). */
  accountId: string;
  /** The signed-in dashboard user: an id of 1–128 printable ASCII characters, no spaces. */
  actor: { userId: string };
}

/** A method's outcome: the `/v1/keys` answer as a value, plus the request id of the call (in the audit line). */
export type AdminOutcome<T> =
  | { ok: true; status: 200 | 201; value: T; requestId: string }
  | (Extract<KeyOutcome, { ok: false }> & { requestId: string });

/** A key with the secret that create and roll answer, once. */
export type KeyWithSecretObject = KeyObject & { key_secret: string };
/** What revoke answers: the key, and the worst case until it fails everywhere. */
export type RevokedKeyObject = KeyObject & { revocation_propagation_seconds: number };

/** Dashboard user ids go into the audit line as `dashboard_user:<id>`: bounded, printable, no spaces. */
const USER_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** The caller's account and actor, or the `invalid_parameters` error a bad one gets (the wording of `/v1/keys`). */
function checkCaller(caller: unknown): { accountId: string; userId: string } {
  const given = (typeof caller === "object" && caller !== null ? caller : {}) as Partial<AdminCaller>;
  const problems: string[] = [];
  const accountId = given.accountId;
  if (typeof accountId !== "string" || !ACCOUNT_ID_PATTERN.test(accountId)) {
    problems.push("accountId: must be 1–64 letters, digits, _ or -");
  }
  const userId = typeof given.actor === "object" && given.actor !== null ? given.actor.userId : undefined;
  if (typeof userId !== "string" || !USER_ID_PATTERN.test(userId)) {
    problems.push("actor.userId: must be 1–128 printable ASCII characters without spaces");
  }
  if (problems.length > 0) throw new GatewayError("invalid_parameters", { message: problems.join("; ") });
  return { accountId: accountId as string, userId: userId as string };
}

/** The key-management entrypoint of the gateway Worker, for the dashboard's service binding. */
export class KeyAdmin extends WorkerEntrypoint<Bindings> {
  /** Creates a key (`POST /v1/keys`); the answer carries `key_secret`, this once. */
  create(caller: AdminCaller, input: Infer<typeof CreateKeyRequest>): Promise<AdminOutcome<KeyWithSecretObject>> {
    return this.#run(createKey, caller, input, "");
  }

  /** One page of the account's keys, newest first (`GET /v1/keys`): pass `next_cursor` back as `cursor`. */
  list(caller: AdminCaller, query: Partial<Infer<typeof ListKeysQuery>> = {}): Promise<AdminOutcome<KeyPage>> {
    return this.#run(listKeys, caller, query, "");
  }

  /** One key of the account (`GET /v1/keys/{key_id}`); another account's key is `key_not_found`. */
  get(caller: AdminCaller, keyId: string): Promise<AdminOutcome<KeyObject>> {
    return this.#run(getKey, caller, undefined, keyId);
  }

  /** A new secret for the key (`POST /v1/keys/{key_id}/roll`), the old one valid for the grace period. */
  roll(
    caller: AdminCaller,
    keyId: string,
    input: Partial<Infer<typeof RollKeyRequest>> = {},
  ): Promise<AdminOutcome<KeyWithSecretObject>> {
    return this.#run(rollKey, caller, input, keyId);
  }

  /** Revokes the key (`DELETE /v1/keys/{key_id}`); this isolate refuses it at once. */
  revoke(caller: AdminCaller, keyId: string): Promise<AdminOutcome<RevokedKeyObject>> {
    return this.#run(revokeKey, caller, undefined, keyId);
  }

  /** Checks the caller, then runs the route as `/v1/keys` does; every failure is a value. */
  async #run<T, S extends ObjectSchema | undefined>(
    route: KeyRoute<S>,
    caller: unknown,
    input: unknown,
    keyId: unknown,
  ): Promise<AdminOutcome<T>> {
    const requestId = crypto.randomUUID();
    try {
      const { accountId, userId } = checkCaller(caller);
      const change: ChangeContext = { actor: { type: "dashboard_user", userId }, requestId };
      const { store } = await isolateServices(this.env);
      // A non-string key_id is malformed, which answers `key_not_found` like any other.
      const outcome = await callKeyRoute(
        route as unknown as KeyRoute,
        { store, accountId, change },
        input,
        String(keyId ?? ""),
      );
      return outcome.ok
        ? { ok: true, status: outcome.status, value: outcome.value as T, requestId }
        : { ...outcome, requestId };
    } catch (error) {
      // Logged with the request id; the caller gets the envelope's fields, never a stack.
      return { ...keyErrorOutcome(settleError(error, requestId, { entrypoint: "KeyAdmin" })), requestId };
    }
  }
}
