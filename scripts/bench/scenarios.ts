/**
 * What the bench sends: one scenario per kind of traffic, each against a target Worker
 * and compared with the passthrough that forwards the same requests.
 */
import type { BenchKey } from "./keys.ts";
import type { RequestSpec } from "./wrk.ts";

export const MANY_KEYS = 20_000; // twice the isolate's LRU bound: a sequential sweep misses every time
export const UNKNOWN_IDS = 1_000;
export const CLIENT_ADDRESSES = 20_000; // failures spread over many addresses: no one trips the limiter
const LARGE_BYTES = 1024 * 1024;

/** The working tree's gateway, the bare passthrough, or the gateway built from `--baseline <ref>`. */
export type Target = "gateway" | "passthrough" | "baseline";

export interface Scenario {
  name: string;
  title: string;
  target: Target;
  /** The passthrough scenario this one is compared with. */
  comparedWith: string;
  spec: RequestSpec;
  expectStatus: number;
  /** Whether the origin should see every request. */
  forwarded: boolean;
}

/** The name of a gateway scenario's twin run against the baseline gateway. */
export const baselineTwin = (name: string) => `${name}@baseline`;

const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
export const bearer = (k: BenchKey) => `Bearer ${k.keyId}:${k.secret}`;

export interface ScenarioKeys {
  hot: BenchKey;
  many: BenchKey[];
  unknown: BenchKey[];
  garbage: Array<string | null>;
}

/** Every scenario, passthroughs first; with a baseline, each gateway scenario gets a twin. */
export function scenarios({ hot, many, unknown, garbage }: ScenarioKeys, baseline?: string): Scenario[] {
  const common = { "user-agent": "nixflex-bench/1", accept: "application/json", "cf-connecting-ip": "203.0.113.7" };
  const small: RequestSpec = {
    method: "GET",
    path: "/v1/agents/a1?limit=10",
    headers: { ...common, authorization: bearer(hot) },
  };
  const large: RequestSpec = {
    method: "POST",
    path: `/v1/uploads?bytes=${LARGE_BYTES}`,
    headers: { ...common, "content-type": "application/octet-stream", authorization: bearer(hot) },
    bodyBytes: LARGE_BYTES,
  };
  const gateway = (name: string, title: string, spec: RequestSpec, expectStatus = 200, comparedWith = "passthrough") =>
    ({ name, title, target: "gateway", comparedWith, spec, expectStatus, forwarded: expectStatus === 200 }) as const;
  const passthrough = (name: string, title: string, spec: RequestSpec) =>
    ({ name, title, target: "passthrough", comparedWith: name, spec, expectStatus: 200, forwarded: true }) as const;
  const every: Scenario[] = [
    passthrough("passthrough", "bare passthrough Worker (the reference)", small),
    gateway("hot", "gateway, hot key", small),
    gateway("many-keys", `gateway, ${MANY_KEYS.toLocaleString("en")} distinct valid keys (cache misses)`, {
      ...small,
      variants: many.map((k) => ({ authorization: bearer(k) })),
    }),
    gateway(
      "unknown",
      `gateway, ${UNKNOWN_IDS.toLocaleString("en")} unknown well-formed key_ids`,
      {
        ...small,
        variants: Array.from({ length: CLIENT_ADDRESSES }, (_, i) => ({
          authorization: bearer(unknown[i % unknown.length]!),
          "cf-connecting-ip": ip(i),
        })),
      },
      401,
    ),
    gateway(
      "garbage",
      "gateway, garbage Authorization headers",
      {
        ...small,
        headers: { ...common },
        variants: garbage.map(
          (value, i): Record<string, string> =>
            value === null ? { "cf-connecting-ip": ip(i) } : { authorization: value, "cf-connecting-ip": ip(i) },
        ),
      },
      401,
    ),
    passthrough("passthrough-large", "bare passthrough Worker, 1 MiB up + 1 MiB down", large),
    gateway("large", "gateway, hot key, 1 MiB streamed up + 1 MiB down", large, 200, "passthrough-large"),
  ];
  if (baseline === undefined) return every;
  const twins = every
    .filter((s) => s.target === "gateway")
    .map((s) => ({
      ...s,
      name: baselineTwin(s.name),
      title: `${s.title} — baseline ${baseline}`,
      target: "baseline" as const,
    }));
  return [...every, ...twins];
}

/** The scenarios `--only` chose, plus the passthroughs and baseline twins they are compared with. */
export function chooseScenarios(every: Scenario[], only: string[] | undefined): Scenario[] {
  const chosen = every.filter(
    (s) => only === undefined || only.includes(s.name) || only.some((o) => s.name === baselineTwin(o)),
  );
  return every.filter((s) => chosen.includes(s) || chosen.some((x) => x.comparedWith === s.name));
}
