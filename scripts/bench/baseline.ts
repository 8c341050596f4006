/**
 * `--baseline <git-ref>`: the gateway as it was at another commit, built beside the
 * working tree's. The ref's files come from `git archive` into the bench's temporary
 * directory (no worktree is registered, nothing in the repository changes), borrow the
 * working tree's node_modules by a symlink, and are bundled by the same
 * `wrangler deploy --dry-run` with the ref's own wrangler.toml.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { type Bundle, bundleGateway } from "./bundle.ts";
import { REPO_ROOT } from "./workerd.ts";

export interface BaselineBuild {
  /** As given on the command line, e.g. `main~3`. */
  ref: string;
  commit: string;
  /** The commit's subject line. */
  subject: string;
  /** The extracted tree (inside the bench's temporary directory). */
  tree: string;
  bundle: Bundle;
  /** Durable Object classes it hosts in the bench (filled in when its bindings are read). */
  durableObjects: string[];
}

const git = (...args: string[]) =>
  execFileSync("git", ["-C", REPO_ROOT, ...args], { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024 });

/** Resolves `ref`, or throws a one-line error naming it. */
function resolveCommit(ref: string): string {
  try {
    return git("rev-parse", "--verify", "--end-of-options", `${ref}^{commit}`).toString().trim();
  } catch {
    throw new Error(`--baseline ${ref}: not a commit in this repository`);
  }
}

export async function buildBaseline(ref: string, workDir: string): Promise<BaselineBuild> {
  const commit = resolveCommit(ref);
  const subject = git("log", "-1", "--format=%s", commit).toString().trim();
  const tree = join(workDir, "baseline-tree");
  mkdirSync(tree, { recursive: true });
  const archive = join(workDir, "baseline.tar");
  git("archive", "--format=tar", "-o", archive, commit);
  execFileSync("tar", ["-xf", archive, "-C", tree]);
  symlinkSync(join(REPO_ROOT, "node_modules"), join(tree, "node_modules"), "dir");
  const bundle = await bundleGateway(join(workDir, "baseline-bundle"), [], tree);
  return { ref, commit, subject, tree, bundle, durableObjects: [] };
}
