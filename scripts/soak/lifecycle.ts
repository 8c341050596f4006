/**
 * The key-management class of the soak test: a Node loop running whole key lifecycles
 * (SPEC §5) against the gateway while wrk saturates it — create → use → roll → old
 * secret refused, new accepted → foreign account gets 404 → get → list → revoke → the
 * very next request refused. Every answer's status and body are checked; one lifecycle
 * starts at most every `intervalMs`.
 */
import { UNAUTHORIZED_BODY } from "../../src/errors.ts";

export interface LifecycleOptions {
  url: string;
  /** A key of the account the lifecycles create keys in. */
  admin: { keyId: string; secret: string };
  /** A key of another account (its GETs of the new keys must answer 404). */
  foreign: { keyId: string; secret: string };
  intervalMs: number;
  /** Two octets; cycle n uses <prefix>.<n/256>.<n%256> so its two failures never trip the limiter. */
  addressPrefix: string;
}

export interface LifecycleResult {
  cycles: number;
  requests: number;
  /** Responses by status. */
  counts: Record<string, number>;
  /** Forwards the gateway answered 200 (each reached the origin once). */
  forwarded: number;
  /** Checks that failed: status or body not as the step expects, or a network error. */
  unexpected: number;
  socketErrors: number;
  /** The first few failures, described without any secret. */
  failures: string[];
}

const KEY_ID = /^nxf_[0-9a-f]{32}$/;
const SECRET = /^nxfs_[0-9A-Za-z]{64}$/;

/** Runs lifecycles until `signal` aborts; resolves with the tallies. */
export async function runLifecycles(options: LifecycleOptions, signal: AbortSignal): Promise<LifecycleResult> {
  const result: LifecycleResult = {
    cycles: 0,
    requests: 0,
    counts: {},
    forwarded: 0,
    unexpected: 0,
    socketErrors: 0,
    failures: [],
  };
  const fail = (what: string) => {
    result.unexpected++;
    if (result.failures.length < 10) result.failures.push(what);
  };

  let address = "";
  const call = async (
    step: string,
    method: string,
    path: string,
    key: { keyId: string; secret: string },
    body?: unknown,
  ): Promise<{ status: number; text: string; json: Record<string, unknown> | null } | null> => {
    const headers: Record<string, string> = {
      authorization: `Bearer ${key.keyId}:${key.secret}`,
      "cf-connecting-ip": address,
      accept: "application/json",
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    result.requests++;
    try {
      const res = await fetch(`${options.url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      result.counts[res.status] = (result.counts[res.status] ?? 0) + 1;
      let json: Record<string, unknown> | null = null;
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {}
      return { status: res.status, text, json };
    } catch (error) {
      result.socketErrors++;
      fail(`${step}: ${(error as Error).name} ${(error as Error).message}`);
      return null;
    }
  };
  const expectStatus = (step: string, got: { status: number; text: string } | null, status: number): boolean => {
    if (got === null) return false;
    if (got.status === status) return true;
    fail(`${step}: status ${got.status}, expected ${status}: ${got.text.slice(0, 200)}`);
    return false;
  };
  const check = (step: string, ok: boolean, why: string): boolean => {
    if (!ok) fail(`${step}: ${why}`);
    return ok;
  };
  const forward = (n: number) => `/v1/soak/cycle/${n}?step=use`;

  while (!signal.aborted) {
    const started = performance.now();
    const n = result.cycles++;
    address = `${options.addressPrefix}.${Math.floor(n / 256) % 256}.${n % 256}`;
    await (async () => {
      const name = `soak cycle ${n}`;
      const created = await call("create", "POST", "/v1/keys", options.admin, { name });
      if (!expectStatus("create", created, 201)) return;
      const made = created!.json ?? {};
      const keyId = String(made.key_id);
      if (
        !check(
          "create",
          made.object === "api_key" && KEY_ID.test(keyId) && SECRET.test(String(made.key_secret)) && made.name === name,
          "body is not a new key object with its secret",
        )
      )
        return;
      const first = { keyId, secret: String(made.key_secret) };

      const used = await call("use", "GET", forward(n), first);
      if (expectStatus("use", used, 200) && check("use", used!.text === '{"ok":true}', "body is not the origin's"))
        result.forwarded++;

      const rolled = await call("roll", "POST", `/v1/keys/${keyId}/roll`, first, { grace_period_seconds: 0 });
      if (!expectStatus("roll", rolled, 200)) return;
      const second = { keyId, secret: String(rolled!.json?.key_secret) };
      if (
        !check(
          "roll",
          rolled!.json?.key_id === keyId && SECRET.test(second.secret) && second.secret !== first.secret,
          "body is not the same key with a new secret",
        )
      )
        return;

      const old = await call("old secret", "GET", forward(n), first);
      if (expectStatus("old secret", old, 401))
        check("old secret", old!.text === UNAUTHORIZED_BODY, "401 body differs");
      const fresh = await call("new secret", "GET", forward(n), second);
      if (expectStatus("new secret", fresh, 200) && check("new secret", fresh!.text === '{"ok":true}', "body differs"))
        result.forwarded++;

      const foreign = await call("foreign get", "GET", `/v1/keys/${keyId}`, options.foreign);
      if (expectStatus("foreign get", foreign, 404))
        check("foreign get", foreign!.text.includes('"code":"key_not_found"'), "404 is not key_not_found");

      const got = await call("get", "GET", `/v1/keys/${keyId}`, options.admin);
      if (expectStatus("get", got, 200))
        check("get", got!.json?.key_id === keyId && got!.json?.revoked_at === null, "not the live key");

      const listed = await call("list", "GET", "/v1/keys?limit=5", options.admin);
      if (expectStatus("list", listed, 200)) {
        const data = listed!.json?.data as Array<{ key_id?: string }> | undefined;
        check("list", Array.isArray(data) && data[0]?.key_id === keyId, "newest key is not first");
      }

      const revoked = await call("revoke", "DELETE", `/v1/keys/${keyId}`, options.admin);
      if (expectStatus("revoke", revoked, 200))
        check("revoke", typeof revoked!.json?.revoked_at === "string", "revoked_at is not set");

      // SPEC §5: in the location that revoked it, a key fails on the very next request.
      const after = await call("after revoke", "GET", forward(n), second);
      if (expectStatus("after revoke", after, 401))
        check("after revoke", after!.text === UNAUTHORIZED_BODY, "401 body differs");
    })();
    const rest = options.intervalMs - (performance.now() - started);
    if (rest > 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, rest);
        signal.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
  }
  return result;
}
