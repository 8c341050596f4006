/**
 * Who may use the operator API (SPEC §5: "Operators reach the same calls through an
 * operator API that no API key can reach (behind Cloudflare Access)").
 *
 * Two ways in, each off unless its settings say otherwise:
 * - **Cloudflare Access** (deployed environments): `ACCESS_TEAM_DOMAIN` and `ACCESS_AUD`.
 *   Access puts a signed application token in `Cf-Access-Jwt-Assertion` on every request
 *   it let through (users, and service tokens sent as `CF-Access-Client-Id` /
 *   `CF-Access-Client-Secret`); it is verified here with jose against the team's
 *   certificate URL: RS256 (what Access signs with), `iss` = the team domain, `aud` = the
 *   application's AUD tag, `exp` required.
 * - **A local token** (`wrangler dev` only): `OPERATOR_TOKEN` from .dev.vars, sent as
 *   `Authorization: Bearer <token>`. Accepted only when the top-level-only var
 *   `OPERATOR_TOKEN_ALLOWED = "true"` is set (no `[env.*]` of wrangler.toml has it, and vars
 *   are not inherited) **and** the request was addressed to a loopback host, which a
 *   deployed Worker never sees.
 *
 * Anything else (no credential, a bad one, an API key) is `null`: the caller answers the
 * same 404 as an unknown route, so the API's existence is not revealed. Why a credential
 * was refused goes to the log, never to the client.
 */
import { createRemoteJWKSet, customFetch, errors, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { Bindings } from "../env.ts";
import { digestSecret, timingSafeEqual } from "../keys/hash.ts";
import { log } from "../log.ts";

/** The header Access adds to every request it let through (the application token). */
export const ACCESS_ASSERTION_HEADER = "cf-access-jwt-assertion";
/** The only algorithm Access signs application tokens with. */
const ACCESS_ALGORITHMS = ["RS256"];
/** A local token shorter than this is refused as a setting: it could be guessed. */
export const OPERATOR_TOKEN_MIN_CHARS = 32;
/** The subject of the audit line for the local token. */
export const LOCAL_OPERATOR = "local";
const TEAM_DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.cloudflareaccess\.com$/;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** The Access application the gateway trusts. */
export interface AccessSettings {
  /** `https://<team>.cloudflareaccess.com`, what Access writes in `iss`. */
  issuer: string;
  /** `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`, the team's public keys. */
  certsUrl: string;
  /** The application's AUD tag. */
  audience: string;
}

/** What the operator API accepts in this environment; both null: it answers 404 to everything. */
export interface OperatorSettings {
  access: AccessSettings | null;
  /** The local token, only when this environment may accept one. */
  localToken: string | null;
}

/** Settings that are off, or refused (with the setting named in the log, once per env). */
const blank = (value: string | undefined): boolean => value === undefined || value.trim() === "";

function misconfigured(setting: string, why: string): null {
  log("error", "operator_api_misconfigured", { setting, detail: `${setting} ${why}; the operator API stays off` });
  return null;
}

function parseAccess(env: Bindings): AccessSettings | null {
  if (blank(env.ACCESS_TEAM_DOMAIN) && blank(env.ACCESS_AUD)) return null;
  if (blank(env.ACCESS_TEAM_DOMAIN)) return misconfigured("ACCESS_TEAM_DOMAIN", "is not set but ACCESS_AUD is");
  if (blank(env.ACCESS_AUD)) return misconfigured("ACCESS_AUD", "is not set but ACCESS_TEAM_DOMAIN is");
  const host = env
    .ACCESS_TEAM_DOMAIN!.trim()
    .toLowerCase()
    .replace(/^https:\/\//, "")
    .replace(/\/$/, "");
  if (!TEAM_DOMAIN.test(host)) {
    return misconfigured("ACCESS_TEAM_DOMAIN", "must be <team>.cloudflareaccess.com (your Zero Trust team domain)");
  }
  const issuer = `https://${host}`;
  return { issuer, certsUrl: `${issuer}/cdn-cgi/access/certs`, audience: env.ACCESS_AUD!.trim() };
}

function parseLocalToken(env: Bindings): string | null {
  const allowed = env.OPERATOR_TOKEN_ALLOWED === "true";
  if (blank(env.OPERATOR_TOKEN)) return null;
  if (!allowed) {
    log("warn", "operator_token_ignored", {
      detail: "OPERATOR_TOKEN is set where OPERATOR_TOKEN_ALLOWED is not: only local development accepts it",
    });
    return null;
  }
  if (env.OPERATOR_TOKEN!.length < OPERATOR_TOKEN_MIN_CHARS) {
    return misconfigured("OPERATOR_TOKEN", `must be at least ${OPERATOR_TOKEN_MIN_CHARS} characters`);
  }
  return env.OPERATOR_TOKEN!;
}

/** Reads the operator settings of an env. Never throws: a bad setting turns the API off, not the gateway. */
export function parseOperatorSettings(env: Bindings): OperatorSettings {
  return { access: parseAccess(env), localToken: parseLocalToken(env) };
}

/** Decides who a request to the operator API comes from. */
export interface OperatorGate {
  /** The operator's name for the audit line (an email, `service_token:<client id>`, `local`), or null. */
  identify(request: Request): Promise<string | null>;
}

/** What tests replace: how the team's certificates are fetched. */
export interface OperatorGateDeps {
  /** Fetches the Access certificate URL. Default: the runtime's `fetch`. */
  accessFetch?: typeof fetch;
}

/** The subject Access names: a user's email, or a service token's client id (`common_name`). */
function accessSubject(payload: Record<string, unknown>): string | null {
  if (typeof payload.email === "string" && payload.email !== "") return payload.email;
  if (typeof payload.common_name === "string" && payload.common_name !== "") {
    return `service_token:${payload.common_name}`;
  }
  return null;
}

function denied(reason: string): null {
  log("info", "operator_denied", { reason });
  return null;
}

/** Builds the gate for one env's settings; the certificate set is fetched on first use and cached by jose. */
export function createOperatorGate(settings: OperatorSettings, deps: OperatorGateDeps = {}): OperatorGate {
  let keys: JWTVerifyGetKey | undefined;
  const accessKeys = (access: AccessSettings): JWTVerifyGetKey => {
    const fetcher = deps.accessFetch;
    keys ??= createRemoteJWKSet(
      new URL(access.certsUrl),
      fetcher === undefined ? {} : { [customFetch]: (url, init) => fetcher(url, init) },
    );
    return keys;
  };
  // The token's digest, once computed: a value, not a promise another request would wait on.
  let localDigest: Uint8Array | undefined;

  async function viaAccess(access: AccessSettings, assertion: string): Promise<string | null> {
    try {
      const { payload } = await jwtVerify(assertion, accessKeys(access), {
        issuer: access.issuer,
        audience: access.audience,
        algorithms: ACCESS_ALGORITHMS,
        requiredClaims: ["exp"],
      });
      return accessSubject(payload) ?? denied("no_subject");
    } catch (error) {
      // jose's codes (ERR_JWT_EXPIRED, ERR_JWS_SIGNATURE_VERIFICATION_FAILED, …) say why; a
      // certificate fetch that failed is logged as such so an outage is not read as an attack.
      if (error instanceof errors.JOSEError) return denied(error.code);
      return denied("access_certs_unavailable");
    }
  }

  async function viaLocalToken(token: string, request: Request): Promise<string | null> {
    if (!LOOPBACK_HOSTS.has(new URL(request.url).hostname)) return denied("local_token_not_loopback");
    const match = /^\s*bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
    if (match === null) return denied("no_credential");
    // Digests first: equal lengths, so the compare reveals nothing about the token's length.
    localDigest ??= await digestSecret(token);
    return timingSafeEqual(await digestSecret(match[1]!), localDigest) ? LOCAL_OPERATOR : denied("wrong_token");
  }

  return {
    async identify(request) {
      const assertion = request.headers.get(ACCESS_ASSERTION_HEADER);
      if (settings.access !== null && assertion !== null) return viaAccess(settings.access, assertion);
      if (settings.localToken !== null) return viaLocalToken(settings.localToken, request);
      return denied(settings.access === null ? "operator_api_off" : "no_credential");
    },
  };
}
