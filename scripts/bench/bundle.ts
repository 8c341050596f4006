/**
 * Bundling: the gateway exactly as `wrangler deploy` would upload it (a dry run, no
 * deploy), and small helper Workers with esbuild (the bundler wrangler itself uses).
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { REPO_ROOT } from "./workerd.ts";

const run = promisify(execFile);

export interface Bundle {
  dir: string;
  file: string;
  bytes: number;
  /** gzip -9 of the main module, the size the upload limit and cold start care about. */
  gzipBytes: number;
  /** What wrangler itself printed ("Total Upload: … / gzip: …"). */
  wranglerSummary: string;
}

/**
 * `wrangler deploy --dry-run --outdir <dir>` with the wrangler.toml of `tree` (the
 * repository by default; a baseline's extracted tree for `--baseline`).
 */
export async function bundleGateway(dir: string, extraArgs: string[] = [], tree = REPO_ROOT): Promise<Bundle> {
  const { stdout, stderr } = await run(
    join(REPO_ROOT, "node_modules/.bin/wrangler"),
    ["deploy", "--dry-run", "--outdir", dir, ...extraArgs],
    { cwd: tree, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" }, maxBuffer: 16 * 1024 * 1024 },
  );
  const file = join(dir, "index.js");
  const code = readFileSync(file);
  const summary = `${stdout}\n${stderr}`.split("\n").find((l) => l.includes("Total Upload")) ?? "";
  return {
    dir,
    file,
    bytes: code.length,
    gzipBytes: gzipSync(code, { level: 9 }).length,
    wranglerSummary: summary.trim(),
  };
}

/** esbuild settings for a module Worker, as wrangler builds one (workerd export conditions). */
const WORKER_BUILD = {
  format: "esm" as const,
  platform: "neutral" as const,
  target: "es2022",
  conditions: ["workerd", "worker", "browser"],
  mainFields: ["module", "main"],
  external: ["node:*", "cloudflare:*"],
};

/** Bundles a helper Worker (TypeScript allowed) into one ES module; `minify` as wrangler.toml's. */
export async function bundleWorker(
  entry: string,
  outfile: string,
  options: { minify?: boolean } = {},
): Promise<string> {
  const esbuild = await import("esbuild");
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: options.minify ?? false,
    ...WORKER_BUILD,
    logLevel: "error",
  });
  return outfile;
}

export interface BundleComposition {
  /** The gateway minified (as `minify = true` or `wrangler deploy --minify` would upload it). */
  minifiedBytes: number;
  minifiedGzipBytes: number;
  /** Minified bytes per package (`src` for the gateway's own code), largest first. */
  byPackage: Array<{ name: string; bytes: number }>;
}

/** What the bundle is made of: esbuild with a metafile, minified, from src/index.ts. */
export async function bundleComposition(outfile: string): Promise<BundleComposition> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [join(REPO_ROOT, "src/index.ts")],
    outfile,
    bundle: true,
    minify: true,
    ...WORKER_BUILD,
    metafile: true,
    logLevel: "error",
  });
  const output = Object.values(result.metafile.outputs)[0]!;
  const byPackage = new Map<string, number>();
  for (const [path, input] of Object.entries(output.inputs)) {
    const at = path.lastIndexOf("node_modules/");
    const name = at === -1 ? "src (the gateway)" : /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path.slice(at))![1]!;
    byPackage.set(name, (byPackage.get(name) ?? 0) + input.bytesInOutput);
  }
  const code = readFileSync(outfile);
  return {
    minifiedBytes: code.length,
    minifiedGzipBytes: gzipSync(code, { level: 9 }).length,
    byPackage: [...byPackage].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes),
  };
}
