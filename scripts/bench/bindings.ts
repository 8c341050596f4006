/**
 * The gateway's bindings for the bench, read from the wrangler.toml of the tree being
 * bundled (the working tree, or a `--baseline` ref): its vars, KV namespaces, rate limits
 * and Durable Objects, with the engine pointed at the bench's origin and the signing key
 * set (a secret) from the bench's keys. A Durable Object is bound only when the bundle
 * exports its class, so an older tree without one runs unchanged.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import type { WorkerdBinding } from "./workerd.ts";

/** The top-level (local) bindings wrangler.toml declares. */
interface WranglerBindings {
  vars?: Record<string, unknown>;
  kv_namespaces?: Array<{ binding: string }>;
  ratelimits?: Array<{ name: string; simple?: { limit: number; period: number } }>;
  durable_objects?: { bindings?: Array<{ name: string; class_name: string; script_name?: string }> };
}

/** The KV host's store for a binding: `API_KEYS` → `api-keys` (what the bench seeds). */
export const kvStoreName = (binding: string) => binding.toLowerCase().replaceAll("_", "-");

/** What the bench binds on the gateway's env, and the Durable Object classes it hosts. */
export interface GatewayBindings {
  bindings: Record<string, WorkerdBinding>;
  durableObjects: string[];
}

/** The names a bundle's main module exports, read by esbuild without running it. */
export async function bundleExports(file: string): Promise<Set<string>> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [file],
    bundle: false,
    write: false,
    metafile: true,
    format: "esm",
    outdir: "/nonexistent",
    logLevel: "silent",
  });
  return new Set(Object.values(result.metafile.outputs).flatMap((o) => o.exports));
}

export async function gatewayBindings(
  treeDir: string,
  bundleFile: string,
  given: { engineUrl: string; signingKeys: string },
): Promise<GatewayBindings> {
  const config = parse(readFileSync(join(treeDir, "wrangler.toml"), "utf8")) as WranglerBindings;
  const bindings: Record<string, WorkerdBinding> = {};
  for (const [name, value] of Object.entries(config.vars ?? {}))
    bindings[name] = typeof value === "string" ? value : { json: value };
  for (const { binding } of config.kv_namespaces ?? []) bindings[binding] = { kvNamespace: kvStoreName(binding) };
  for (const { name, simple } of config.ratelimits ?? [])
    bindings[name] = { ratelimit: simple ?? { limit: 60, period: 60 } };
  const exported = await bundleExports(bundleFile);
  const durableObjects: string[] = [];
  for (const d of config.durable_objects?.bindings ?? []) {
    // A class of another Worker (script_name), or one this bundle does not export, is left unbound.
    if (d.script_name !== undefined || !exported.has(d.class_name)) continue;
    bindings[d.name] = { durableObject: { className: d.class_name } };
    durableObjects.push(d.class_name);
  }
  bindings.ENGINE_URL = given.engineUrl;
  bindings.IDENTITY_SIGNING_KEYS = given.signingKeys;
  return { bindings, durableObjects };
}
