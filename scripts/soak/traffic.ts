/**
 * The soak's traffic: four wrk classes (forwarded requests, key reads, every kind of
 * failure over many addresses, and one abusive address), each with the answers it may get.
 */
import { UNAUTHORIZED_BODY } from "../../src/errors.ts";
import { generateKeyId, generateSecret } from "../../src/keys/format.ts";
import type { SoakRequest, TrafficClass } from "./classes.ts";
import { bearer, type SoakKeys } from "./keys.ts";
import type { SoakSettings } from "./settings.ts";

/**
 * Unknown well-formed key_ids: twice the isolate's negative-cache bound (10 000), so a
 * sweep misses every time and the cache's eviction runs for the whole soak.
 */
const UNKNOWN_IDS = 20_000;
/**
 * The invalid class spreads over this many client addresses, so each sees
 * rps × 60 / 8192 failures a minute: under the limit of 60 up to 8192 failures/s, about
 * twice what this gateway answers in total on the test machine. A 429 there is unexpected.
 */
export const INVALID_ADDRESSES = 8192;
/** One address sending only failures: it must get `limit` 401s per window, then 429s. */
const ABUSER_ADDRESS = "198.51.100.66";

const COMMON = { "User-Agent": "nixflex-soak/1", Accept: "application/json" };
const OK_BODY = '{"ok":true}';

function splitConnections(total: number): { forward: number; keysRead: number; invalid: number; abuser: number } {
  const abuser = 1;
  const keysRead = Math.max(1, Math.round(total * 0.2));
  const invalid = Math.max(1, Math.round(total * 0.25));
  const forward = total - abuser - keysRead - invalid;
  return { forward, keysRead, invalid, abuser };
}

/** Authorization values of every failure kind of SPEC §3, in a rotation (null: header missing). */
function failureAuthorizations(keys: SoakKeys): Array<{ kind: string; authorization: string | null }> {
  const id = generateKeyId();
  const secret = generateSecret();
  const badChecksum = secret.slice(0, -1) + (secret.endsWith("0") ? "1" : "0");
  const others: Array<{ kind: string; authorization: string | null }> = [
    { kind: "missing", authorization: null },
    { kind: "garbage", authorization: "Bearer hello" },
    { kind: "bad checksum", authorization: `Bearer ${id}:${badChecksum}` },
    { kind: "wrong scheme", authorization: `Basic ${btoa(`${id}:${secret}`)}` },
    { kind: "space", authorization: `Bearer ${id} ${secret}` },
    { kind: "bad format", authorization: `Bearer ${id}:nxfs_${"x".repeat(40)}` },
    { kind: "garbage", authorization: `Bearer ${"A".repeat(300)}` },
  ];
  let w = 0;
  for (const k of keys.valid)
    others.push({ kind: "wrong secret", authorization: `Bearer ${k.keyId}:${generateSecret()}` });
  for (const k of keys.revoked) others.push({ kind: "revoked", authorization: bearer(k) });
  for (const k of keys.expired) others.push({ kind: "expired", authorization: bearer(k) });
  // Half the failures are unknown ids (each a KV read once the negative cache has evicted
  // it); the other half rotate through every other kind.
  const out: Array<{ kind: string; authorization: string | null }> = [];
  for (let i = 0; i < UNKNOWN_IDS; i++) {
    out.push({ kind: "unknown id", authorization: `Bearer ${generateKeyId()}:${generateSecret()}` });
    out.push(others[w++ % others.length]!);
  }
  return out;
}

/** The four wrk classes, sized from `settings.connections`. */
export function trafficClasses(keys: SoakKeys, settings: SoakSettings): TrafficClass[] {
  const split = splitConnections(settings.connections);
  const unauthorized = { status: 401, mode: "exact", text: UNAUTHORIZED_BODY, headers: ["WWW-Authenticate"] } as const;

  const forward: SoakRequest[] = [];
  keys.valid.forEach((k, i) => {
    forward.push({
      method: "GET",
      path: `/v1/agents/a${i}?limit=10`,
      headers: { ...COMMON, Authorization: bearer(k) },
    });
    forward.push({
      method: "POST",
      path: `/v1/agents/a${i}/runs`,
      headers: { ...COMMON, Authorization: bearer(k), "Content-Type": "application/json" },
      body: JSON.stringify({ input: `soak request ${i}`, options: { temperature: 0.2, tags: ["soak", `k${i}`] } }),
    });
  });

  const keysRead: SoakRequest[] = [];
  keys.valid.forEach((k, i) => {
    const other = keys.valid[(i * 7 + 3) % keys.valid.length]!;
    keysRead.push({ method: "GET", path: "/v1/keys?limit=10", headers: { ...COMMON, Authorization: bearer(k) } });
    keysRead.push({ method: "GET", path: `/v1/keys/${other.keyId}`, headers: { ...COMMON, Authorization: bearer(k) } });
  });

  const failures = failureAuthorizations(keys);
  const invalid: SoakRequest[] = failures.map((f, i) => ({
    method: i % 3 === 0 ? "POST" : "GET",
    path: i % 3 === 0 ? "/v1/agents/x/runs" : `/v1/agents/x${i % 50}`,
    headers: f.authorization === null ? { ...COMMON } : { ...COMMON, Authorization: f.authorization },
    body: i % 3 === 0 ? '{"input":"nope"}' : undefined,
  }));
  if (invalid.some((r) => r.method === "POST"))
    for (const r of invalid) if (r.body !== undefined) r.headers["Content-Type"] = "application/json";

  const abuser: SoakRequest[] = failures.slice(0, 200).map((f) => ({
    method: "GET",
    path: "/v1/agents/x",
    headers: f.authorization === null ? { ...COMMON } : { ...COMMON, Authorization: f.authorization },
  }));

  return [
    {
      name: "forward",
      description: `authenticated GET and POST (small JSON body) with ${keys.valid.length} valid keys → origin`,
      address: { fixed: "203.0.113.10" },
      expect: [{ status: 200, mode: "exact", text: OK_BODY, headers: ["X-Request-Id"] }],
      requests: forward,
      connections: split.forward,
    },
    {
      name: "keys-read",
      description: "GET /v1/keys?limit=10 and GET /v1/keys/:id with valid keys",
      address: { fixed: "203.0.113.11" },
      expect: [
        { status: 200, mode: "prefix", text: '{"data":[{"object":"api_key","key_id":"nxf_' },
        { status: 200, mode: "prefix", text: '{"object":"api_key","key_id":"nxf_' },
      ],
      requests: keysRead,
      connections: split.keysRead,
    },
    {
      name: "invalid",
      description: `every failure kind (half unknown ids, ${UNKNOWN_IDS} of them) over ${INVALID_ADDRESSES} addresses`,
      address: { prefix: "10.77", count: INVALID_ADDRESSES },
      expect: [unauthorized],
      requests: invalid,
      connections: split.invalid,
    },
    {
      name: "abuser",
      description: `failures from one address (${ABUSER_ADDRESS}): ${settings.failureLimit} 401s per ${settings.failurePeriodS} s window, then 429`,
      address: { fixed: ABUSER_ADDRESS },
      expect: [
        unauthorized,
        { status: 429, mode: "contains", text: '"type":"rate_limit_error"', headers: ["Retry-After"] },
      ],
      requests: abuser,
      connections: split.abuser,
    },
  ];
}
