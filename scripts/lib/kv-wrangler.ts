/**
 * A `KVNamespace` (the subset `KeyStore` uses) that shells out to `wrangler kv …`,
 * so `npm run keys -- … --remote` reaches a deployed namespace with the operator's own
 * wrangler login and no API token handling of ours.
 *
 * The same adapter also runs against local state (`--local --persist-to DIR`), which is
 * how its tests prove it without Cloudflare: what it writes, getPlatformProxy (and so
 * `wrangler dev`) reads, and the other way round.
 *
 * Calls KeyStore makes (src/keys/store.ts), and how each maps:
 *   get(key, "json" | "text" | {type})  → wrangler kv key get KEY            (raw bytes on stdout)
 *   get(keys[], "json" | "text")        → wrangler kv bulk get FILE          (one process, ≤100 keys a call)
 *   put(key, value)                     → wrangler kv key put KEY --path FILE (the value never rides on argv)
 *   list({prefix, limit, cursor})       → wrangler kv key list --prefix P    (limit/cursor applied here)
 *   delete(key)                         → wrangler kv key delete KEY
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { redact } from "../../src/log.ts";
import { KV_BINDING, PROJECT_ROOT, WRANGLER_CONFIG, persistRoot, wranglerCommand, wranglerEnv } from "./project.ts";

export type WranglerKvTarget = { remote: true } | { remote: false; persistTo?: string };

export interface WranglerKvOptions {
  target: WranglerKvTarget;
  /** A `[env.<name>]` of wrangler.toml (its own KV namespace id). */
  environment?: string;
  binding?: string;
}

interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

type GetType = "text" | "json" | "arrayBuffer" | "stream";

/** What `wrangler kv key get` prints for a missing key in local mode (exit 0). */
const LOCAL_NOT_FOUND = "Value not found\n";
/** The Cloudflare API answers a missing key with 404; wrangler exits non-zero quoting it. */
const REMOTE_NOT_FOUND = / - 404: /;
/** Local state locked by another process (wrangler dev, another CLI). */
const LOCAL_BUSY = /SQLITE_BUSY|database is locked/;
/** The KV bulk-get API takes at most 100 keys per call. */
const BULK_GET_MAX = 100;
const ANSI = /\u001b\[[0-9;]*m/g;

function decodeValue(raw: string | null, type: GetType): unknown {
  if (raw === null) return null;
  if (type === "json") return JSON.parse(raw);
  return raw;
}

function toBase64Url(text: string): string {
  return Buffer.from(text, "utf8").toString("base64url");
}

export class WranglerKv {
  readonly #target: WranglerKvTarget;
  readonly #environment: string | undefined;
  readonly #binding: string;
  #lastError: string | undefined;

  constructor(options: WranglerKvOptions) {
    this.#target = options.target;
    this.#environment = options.environment;
    this.#binding = options.binding ?? KV_BINDING;
  }

  /** The last wrangler failure, for the CLI to show (KeyStore reports only "KV failed"). */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** This adapter, typed as the binding KeyStore expects (it implements the subset KeyStore calls). */
  asKvNamespace(): KVNamespace {
    return this as unknown as KVNamespace;
  }

  #common(): string[] {
    const args = ["--binding", this.#binding, "--config", WRANGLER_CONFIG];
    if (this.#target.remote) args.push("--remote");
    else args.push("--local", "--persist-to", persistRoot(this.#target.persistTo));
    if (this.#environment !== undefined) args.push("--env", this.#environment);
    return args;
  }

  /**
   * Runs one wrangler command. Locally, the state is one SQLite database that another
   * process may hold locked (the command then fails with SQLITE_BUSY instead of waiting);
   * every command here is idempotent, so it is run again.
   */
  async #run(args: string[]): Promise<RunResult> {
    for (let attempt = 1; ; attempt++) {
      const result = await this.#runOnce(args);
      if (result.code === 0 || this.#target.remote || attempt >= 5 || !LOCAL_BUSY.test(result.stderr)) return result;
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt * (0.5 + Math.random())));
    }
  }

  #runOnce(args: string[]): Promise<RunResult> {
    const [file, argv] = wranglerCommand([...args, ...this.#common()]);
    return new Promise((resolve) => {
      execFile(
        file,
        argv,
        { cwd: PROJECT_ROOT, env: wranglerEnv(), encoding: "buffer", maxBuffer: 256 * 1024 * 1024, timeout: 120_000 },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
          resolve({ code, stdout, stderr: stderr.toString("utf8").replace(ANSI, "") });
        },
      );
    });
  }

  #fail(what: string, result: RunResult): never {
    const detail = result.stderr
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("🪵") && !line.startsWith("at "))
      .slice(-4)
      .join(" | ");
    this.#lastError = redact(`wrangler ${what} failed (exit ${result.code}): ${detail || "no output"}`);
    throw new Error(this.#lastError);
  }

  #checkKey(key: string): void {
    // A leading "-" would be read as a flag by wrangler's argument parser.
    if (key === "" || key.startsWith("-")) throw new TypeError(`unsupported KV key name: ${JSON.stringify(key)}`);
  }

  async #withTempFile<T>(content: string | Uint8Array, use: (path: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), "nixflex-kv-"));
    try {
      const path = join(dir, "value");
      await writeFile(path, content, { mode: 0o600 });
      return await use(path);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async #getOne(key: string): Promise<Buffer | null> {
    this.#checkKey(key);
    const result = await this.#run(["kv", "key", "get", key]);
    if (result.code !== 0) {
      if (this.#target.remote && REMOTE_NOT_FOUND.test(result.stderr)) return null;
      this.#fail("kv key get", result);
    }
    // Our values are JSON records and ISO times, so this text is never a stored value.
    if (!this.#target.remote && result.stdout.toString("utf8") === LOCAL_NOT_FOUND) return null;
    return result.stdout;
  }

  async #getMany(keys: string[]): Promise<Map<string, string | null>> {
    const values = new Map<string, string | null>();
    for (let start = 0; start < keys.length; start += BULK_GET_MAX) {
      const chunk = keys.slice(start, start + BULK_GET_MAX);
      for (const key of chunk) this.#checkKey(key);
      const result = await this.#withTempFile(JSON.stringify(chunk), (path) => this.#run(["kv", "bulk", "get", path]));
      if (result.code !== 0) this.#fail("kv bulk get", result);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(result.stdout.toString("utf8")) as Record<string, unknown>;
      } catch {
        this.#fail("kv bulk get (unreadable output)", result);
      }
      for (const key of chunk) {
        // Local mode prints {key: {value}}, the API's bulk get {key: value}.
        const entry = parsed[key];
        const value =
          entry !== null && typeof entry === "object" && "value" in entry ? (entry as { value: unknown }).value : entry;
        values.set(key, typeof value === "string" ? value : null);
      }
    }
    return values;
  }

  /** `KVNamespace.get` for one key (text, json, arrayBuffer, stream) or many (text, json). */
  async get(key: string | string[], typeOrOptions?: GetType | { type?: GetType; cacheTtl?: number }): Promise<unknown> {
    const type: GetType = (typeof typeOrOptions === "string" ? typeOrOptions : typeOrOptions?.type) ?? "text";
    if (Array.isArray(key)) {
      if (type !== "text" && type !== "json") throw new TypeError(`bulk get supports "text" and "json", not "${type}"`);
      const raw = await this.#getMany(key);
      const out = new Map<string, unknown>();
      for (const [name, value] of raw) out.set(name, decodeValue(value, type));
      return out;
    }
    const bytes = await this.#getOne(key);
    if (bytes === null) return null;
    if (type === "arrayBuffer") return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    if (type === "stream") return new Blob([new Uint8Array(bytes)]).stream();
    return decodeValue(bytes.toString("utf8"), type);
  }

  /** `KVNamespace.put` for strings and bytes, with `expirationTtl`, `expiration` and `metadata`. */
  async put(
    key: string,
    value: string | ArrayBuffer | ArrayBufferView,
    options: { expirationTtl?: number; expiration?: number; metadata?: unknown } = {},
  ): Promise<void> {
    this.#checkKey(key);
    const bytes =
      typeof value === "string"
        ? value
        : value instanceof ArrayBuffer
          ? new Uint8Array(value)
          : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const extra: string[] = [];
    if (options.expirationTtl !== undefined) extra.push("--ttl", String(options.expirationTtl));
    if (options.expiration !== undefined) extra.push("--expiration", String(options.expiration));
    if (options.metadata !== undefined) extra.push("--metadata", JSON.stringify(options.metadata));
    const result = await this.#withTempFile(bytes, (path) =>
      this.#run(["kv", "key", "put", key, "--path", path, ...extra]),
    );
    if (result.code !== 0) this.#fail("kv key put", result);
  }

  /**
   * `KVNamespace.list`. `wrangler kv key list` returns every key under the prefix, so
   * `limit` and `cursor` are applied here; the cursor is the last name returned, encoded.
   */
  async list(options: { prefix?: string; limit?: number; cursor?: string | null } = {}) {
    const args = ["kv", "key", "list"];
    if (options.prefix !== undefined && options.prefix !== "") args.push("--prefix", options.prefix);
    const result = await this.#run(args);
    if (result.code !== 0) this.#fail("kv key list", result);
    let all: { name: string; expiration?: number; metadata?: unknown }[];
    try {
      all = JSON.parse(result.stdout.toString("utf8"));
    } catch {
      this.#fail("kv key list (unreadable output)", result);
    }
    all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const after = options.cursor ? Buffer.from(options.cursor, "base64url").toString("utf8") : undefined;
    const rest = after === undefined ? all : all.filter((entry) => entry.name > after);
    const limit = options.limit ?? 1000;
    const keys = rest.slice(0, limit);
    const complete = rest.length <= limit;
    return complete
      ? { keys, list_complete: true as const, cacheStatus: null }
      : { keys, list_complete: false as const, cursor: toBase64Url(keys[keys.length - 1]!.name), cacheStatus: null };
  }

  /** `KVNamespace.delete`. */
  async delete(key: string): Promise<void> {
    this.#checkKey(key);
    const result = await this.#run(["kv", "key", "delete", key]);
    if (result.code !== 0) this.#fail("kv key delete", result);
  }
}
