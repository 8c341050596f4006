/**
 * Fuzzing the front door (issue 5, item 1; SPEC §3, §4). fast-check generates whole
 * requests — methods, paths, queries, bodies, arbitrary headers (spoofed gateway headers
 * included) and, above all, Authorization values: wrong schemes and separators,
 * whitespace, control characters the Headers API accepts, unicode look-alikes, huge
 * values, near-miss keys, valid key_ids with near-miss secrets, revoked keys, and
 * sometimes a genuinely valid key. Property: the answer is the byte-exact standard 401
 * with the engine never called, or — only for a genuinely valid key — a forward whose
 * identity token verifies with the right sub/key_id/htm/htu (or, for /v1/keys, an answer
 * at the edge). Never a 5xx, never an exception.
 *
 * Run count: FUZZ_RUNS (vitest.config.ts passes it through as a binding). The default
 * keeps CI fast; the full mode is
 *
 *   FUZZ_RUNS=100000 npx vitest run --project workers --silent=true test/workers/fuzz.test.ts
 *
 * (--silent keeps 100,000 access-log lines off the terminal; the log-hygiene capture
 * still checks them). On failure fast-check prints `{ seed, path }` in the error message;
 * paste both into REPLAY below to re-run exactly that counterexample.
 */
import { env } from "cloudflare:test";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { generateKeyId, generateSecret } from "../../src/keys/format.ts";
import type { IdentityVerifier } from "../../src/verify/index.ts";
import {
  adminStore,
  createKey,
  expectStandard401,
  gateway,
  jwtParts,
  PUBLIC_ORIGIN,
  type Gateway,
  type TestKey,
} from "./harness.ts";

const DEFAULT_RUNS = 2000;
const RUNS = Number.parseInt(env.FUZZ_RUNS, 10) > 0 ? Number.parseInt(env.FUZZ_RUNS, 10) : DEFAULT_RUNS;
/** To replay a failure: `{ seed: <seed>, path: "<path>" }` from the failure message. */
const REPLAY: { seed: number; path: string } | undefined = undefined;

const PUBLIC_PATHS = new Set(["/healthz", "/.well-known/jwks.json"]);
/** A public path, with the one trailing slash the gateway's router tolerates. */
const isPublic = (path: string) => PUBLIC_PATHS.has(path) || PUBLIC_PATHS.has(path.replace(/\/$/, ""));

interface Keys {
  valid: TestKey[];
  revoked: TestKey;
}

/** Headers reject NUL, CR and LF and trim surrounding whitespace; everything else goes. */
const headerSafe = (value: string) => value.replace(/[\0\r\n]/g, "?");

function flipChar(text: string, at: number, alphabet: string): string {
  const i = ((at % text.length) + text.length) % text.length;
  const current = alphabet.indexOf(text[i]!);
  const replacement = alphabet[(current + 1 + (at % (alphabet.length - 1))) % alphabet.length]!;
  return (
    text.slice(0, i) +
    (replacement === text[i] ? alphabet[(current + 1) % alphabet.length] : replacement) +
    text.slice(i + 1)
  );
}

/** The secret with the case of its first random letter swapped (checksum no longer matches). */
function swapCase(secret: string): string {
  const i = secret.slice(5).search(/[A-Za-z]/) + 5;
  const c = secret[i]!;
  return secret.slice(0, i) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + secret.slice(i + 1);
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const LOOKALIKES = [
  "\u0412",
  "\u0435",
  "\u0430",
  "\u0440",
  "\uff22",
  "\u00a0",
  "\u200b",
  "\uff1a",
  "\u0660",
  "\u2010",
  "\u0131",
];

type AuthCase = { value: string | undefined; validKey: TestKey | null };

/** Authorization values, hostile and (sometimes) genuine. */
function authorizations(keys: Keys): fc.Arbitrary<AuthCase> {
  const key = fc.constantFrom(...keys.valid);
  const invalid = (value: fc.Arbitrary<string | undefined>) =>
    value.map((v) => ({ value: v, validKey: null }) as AuthCase);
  const scheme = fc
    .array(fc.boolean(), { minLength: 6, maxLength: 6 })
    .map((upper) => [..."bearer"].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(""));
  const ows = fc.constantFrom("", " ", "\t", "  \t ");
  const spaces = fc.integer({ min: 1, max: 4 }).map((n) => " ".repeat(n));
  const text = fc.string({ unit: fc.integer({ min: 1, max: 127 }).map((c) => String.fromCharCode(c)), maxLength: 120 });

  return fc
    .oneof(
      // A genuinely valid key, in any of the accepted spellings.
      {
        weight: 12,
        arbitrary: fc
          .tuple(key, scheme, ows, spaces, ows)
          .map(([k, s, a, sp, b]) => ({ value: `${a}${s}${sp}${k.keyId}:${k.secret}${b}`, validKey: k })),
      },
      { weight: 2, arbitrary: invalid(fc.constant(undefined)) },
      { weight: 1, arbitrary: invalid(fc.constantFrom("", " ", "\t")) },
      // Revoked: well-formed, correct secret, still a 401.
      { weight: 2, arbitrary: invalid(fc.constant(keys.revoked.authorization)) },
      // Wrong scheme or separator around a real pair.
      {
        weight: 6,
        arbitrary: invalid(
          fc
            .tuple(
              key,
              fc.constantFrom(
                "Basic ",
                "Token ",
                "Bearerx ",
                "Bearer",
                "Bearer\t",
                "Bearer\u000b",
                "Bear ",
                "Bearer: ",
                "Bearer=",
                "JWT ",
                "",
              ),
            )
            .map(([k, s]) => `${s}${k.keyId}:${k.secret}`),
        ),
      },
      {
        weight: 6,
        arbitrary: invalid(
          fc
            .tuple(key, fc.constantFrom(" ", "::", ";", "=", ",", "\t", ": ", " :", "%3A", ""))
            .map(([k, sep]) => `Bearer ${k.keyId}${sep}${k.secret}`),
        ),
      },
      // Near misses on the key_id.
      {
        weight: 6,
        arbitrary: invalid(
          fc.tuple(key, fc.nat(), fc.constantFrom("upper", "flip", "short", "long", "prefix")).map(([k, at, how]) => {
            const hex = k.keyId.slice(4);
            const id =
              how === "upper"
                ? `nxf_${hex.toUpperCase() === hex ? `A${hex.slice(1)}` : hex.toUpperCase()}`
                : how === "flip"
                  ? `nxf_${flipChar(hex, at, "0123456789abcdef")}`
                  : how === "short"
                    ? k.keyId.slice(0, -1)
                    : how === "long"
                      ? `${k.keyId}0`
                      : `NXF_${hex}`;
            return `Bearer ${id}:${k.secret}`;
          }),
        ),
      },
      // A valid key_id with a near-miss secret.
      {
        weight: 10,
        arbitrary: invalid(
          fc
            .tuple(key, fc.nat(), fc.constantFrom("flip", "truncate", "extend", "other", "fresh", "case"))
            .map(([k, at, how]) => {
              const s = k.secret;
              const secret =
                how === "flip"
                  ? `nxfs_${flipChar(s.slice(5), at, BASE62)}`
                  : how === "truncate"
                    ? s.slice(0, 5 + (at % 64))
                    : how === "extend"
                      ? `${s}${BASE62[at % 62]}`
                      : how === "other"
                        ? keys.valid.find((o) => o !== k)!.secret
                        : how === "fresh"
                          ? generateSecret()
                          : swapCase(s);
              return `Bearer ${k.keyId}:${secret}`;
            }),
        ),
      },
      // Unknown but well-formed pairs.
      { weight: 3, arbitrary: invalid(fc.constant(null).map(() => `Bearer ${generateKeyId()}:${generateSecret()}`)) },
      // Comma-joined duplicates (two Authorization headers arrive joined).
      {
        weight: 4,
        arbitrary: invalid(
          fc
            .tuple(key, key, fc.constantFrom(", ", ",", " , "))
            .map(([a, b, sep]) => `Bearer ${a.keyId}:${a.secret}${sep}Bearer ${b.keyId}:${b.secret}`),
        ),
      },
      // Control characters (those Headers accept) spliced into a real pair.
      {
        weight: 5,
        arbitrary: invalid(
          fc
            .tuple(
              key,
              fc.nat(),
              fc.integer({ min: 1, max: 31 }).filter((c) => c !== 10 && c !== 13 && c !== 9),
            )
            .map(([k, at, code]) => {
              const pair = `${k.keyId}:${k.secret}`;
              const i = at % (pair.length + 1);
              return `Bearer ${pair.slice(0, i)}${String.fromCharCode(code)}${pair.slice(i)}`;
            }),
        ),
      },
      { weight: 1, arbitrary: invalid(key.map((k) => `Bearer ${k.keyId}:${k.secret}\u007f`)) },
      // Unicode look-alikes in the scheme or the pair (sent as UTF-8 by the runtime). The
      // pair is a fresh unknown one: workerd warns about non-ASCII header values and quotes
      // them on stderr, which must not show a real key's secret.
      {
        weight: 1,
        arbitrary: invalid(
          fc.tuple(fc.constantFrom(...LOOKALIKES), fc.nat()).map(([look, at]) => {
            const value = `Bearer ${generateKeyId()}:${generateSecret()}`;
            const i = at % value.length;
            return value.slice(0, i) + look + value.slice(i + 1);
          }),
        ),
      },
      // Arbitrary text, with or without a scheme in front.
      {
        weight: 8,
        arbitrary: invalid(fc.tuple(fc.constantFrom("", "Bearer ", "bearer  ", "Basic "), text).map(([s, t]) => s + t)),
      },
      // Huge values and long whitespace runs (linear-time parsing).
      {
        weight: 2,
        arbitrary: invalid(
          fc
            .tuple(key, fc.integer({ min: 1_000, max: 64_000 }), fc.constantFrom("a", " ", "\t", ":", "0", "eyJ"))
            .map(([k, n, unit]) => `Bearer ${unit.repeat(n)}${k.keyId}:${k.secret}x`),
        ),
      },
    )
    .map((auth) => ({ ...auth, value: auth.value === undefined ? undefined : headerSafe(auth.value) }));
}

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE", "REPORT", "propfind", "Get"];

const segment = fc.oneof(
  fc.constantFrom(
    "v1",
    "agents",
    "calls",
    "keys",
    "..",
    ".",
    "",
    "%2e%2e",
    "%2F",
    "%00",
    "healthz",
    ".well-known",
    "jwks.json",
    "x;y=1",
    "a b",
    "é",
    "%ZZ",
    "nxf_00",
  ),
  fc.string({ unit: fc.constantFrom(..."abcXYZ019-._~!$&'()*+,;=:@%/ ?#[]\\é€\u0000"), maxLength: 12 }),
);

const requests = (keys: Keys) =>
  fc.record({
    auth: authorizations(keys),
    method: fc.constantFrom(...METHODS),
    segments: fc.array(segment, { maxLength: 6 }),
    query: fc.option(fc.string({ unit: fc.constantFrom(..."ab=&%20+?/é#"), maxLength: 20 }), { nil: undefined }),
    headers: fc.array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom(
            "X-Nixflex-Identity",
            "x-nixflex-account",
            "X-NIXFLEX-KEY-ID",
            "x_nixflex_identity",
            "X-Request-Id",
            "X-Forwarded-For",
            "x-forwarded-host",
            "X-Forwarded-Proto",
            "Forwarded",
            "X-Real-IP",
            "Connection",
            "Keep-Alive",
            "TE",
            "Upgrade",
            "Proxy-Authorization",
            "Content-Type",
            "Accept",
            "Cookie",
            "WWW-Authenticate",
          ),
          fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/),
        ),
        fc.string({ unit: fc.integer({ min: 32, max: 126 }).map((c) => String.fromCharCode(c)), maxLength: 60 }),
      ),
      { maxLength: 6 },
    ),
    body: fc.option(fc.uint8Array({ maxLength: 512 }), { nil: undefined }),
  });

const RESERVED_HEADERS = new Set(["authorization", "cf-connecting-ip", "host", "content-length", "transfer-encoding"]);

let keys: Keys;
let h: Gateway;
let verify: IdentityVerifier;
let address = 0;

beforeAll(async () => {
  const valid = [await createKey({ accountId: "acct_fuzz_a" }), await createKey({ accountId: "acct_fuzz_b" })];
  const store = adminStore();
  const revoked = await createKey({ store, accountId: "acct_fuzz_c" });
  await store.revoke(revoked.accountId, revoked.keyId);
  keys = { valid, revoked };
  h = gateway();
  verify = h.verifier();
});

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

describe("fuzzed requests", () => {
  it(
    `answer the standard 401 or, for a valid key only, a verified forward (${RUNS} runs)`,
    async () => {
      const arbitrary = requests(keys);
      await fc.assert(
        fc.asyncProperty(arbitrary, async (input) => {
          h.engine.calls.length = 0;
          let url = new URL(
            `${PUBLIC_ORIGIN}/${input.segments.join("/")}${input.query === undefined ? "" : `?${input.query}`}`,
          );
          // Public paths answer without a key by design; they have their own tests.
          if (isPublic(safeDecode(url.pathname)) || isPublic(url.pathname)) url = new URL(`${PUBLIC_ORIGIN}/v1/agents`);

          const headers = new Headers();
          for (const [name, value] of input.headers)
            if (!RESERVED_HEADERS.has(name.toLowerCase())) headers.append(name, value);
          if (input.auth.value !== undefined) headers.set("authorization", input.auth.value);
          address++;
          headers.set("cf-connecting-ip", `10.${(address >> 16) & 255}.${(address >> 8) & 255}.${address & 255}`);
          const hasBody =
            input.body !== undefined && input.method.toUpperCase() !== "GET" && input.method.toUpperCase() !== "HEAD";
          const request = new Request(url, { method: input.method, headers, body: hasBody ? input.body : undefined });

          const { res, body } = await h.send(request);
          expect(res.status).toBeLessThan(500);

          const key = input.auth.validKey;
          if (key === null) {
            // A HEAD answer carries the same status and headers, and no body (RFC 9110 §9.3.2).
            expectStandard401(res, body, { head: request.method === "HEAD" });
            expect([...res.headers.keys()].sort()).toEqual([
              "cache-control",
              "content-type",
              "www-authenticate",
              "x-request-id",
            ]);
            expect(h.engine.calls).toHaveLength(0);
            return;
          }

          if (h.engine.calls.length === 0) {
            // Answered at the edge: only key management may do that for a valid key.
            const decoded = safeDecode(new URL(request.url).pathname);
            expect(decoded === "/v1/keys" || decoded.startsWith("/v1/keys/")).toBe(true);
            return;
          }
          expect(h.engine.calls).toHaveLength(1);
          const seen = h.engine.calls[0]!;
          expect(seen.headers.has("authorization")).toBe(false);
          expect([...seen.headers.keys()].filter((n) => n.replace(/_/g, "-").startsWith("x-nixflex-"))).toEqual([
            "x-nixflex-identity",
          ]);
          const identity = await verify(seen);
          expect(identity).toEqual({
            accountId: key.accountId,
            keyId: key.keyId,
            requestId: res.headers.get("x-request-id"),
          });
          const { payload } = jwtParts(seen.headers.get("x-nixflex-identity")!);
          expect(payload.sub).toBe(key.accountId);
          expect(payload.key_id).toBe(key.keyId);
          expect(payload.htm).toBe(request.method);
          expect(payload.htu).toBe(new URL(request.url).pathname);
          expect(new URL(seen.url).pathname + new URL(seen.url).search).toBe(
            new URL(request.url).pathname + new URL(request.url).search,
          );
        }),
        { numRuns: RUNS, ...(REPLAY ?? {}) },
      );
    },
    Math.max(60_000, RUNS * 10),
  );
});
