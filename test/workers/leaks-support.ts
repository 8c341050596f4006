/**
 * Shared setup for the leak-report tests: a test ECDSA P-256 key pair that stands in for
 * GitHub's secret-scanning signer (its public key served by a local keys document), DER
 * encoding of the signatures it makes, and an outbound fetch that serves that document and
 * records every webhook delivery. Passed to the gateway as `outboundFetch` (ServiceDeps):
 * nothing is patched. Not a test file.
 */
import { env } from "cloudflare:test";
import type { Gateway, Sent, TestEnv } from "./harness.ts";

export const KEYS_URL = "https://github-keys.test/meta/public_keys/secret_scanning";
export const WEBHOOK_URL = "https://hooks.nixflex.test/leaks";
export const GITHUB_PATH = "/v1/secret-scanning/github";
export const LEAK_PATH = "/v1/leaked-keys";

/** The env every leak test uses: the local keys document and a webhook configured. */
export const leakEnv: TestEnv = { ...env, GITHUB_SECRET_SCANNING_KEYS_URL: KEYS_URL, LEAK_WEBHOOK_URL: WEBHOOK_URL };

function bytesToBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** One DER INTEGER of an unsigned big-endian value (minimal, with a sign-guarding zero). */
function derInteger(value: Uint8Array): number[] {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  const body = [...value.subarray(start)];
  if (body[0]! & 0x80) body.unshift(0);
  return [0x02, body.length, ...body];
}

/** The DER form of a raw `r || s` signature, as GitHub sends it. */
export function rawToDer(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  const content = [...derInteger(raw.subarray(0, half)), ...derInteger(raw.subarray(half))];
  return new Uint8Array([0x30, content.length, ...content]);
}

/** A stand-in for GitHub's signer: a P-256 key pair and the keys-document entry of its public key. */
export interface Signer {
  identifier: string;
  pem: string;
  /** The base64 DER signature of `body`, as in `Github-Public-Key-Signature`. */
  sign(body: string): Promise<string>;
}

export async function newSigner(identifier = crypto.randomUUID().replaceAll("-", "")): Promise<Signer> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer);
  const lines = bytesToBase64(spki)
    .match(/.{1,64}/g)!
    .join("\n");
  return {
    identifier,
    pem: `-----BEGIN PUBLIC KEY-----\n${lines}\n-----END PUBLIC KEY-----\n`,
    async sign(body) {
      const raw = new Uint8Array(
        await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(body)),
      );
      return bytesToBase64(rawToDer(raw));
    },
  };
}

/** A webhook delivery as the receiver saw it. */
export interface Delivery {
  headers: Headers;
  body: string;
}

/** The outbound side: the keys document (its signers can change) and a recording webhook. */
export function outbound(signers: Signer[], webhookAnswers: number[] = []) {
  const state = {
    signers,
    keyFetches: 0,
    deliveries: [] as Delivery[],
    webhookAnswers: [...webhookAnswers],
  };
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    if (request.url === KEYS_URL) {
      state.keyFetches++;
      const doc = {
        public_keys: state.signers.map((s, i) => ({ key_identifier: s.identifier, key: s.pem, is_current: i === 0 })),
      };
      return Response.json(doc);
    }
    if (request.url === WEBHOOK_URL) {
      state.deliveries.push({ headers: request.headers, body: await request.text() });
      return new Response(null, { status: state.webhookAnswers.shift() ?? 204 });
    }
    return new Response("not here", { status: 404 });
  }) as typeof fetch;
  return { fetch: fetcher, state };
}

/** A GitHub report body: one match per token. */
export function reportBody(tokens: string[], url = "https://github.com/octo/repo/blob/abc/.env"): string {
  return JSON.stringify(tokens.map((token) => ({ token, type: "nixflex_key_secret", url, source: "content" })));
}

/** SHA-256 hex of a token, as `token_hash` carries it. */
export async function tokenHash(token: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every key and value of the local KV, to show a refused report changed nothing. */
export async function kvSnapshot(): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  let cursor: string | undefined;
  do {
    const page = await env.API_KEYS.list({ cursor });
    const names = page.keys.map((entry) => entry.name);
    for (let i = 0; i < names.length; i += 100) {
      for (const [name, value] of await env.API_KEYS.get(names.slice(i, i + 100), "text")) out.set(name, value);
    }
    cursor = page.list_complete ? undefined : (page as { cursor: string }).cursor;
  } while (cursor !== undefined);
  return out;
}

/** POSTs `body` to the GitHub path signed by `signer`; `headers` override the signature headers. */
export async function sendReport(
  g: Gateway,
  signer: Signer,
  body: string,
  headers: Record<string, string> = {},
): Promise<Sent> {
  return g.send(
    g.request(GITHUB_PATH, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        "github-public-key-identifier": signer.identifier,
        "github-public-key-signature": headers["github-public-key-signature"] ?? (await signer.sign(body)),
        ...headers,
      },
    }),
  );
}

/** Watches the console from now on: the lines written since, and the audit lines of one key. */
export function watchLog() {
  const all = (globalThis as { __nixflexLogLines?: string[] }).__nixflexLogLines!;
  const before = all.length;
  const lines = () => all.slice(before);
  const events = () =>
    lines().flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  return {
    lines,
    events,
    audits: (keyId: string) => events().filter((e) => e.event === "audit" && e.target_key_id === keyId),
  };
}
