/**
 * The keys CLI's side of the gateway's operator API (src/routes/operator.ts): where the
 * gateway is, how to authenticate to it, and one call as a value.
 *
 * - Locally (the default): `--gateway URL`, else `NIXFLEX_GATEWAY_URL`, else the address
 *   of `npm start` (http://127.0.0.1:8787), with OPERATOR_TOKEN from .dev.vars (created
 *   when missing). When nothing listens there, a gateway is started for the call on the
 *   same local state (scripts/lib/local-gateway.ts) and stopped after.
 * - `--remote`: `--gateway URL`, else `NIXFLEX_GATEWAY_URL`, else https://api.nixflex.com,
 *   through Cloudflare Access: a service token from `CF_ACCESS_CLIENT_ID` and
 *   `CF_ACCESS_CLIENT_SECRET` (Access turns it into the assertion the gateway verifies),
 *   or a user's token from `CF_ACCESS_TOKEN` (`cloudflared access token --app URL`).
 */
import type { KeyOutcome } from "../../src/routes/keys-http.ts";
import { CliError, note, UsageError } from "./cli.ts";
import { type LocalGateway, startLocalGateway } from "./local-gateway.ts";
import { ensureLocalSecrets } from "./local-secrets.ts";

/** Where `npm start` serves the gateway. */
export const LOCAL_GATEWAY_URL = "http://127.0.0.1:8787";
/** The deployed production gateway. */
export const REMOTE_GATEWAY_URL = "https://api.nixflex.com";
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const CALL_TIMEOUT_MS = 60_000;

export interface TargetOptions {
  gateway?: string;
  remote?: boolean;
  persistTo?: string;
  /** The .dev.vars file holding OPERATOR_TOKEN (and the secrets a started gateway reads). */
  devVars: string;
}

/** What a call answered: the gateway's own outcome, shaped as `callKeyRoute` shapes it. */
export type CallOutcome = KeyOutcome;
type ErrorBody = Extract<KeyOutcome, { ok: false }>["error"];

/** What a local target needs besides its URL: the state and secrets a started gateway uses. */
interface LocalTarget {
  persistTo?: string;
  devVars: string;
  tokenCreated: boolean;
}

function parseGatewayUrl(raw: string, flag: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${flag} must be a URL such as ${LOCAL_GATEWAY_URL} (got ${JSON.stringify(raw)})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`${flag} must be an http(s) URL`);
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "") {
    throw new UsageError(`${flag} must be the gateway's origin only, e.g. ${REMOTE_GATEWAY_URL}`);
  }
  return url;
}

function accessHeaders(): Record<string, string> {
  const { CF_ACCESS_CLIENT_ID: id, CF_ACCESS_CLIENT_SECRET: secret, CF_ACCESS_TOKEN: token } = process.env;
  if (id && secret) return { "CF-Access-Client-Id": id, "CF-Access-Client-Secret": secret };
  if (token) return { "cf-access-token": token };
  throw new UsageError(
    "--remote authenticates through Cloudflare Access: set CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET " +
      '(a service token; docs/OPERATIONS.md, "Operator access") or CF_ACCESS_TOKEN (from `cloudflared access token --app URL`)',
  );
}

/** Whether a fetch failed because nothing listens there (as opposed to a slow or broken gateway). */
function nothingListens(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause;
  return cause?.code === "ECONNREFUSED";
}

/** A connection to one gateway's operator API for the length of a command. */
export class OperatorClient {
  readonly #base: URL;
  readonly #headers: Record<string, string>;
  readonly #local: LocalTarget | null;
  #started: LocalGateway | null = null;

  private constructor(base: URL, headers: Record<string, string>, local: LocalTarget | null) {
    this.#base = base;
    this.#headers = headers;
    this.#local = local;
  }

  /** Resolves the gateway and its credentials from the options and the environment. */
  static async open(options: TargetOptions): Promise<OperatorClient> {
    const flag = options.gateway !== undefined ? "--gateway" : "NIXFLEX_GATEWAY_URL";
    const raw =
      options.gateway ?? process.env.NIXFLEX_GATEWAY_URL ?? (options.remote ? REMOTE_GATEWAY_URL : LOCAL_GATEWAY_URL);
    const base = parseGatewayUrl(raw, flag);
    if (options.remote) {
      if (options.persistTo !== undefined)
        throw new UsageError("--persist-to is for local state; drop it with --remote");
      return new OperatorClient(base, accessHeaders(), null);
    }
    if (!LOOPBACK_HOSTS.has(base.hostname)) {
      throw new UsageError(
        `${base.origin} is not on this machine: add --remote to reach a deployed gateway through Cloudflare Access`,
      );
    }
    const secrets = await ensureLocalSecrets(options.devVars);
    return new OperatorClient(
      base,
      { authorization: `Bearer ${secrets.operatorToken}` },
      {
        persistTo: options.persistTo,
        devVars: options.devVars,
        tokenCreated: secrets.created.includes("OPERATOR_TOKEN"),
      },
    );
  }

  /** Where the calls go, for messages: the URL, and the local gateway started for them if any. */
  get where(): string {
    if (this.#started !== null) return `a local gateway started for this call (${this.#started.url})`;
    return `the gateway at ${this.#base.origin}`;
  }

  /** Milliseconds the started local gateway took to come up, or null when one was running. */
  get startedInMs(): number | null {
    return this.#started?.startedInMs ?? null;
  }

  /** One operator call: `path` under /v1/operator, an optional JSON body. */
  async call(method: string, path: string, body?: unknown): Promise<CallOutcome> {
    let response: Response;
    try {
      response = await this.#send(method, path, body);
    } catch (error) {
      if (!nothingListens(error) || this.#local === null || this.#started !== null) throw this.#unreachable(error);
      await this.#startLocal();
      response = await this.#send(method, path, body).catch((again: unknown) => {
        throw this.#unreachable(again);
      });
    }
    return this.#outcome(response);
  }

  /** Stops the gateway started for this command, if any. */
  async close(): Promise<void> {
    await this.#started?.stop();
    this.#started = null;
  }

  #send(method: string, path: string, body: unknown): Promise<Response> {
    const base = this.#started?.url ?? this.#base.origin;
    const headers: Record<string, string> = { ...this.#headers, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    return fetch(`${base}/v1/operator${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // Access answers a refused credential with a redirect to its login page: report it, never follow it.
      redirect: "manual",
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  }

  async #startLocal(): Promise<void> {
    const local = this.#local!;
    note(`No gateway answers at ${this.#base.origin}; starting one for this call on the same local state…`);
    try {
      this.#started = await startLocalGateway({ persistTo: local.persistTo, envFile: local.devVars });
    } catch (error) {
      throw new CliError(error instanceof Error ? error.message : String(error));
    }
    note(`Local gateway ready on ${this.#started.url} in ${(this.#started.startedInMs / 1000).toFixed(1)} s.`);
  }

  #unreachable(error: unknown): CliError {
    const reason = error instanceof Error && error.name === "TimeoutError" ? "no answer in time" : "unreachable";
    const cause = (error as { cause?: { code?: string } } | undefined)?.cause?.code;
    return new CliError(`the gateway at ${this.#base.origin} is ${reason}${cause ? ` (${cause})` : ""}`);
  }

  async #outcome(response: Response): Promise<CallOutcome> {
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (response.ok && json !== null && typeof json === "object") {
      return { ok: true, status: response.status as 200 | 201, value: json };
    }
    const error = (json as { error?: ErrorBody } | undefined)?.error;
    if (error?.code === "not_found") throw this.#refused();
    if (error?.code === "invalid_api_key") {
      // Only a gateway without the operator API forwards /v1/operator to API-key authentication.
      throw new CliError(`${this.where} has no operator API (it asked for an API key): an older build? Restart it`);
    }
    if (error !== undefined && typeof error.message === "string")
      return { ok: false, error: { ...error, status: response.status } };
    if (response.status >= 300 && response.status < 400) throw this.#refused();
    throw new CliError(
      `the gateway at ${this.#base.origin} answered ${response.status} without an error the CLI knows`,
    );
  }

  /** The operator API answered as if it did not exist: the credential was not accepted there. */
  #refused(): CliError {
    if (this.#local === null) {
      return new CliError(
        `${this.#base.origin} did not accept the Access credential for /v1/operator (a login redirect or the 404 of an unknown route): ` +
          "check CF_ACCESS_CLIENT_ID / CF_ACCESS_CLIENT_SECRET (or CF_ACCESS_TOKEN), that the Access application covers /v1/operator/*, " +
          "and that ACCESS_TEAM_DOMAIN and ACCESS_AUD are set for this environment",
      );
    }
    const hint = this.#local.tokenCreated
      ? `OPERATOR_TOKEN was just created in ${this.#local.devVars}: restart the running gateway (npm start) so it reads it`
      : `is it the gateway started with ${this.#local.devVars} (its OPERATOR_TOKEN)? A gateway started before the token existed needs a restart`;
    return new CliError(`${this.where} refused the operator token (404 on /v1/operator): ${hint}`);
  }
}
