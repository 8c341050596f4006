/**
 * Small pieces every command-line script shares: argument parsing with `node:util`,
 * exit codes, and a stdout that carries only what the command means to print.
 *
 * Exit codes: 0 success, 1 the operation failed (no such key, KV unreachable, invalid
 * secret for `check`), 2 the command line is wrong.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { redact } from "../../src/log.ts";

/** The command line is wrong: exit 2, with a message that says what to fix. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The operation failed for a reason the user can act on: exit 1. */
export class CliError extends Error {
  override readonly name = "CliError";
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** `util.parseArgs` in strict mode, with its errors turned into usage errors. */
export function parse<T extends Options>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true, allowNegative: false });
  } catch (error) {
    throw new UsageError(
      error instanceof Error ? error.message.replace(/\. To specify a positional.*$/s, ".") : String(error),
    );
  }
}

const realStdoutWrite = process.stdout.write.bind(process.stdout);

/**
 * From here on, anything written to stdout by a library (wrangler, miniflare, a stray
 * console.log) goes to stderr instead; only `out()` reaches stdout. This is what makes
 * `--json` print exactly one JSON object and nothing else.
 */
export function reserveStdout(): void {
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
}

/** Writes to the real stdout. */
export function out(text: string): void {
  realStdoutWrite(text.endsWith("\n") ? text : `${text}\n`);
}

/** Writes a line to stderr (progress, hints, warnings). Never pass a secret. */
export function note(text: string): void {
  process.stderr.write(text.endsWith("\n") ? text : `${text}\n`);
}

/**
 * Runs a script's main function and exits with its code. Errors print their message
 * only (scrubbed of anything secret-shaped), never a stack: a usage error gets the
 * usage hint, anything unexpected gets its name and message.
 */
export async function runMain(main: () => Promise<number>, usageHint: string): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (error) {
    if (error instanceof UsageError) {
      note(`error: ${redact(error.message)}\n${usageHint}`);
      code = 2;
    } else if (error instanceof CliError) {
      note(`error: ${redact(error.message)}`);
      code = error.exitCode;
    } else {
      const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      note(`error: ${redact(what)}`);
      code = 1;
    }
  }
  // Pipes and files are written synchronously on Linux, so nothing printed is lost here;
  // exiting explicitly ends any handle a library left open.
  process.exit(code);
}

/**
 * Dispatches `argv` to one of `commands`: `help`, `--help` or `-h` anywhere print `usage`;
 * a missing or unknown command is a usage error (exit 2).
 */
export function dispatch(
  argv: string[],
  commands: Record<string, (args: string[]) => Promise<number>>,
  usage: string,
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError("no command given");
  if (["help", "--help", "-h"].includes(command) || rest.includes("--help") || rest.includes("-h")) {
    out(usage);
    return Promise.resolve(0);
  }
  const run = commands[command];
  if (run === undefined) throw new UsageError(`unknown command "${command}"`);
  return run(rest);
}
