/**
 * `POST /v1/secret-scanning/github` (SPEC §10): GitHub's signed partner reports revoke every
 * live key they name, through the one write path, and are answered in GitHub's feedback
 * format without echoing a secret. A test key pair stands in for GitHub's signer; its public
 * key is served by a local keys document through the injected outbound fetch.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { generateSecret } from "../../src/keys/format.ts";
import { kvKeys } from "../../src/keys/record.ts";
import { MAX_KILLS_PER_REPORT } from "../../src/leaks/report.ts";
import { createKey, gateway, rememberSensitive, STANDARD_401_BODY, type TestKey } from "./harness.ts";
import {
  GITHUB_PATH,
  kvSnapshot,
  leakEnv,
  newSigner,
  outbound,
  reportBody,
  sendReport,
  type Signer,
  tokenHash,
  watchLog,
} from "./leaks-support.ts";

let signer: Signer;
beforeAll(async () => {
  signer = await newSigner();
});

/** A gateway whose outbound fetch serves `signers` as GitHub's keys document. */
function setup(signers: Signer[] = [signer]) {
  const out = outbound(signers);
  const g = gateway({ env: leakEnv, outboundFetch: out.fetch });
  const report = (body: string, headers: Record<string, string> = {}) => sendReport(g, signer, body, headers);
  const call = (key: TestKey) => g.send(g.request("/v1/agents", { authorization: key.authorization }));
  return { g, out, report, call };
}

async function revokedAt(keyId: string): Promise<string | null> {
  const record = await env.API_KEYS.get<{ revoked_at: string | null }>(kvKeys.record(keyId), "json");
  return record?.revoked_at ?? null;
}

describe("a valid report of a live secret", () => {
  it("revokes the key: the next request gets the standard 401, and the answer is true_positive by token_hash", async () => {
    const key = await createKey();
    const { report, call, out } = setup();
    expect((await call(key)).res.status).toBe(200);

    const started = performance.now();
    const sent = await report(reportBody([key.secret]));
    const answered = performance.now();
    const after = await call(key);
    console.log(
      `leak report → key refused: answered in ${(answered - started).toFixed(1)} ms, refused ${(performance.now() - started).toFixed(1)} ms after the report was sent`,
    );

    expect(sent.res.status).toBe(200);
    expect(sent.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(JSON.parse(sent.body)).toEqual([
      { token_hash: await tokenHash(key.secret), token_type: "nixflex_key_secret", label: "true_positive" },
    ]);
    expect(sent.body).not.toContain(key.secret);
    expect(after.res.status).toBe(401);
    expect(after.body).toBe(STANDARD_401_BODY);
    expect(await revokedAt(key.keyId)).not.toBeNull();
    expect(out.state.keyFetches).toBe(1);
  });

  it("is refused by a second isolate too once its cached record lapses, because KV holds the revoke", async () => {
    const key = await createKey();
    const other = gateway({ env: leakEnv });
    const asOther = () => other.send(other.request("/v1/agents", { authorization: key.authorization }));
    expect((await asOther()).res.status).toBe(200);
    const { report } = setup();
    expect((await report(reportBody([key.secret]))).res.status).toBe(200);
    // A fresh isolate (no cached record) reads KV and refuses at once.
    const fresh = gateway({ env: leakEnv });
    const sent = await fresh.send(fresh.request("/v1/agents", { authorization: key.authorization }));
    expect(sent.res.status).toBe(401);
    expect(sent.body).toBe(STANDARD_401_BODY);
  });

  it("kills the pair KEY_ID:KEY_SECRET as well as the secret alone", async () => {
    const key = await createKey();
    const { report, call } = setup();
    const sent = await report(reportBody([`${key.keyId}:${key.secret}`]));
    expect(JSON.parse(sent.body)[0].label).toBe("true_positive");
    expect((await call(key)).res.status).toBe(401);
  });

  it("writes the audit line with the source URL and GitHub's source, never the secret", async () => {
    const key = await createKey();
    const { report } = setup();
    const log = watchLog();
    const url = "https://github.com/octo/leaky/blob/0123abc/config/.env";
    await report(reportBody([key.secret], url));
    const audit = log.audits(key.keyId);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      action: "revoke",
      account_id: key.accountId,
      actor: "leak_report:github_secret_scanning:content",
      leak_url: url,
    });
    expect(log.lines().join("\n")).not.toContain(key.secret);
  });

  it("revokes once when the same report arrives twice; the second answer is false_positive (nothing live)", async () => {
    const key = await createKey();
    const { report } = setup();
    const body = reportBody([key.secret, key.secret]);
    const first = await report(body);
    expect(JSON.parse(first.body).map((f: { label: string }) => f.label)).toEqual(["true_positive", "true_positive"]);
    const revoked = await revokedAt(key.keyId);
    const log = watchLog();
    const second = await report(body);
    expect(JSON.parse(second.body).map((f: { label: string }) => f.label)).toEqual([
      "false_positive",
      "false_positive",
    ]);
    expect(await revokedAt(key.keyId)).toBe(revoked);
    expect(log.events().some((e) => e.event === "audit")).toBe(false);
  });
});

describe("tokens that are not a live secret get false_positive and change nothing", () => {
  it("labels a revoked key's secret, an unknown valid secret, a bad checksum and a mismatched pair false_positive", async () => {
    const revoked = await createKey();
    const live = await createKey();
    const { g, report } = setup();
    await g.send(g.request(`/v1/keys/${revoked.keyId}`, { method: "DELETE", authorization: revoked.authorization }));
    const unknown = generateSecret();
    const unmatched = generateSecret();
    const flipped = live.secret.endsWith("0") ? "1" : "0";
    const badChecksum = `${live.secret.slice(0, -1)}${flipped}`;
    for (const secret of [unknown, unmatched, badChecksum]) rememberSensitive(secret);
    const tokens = [revoked.secret, unknown, badChecksum, `${live.keyId}:${unmatched}`, "not a token", ""];
    const before = await kvSnapshot();
    const sent = await report(reportBody(tokens));
    expect(sent.res.status).toBe(200);
    const expected = await Promise.all(
      tokens.map(async (t) => ({
        token_hash: await tokenHash(t),
        token_type: "nixflex_key_secret",
        label: "false_positive",
      })),
    );
    expect(JSON.parse(sent.body)).toEqual(expected);
    expect(await kvSnapshot()).toEqual(before);
    expect((await g.send(g.request("/v1/agents", { authorization: live.authorization }))).res.status).toBe(200);
  });
});

describe("refused reports leave KV untouched", () => {
  const refusals: [string, (s: Signer, body: string) => Promise<Record<string, string>>, number, string][] = [
    [
      "no signature headers",
      async () => ({ "github-public-key-signature": "", "github-public-key-identifier": "" }),
      401,
      "invalid_signature",
    ],
    [
      "a signature of another body",
      async (s) => ({ "github-public-key-signature": await s.sign("[]") }),
      401,
      "invalid_signature",
    ],
    [
      "a signature that is not base64",
      async () => ({ "github-public-key-signature": "!!!not-base64!!!" }),
      401,
      "invalid_signature",
    ],
    [
      "a signature that is not DER",
      async () => ({ "github-public-key-signature": btoa("x".repeat(70)) }),
      401,
      "invalid_signature",
    ],
    [
      "an unknown key identifier",
      async () => ({ "github-public-key-identifier": "f".repeat(64) }),
      401,
      "invalid_signature",
    ],
    [
      "a key GitHub does not publish signing it",
      async (_s, body) => ({ "github-public-key-signature": await (await newSigner()).sign(body) }),
      401,
      "invalid_signature",
    ],
  ];
  for (const [what, headers, status, code] of refusals) {
    it(`refuses ${what} with ${status} ${code}`, async () => {
      const key = await createKey();
      const { report, call } = setup();
      const body = reportBody([key.secret]);
      const before = await kvSnapshot();
      const sent = await report(body, await headers(signer, body));
      expect(sent.res.status).toBe(status);
      expect(JSON.parse(sent.body).error.code).toBe(code);
      expect(JSON.parse(sent.body).error.type).toBe("authentication_error");
      expect(await kvSnapshot()).toEqual(before);
      expect((await call(key)).res.status).toBe(200);
    });
  }

  it("refuses a replayed body with a tampered token (the signature no longer matches)", async () => {
    const victim = await createKey();
    const decoy = await createKey();
    const { report, call } = setup();
    const original = reportBody([decoy.secret]);
    const signature = await signer.sign(original);
    const tampered = original.replace(decoy.secret, victim.secret);
    const before = await kvSnapshot();
    const sent = await report(tampered, { "github-public-key-signature": signature });
    expect(sent.res.status).toBe(401);
    expect(await kvSnapshot()).toEqual(before);
    expect((await call(victim)).res.status).toBe(200);
    expect((await call(decoy)).res.status).toBe(200);
  });

  it("refuses a 10 MB body with 413 before reading it whole, KV untouched", async () => {
    const { report } = setup();
    const before = await kvSnapshot();
    const big = "x".repeat(10 * 1024 * 1024);
    const sent = await report(big, { "github-public-key-signature": "MEQCIA==" });
    expect(sent.res.status).toBe(413);
    expect(JSON.parse(sent.body).error.code).toBe("payload_too_large");
    expect(await kvSnapshot()).toEqual(before);
  });

  it("refuses a 10 MB streamed body without a Content-Length with 413", async () => {
    const { g } = setup();
    const chunk = new Uint8Array(1024 * 1024);
    let sentChunks = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sentChunks++ < 10) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const sent = await g.send(
      g.request(GITHUB_PATH, {
        method: "POST",
        body: stream,
        headers: { "github-public-key-identifier": signer.identifier, "github-public-key-signature": "MEQCIA==" },
      }),
    );
    expect(sent.res.status).toBe(413);
  });

  it("answers 503 signature_keys_unavailable when the keys document cannot be fetched, KV untouched", async () => {
    const key = await createKey();
    const g = gateway({
      env: leakEnv,
      outboundFetch: (async () => new Response("down", { status: 502 })) as typeof fetch,
    });
    const body = reportBody([key.secret]);
    const before = await kvSnapshot();
    const sent = await sendReport(g, signer, body);
    expect(sent.res.status).toBe(503);
    expect(JSON.parse(sent.body).error.code).toBe("signature_keys_unavailable");
    expect(await kvSnapshot()).toEqual(before);
  });

  it("answers 503 service_unavailable when KV fails during the lookup, and revokes nothing", async () => {
    const key = await createKey();
    const broken = new Proxy(env.API_KEYS, {
      get(target, prop) {
        if (prop === "get") return async () => Promise.reject(new Error("KV down"));
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const out = outbound([signer]);
    const g = gateway({ env: { ...leakEnv, API_KEYS: broken }, outboundFetch: out.fetch });
    const sent = await sendReport(g, signer, reportBody([key.secret]));
    expect(sent.res.status).toBe(503);
    expect(JSON.parse(sent.body).error.code).toBe("service_unavailable");
    expect(await revokedAt(key.keyId)).toBeNull();
    expect(out.state.deliveries).toHaveLength(0);
  });

  it("redacts a secret-shaped string in the reported URL before it reaches the audit line or the event", async () => {
    const key = await createKey();
    const { report, out } = setup();
    const log = watchLog();
    await report(reportBody([key.secret], `https://paste.example/raw?k=${key.secret}`));
    expect(log.audits(key.keyId)[0]!.leak_url).toBe("https://paste.example/raw?k=[redacted]");
    expect(JSON.parse(out.state.deliveries[0]!.body).keys[0].url).toBe("https://paste.example/raw?k=[redacted]");
  });

  it("answers 400 to a signed body that is not an array of matches, KV untouched", async () => {
    const { report } = setup();
    const before = await kvSnapshot();
    for (const body of ['{"token":"x"}', "[1]", '[{"token":5}]', "not json"]) {
      const sent = await report(body);
      expect(sent.res.status).toBe(400);
      expect(JSON.parse(sent.body).error.type).toBe("invalid_request_error");
    }
    expect(await kvSnapshot()).toEqual(before);
  });

  it("answers 405 with Allow: POST to another method", async () => {
    const { g } = setup();
    const sent = await g.send(g.request(GITHUB_PATH));
    expect(sent.res.status).toBe(405);
    expect(sent.res.headers.get("allow")).toBe("POST");
  });
});

describe("GitHub's keys document", () => {
  it("is fetched once and cached; an unknown identifier refetches at most once per interval", async () => {
    const { report, out } = setup();
    const key = await createKey();
    await report(reportBody([key.secret]));
    await report(reportBody(["nothing"]));
    expect(out.state.keyFetches).toBe(1);
    const body = reportBody(["nothing"]);
    const unknown = {
      "github-public-key-identifier": "unknown-id",
      "github-public-key-signature": await signer.sign(body),
    };
    expect((await report(body, unknown)).res.status).toBe(401);
    expect((await report(body, unknown)).res.status).toBe(401);
    // The first unknown identifier is within the interval of the first fetch: no refetch yet.
    expect(out.state.keyFetches).toBe(1);
  });

  it("is fetched once when two reports reach a cold isolate at the same time", async () => {
    const { g, out } = setup();
    const answers = await Promise.all([sendReport(g, signer, "[]"), sendReport(g, signer, "[]")]);
    expect(answers.map((a) => a.res.status)).toEqual([200, 200]);
    expect(out.state.keyFetches).toBe(1);
  });

  it("finds a key GitHub added after the first fetch by fetching again", async () => {
    let clock = Date.now();
    const newer = await newSigner();
    const out = outbound([signer]);
    const g = gateway({ env: leakEnv, outboundFetch: out.fetch, now: () => clock });
    const send = (s: Signer, body: string) => sendReport(g, s, body);
    expect((await send(signer, "[]")).res.status).toBe(200);
    out.state.signers = [newer, signer];
    clock += 10_000;
    expect((await send(newer, "[]")).res.status).toBe(200);
    expect(out.state.keyFetches).toBe(2);
  });
});

describe("a 1,000-token report", () => {
  it("is handled within GitHub's timeout with real local KV: 100 live secrets revoked, 900 others false_positive", async () => {
    const { report, call } = setup();
    const live = await Promise.all(Array.from({ length: 100 }, () => createKey()));
    // Unknown secrets with valid checksums (each costs an index lookup), unknown pairs, junk.
    const others = Array.from({ length: 900 }, (_, i) => {
      const secret = generateSecret();
      rememberSensitive(secret);
      return i % 3 === 0 ? secret : i % 3 === 1 ? `nxf_${i.toString(16).padStart(32, "0")}:${secret}` : `junk-${i}`;
    });
    const tokens = [...live.map((k) => k.secret), ...others];
    const body = reportBody(tokens);
    const started = performance.now();
    const sent = await report(body);
    const ms = performance.now() - started;
    console.log(
      `1,000-token report (100 live): answered ${sent.res.status} in ${ms.toFixed(0)} ms, ${body.length} bytes`,
    );
    expect(sent.res.status).toBe(200);
    const labels = JSON.parse(sent.body).map((f: { label: string }) => f.label);
    expect(labels).toEqual([...Array(100).fill("true_positive"), ...Array(900).fill("false_positive")]);
    expect(ms).toBeLessThan(10_000);
    for (const key of [live[0]!, live[99]!]) expect((await call(key)).res.status).toBe(401);
  }, 120_000);
});

describe("a report with more working secrets than one invocation may revoke", () => {
  it("revokes the first MAX_KILLS_PER_REPORT, answers 503 with Retry-After, and the retry revokes the rest", async () => {
    const { report, call } = setup();
    const keys = await Promise.all(Array.from({ length: MAX_KILLS_PER_REPORT + 1 }, () => createKey()));
    const body = reportBody(keys.map((k) => k.secret));
    const first = await report(body);
    expect(first.res.status).toBe(503);
    expect(first.res.headers.get("retry-after")).toBe("1");
    expect((await call(keys[0]!)).res.status).toBe(401);
    expect((await call(keys[MAX_KILLS_PER_REPORT]!)).res.status).toBe(200);
    const retry = await report(body);
    expect(retry.res.status).toBe(200);
    const labels = JSON.parse(retry.body).map((f: { label: string }) => f.label);
    expect(labels).toEqual([...Array(MAX_KILLS_PER_REPORT).fill("false_positive"), "true_positive"]);
    expect((await call(keys[MAX_KILLS_PER_REPORT]!)).res.status).toBe(401);
  }, 120_000);
});
