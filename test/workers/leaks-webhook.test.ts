/**
 * The `key.leaked` notification (SPEC §10): one signed event per report that killed a secret,
 * delivered after the answer with bounded retries. The receiver verifies the
 * `X-Nixflex-Signature` JWT with the gateway's public JWKS, as docs/engine-integration.md says.
 */
import { env } from "cloudflare:test";
import { createLocalJWKSet, jwtVerify, base64url } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { createKey, gateway, JWKS_URL } from "./harness.ts";
import {
  type Delivery,
  leakEnv,
  LEAK_PATH,
  newSigner,
  outbound,
  reportBody,
  sendReport,
  type Signer,
  watchLog,
} from "./leaks-support.ts";

let signer: Signer;
beforeAll(async () => {
  signer = await newSigner();
});

function setup(webhookAnswers: number[] = [], bindings = leakEnv) {
  const out = outbound([signer], webhookAnswers);
  const g = gateway({ env: bindings, outboundFetch: out.fetch });
  return { g, out };
}

/** Verifies a delivery as a receiver would: signature against the JWKS, typ, iss, aud, body hash. */
async function verifyDelivery(g: ReturnType<typeof gateway>, delivery: Delivery) {
  const jwks = JSON.parse((await g.send(new Request(JWKS_URL))).body);
  const token = delivery.headers.get("x-nixflex-signature")!;
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), {
    issuer: "https://api.nixflex.com",
    audience: "nixflex-webhook",
    typ: "nixflex-webhook+jwt",
    maxTokenAge: "5m",
  });
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(delivery.body)));
  expect(payload.body_sha256).toBe(base64url.encode(digest));
  return { payload, protectedHeader };
}

describe("key.leaked", () => {
  it("is delivered once per report, signed with the identity keys, naming the keys and where they leaked, never a secret", async () => {
    const a = await createKey();
    const b = await createKey();
    const { g, out } = setup();
    const url = "https://github.com/octo/leaky/blob/abc/.env";
    await sendReport(g, signer, reportBody([a.secret, `${b.keyId}:${b.secret}`, "junk"], url));
    expect(out.state.deliveries).toHaveLength(1);
    const delivery = out.state.deliveries[0]!;
    expect(delivery.headers.get("content-type")).toBe("application/json");
    const { payload, protectedHeader } = await verifyDelivery(g, delivery);
    expect(protectedHeader.kid).toBe(JSON.parse(env.IDENTITY_SIGNING_KEYS).keys[0].kid);
    const event = JSON.parse(delivery.body);
    expect(payload.jti).toBe(event.id);
    expect(event).toMatchObject({ type: "key.leaked", keys: expect.any(Array) });
    expect(event.keys).toEqual(
      expect.arrayContaining(
        [a, b].map((k) =>
          expect.objectContaining({
            account_id: k.accountId,
            key_id: k.keyId,
            action: "revoked",
            reported_by: "github_secret_scanning",
            source: "content",
            url,
          }),
        ),
      ),
    );
    expect(event.keys).toHaveLength(2);
    for (const k of [a, b]) expect(delivery.body).not.toContain(k.secret);
  });

  it("a tampered body no longer matches the token's body_sha256", async () => {
    const key = await createKey();
    const { g, out } = setup();
    await sendReport(g, signer, reportBody([key.secret]));
    const delivery = out.state.deliveries[0]!;
    const tampered = { ...delivery, body: delivery.body.replace(key.accountId, "acct_attacker") };
    await expect(verifyDelivery(g, tampered)).rejects.toThrow();
  });

  it("is not sent when nothing was live, nor when no webhook is configured", async () => {
    const key = await createKey();
    const { g, out } = setup();
    await sendReport(g, signer, reportBody(["junk"]));
    expect(out.state.deliveries).toHaveLength(0);
    const { LEAK_WEBHOOK_URL: _unset, ...noHook } = leakEnv;
    const bare = setup([], noHook);
    await sendReport(bare.g, signer, reportBody([key.secret]));
    expect(bare.out.state.deliveries).toHaveLength(0);
  });

  it("is sent for the public leak report too", async () => {
    const key = await createKey();
    const { g, out } = setup();
    await g.send(
      g.request(LEAK_PATH, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key_secret: key.secret }),
      }),
    );
    expect(out.state.deliveries).toHaveLength(1);
    expect(JSON.parse(out.state.deliveries[0]!.body).keys[0]).toMatchObject({
      key_id: key.keyId,
      reported_by: "leak_report",
      source: null,
      url: null,
    });
  });

  it("is retried after 5xx and 429 until delivered, with the same body and token", async () => {
    const key = await createKey();
    const { g, out } = setup([503, 429, 204]);
    const log = watchLog();
    await sendReport(g, signer, reportBody([key.secret]));
    expect(out.state.deliveries).toHaveLength(3);
    const [first, ...rest] = out.state.deliveries;
    for (const d of rest) {
      expect(d.body).toBe(first!.body);
      expect(d.headers.get("x-nixflex-signature")).toBe(first!.headers.get("x-nixflex-signature"));
    }
    expect(log.events()).toContainEqual(expect.objectContaining({ event: "leak_webhook_delivered", attempts: 3 }));
  });

  it("gives up at once on a 4xx and after four attempts on 5xx, logging the failure with the event id", async () => {
    const k1 = await createKey();
    const { g, out } = setup([400]);
    const log = watchLog();
    await sendReport(g, signer, reportBody([k1.secret]));
    expect(out.state.deliveries).toHaveLength(1);
    expect(log.events()).toContainEqual(
      expect.objectContaining({ event: "leak_webhook_failed", attempts: 1, status: 400 }),
    );

    const k2 = await createKey();
    const failing = setup([500, 500, 500, 500, 500]);
    await sendReport(failing.g, signer, reportBody([k2.secret]));
    expect(failing.out.state.deliveries).toHaveLength(4);
    expect(log.events()).toContainEqual(
      expect.objectContaining({ event: "leak_webhook_failed", attempts: 4, status: 500, key_ids: k2.keyId }),
    );
  }, 30_000);
});
