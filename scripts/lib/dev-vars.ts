/**
 * Reading and updating one variable in a `.dev.vars` file (dotenv syntax, which is what
 * `wrangler dev` parses). Other lines are kept as they are; the file stays private (0600)
 * because it holds the local signing key.
 */
import { existsSync, readFileSync, writeFileSync, chmodSync } from "node:fs";

const QUOTES = ["'", '"', "`"];

interface Found {
  start: number;
  end: number;
  value: string;
}

function find(lines: string[], name: string): Found | undefined {
  const prefix = new RegExp(`^\\s*(?:export\\s+)?${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*=\\s*`);
  for (let i = 0; i < lines.length; i++) {
    const match = prefix.exec(lines[i]!);
    if (match === null) continue;
    const rest = lines[i]!.slice(match[0].length);
    const quote = QUOTES.find((q) => rest.startsWith(q));
    if (quote === undefined) return { start: i, end: i, value: rest.replace(/\s+#.*$/, "").trim() };
    // A quoted value may span lines; it ends at the next closing quote.
    let text = rest.slice(1);
    let end = i;
    while (!text.includes(quote) && end + 1 < lines.length) text += `\n${lines[++end]!}`;
    const close = text.indexOf(quote);
    return { start: i, end, value: close === -1 ? text : text.slice(0, close) };
  }
  return undefined;
}

/** The value of `name` in the file, or undefined when the file or the variable is absent. */
export function readDevVar(path: string, name: string): string | undefined {
  if (!existsSync(path)) return undefined;
  return find(readFileSync(path, "utf8").split("\n"), name)?.value;
}

/** Sets `name` (one line, quoted so dotenv keeps it verbatim), creating the file if needed. */
export function writeDevVar(path: string, name: string, value: string, comment?: string): void {
  if (value.includes("\n")) throw new Error(`${name} must be a single line`);
  const quote = QUOTES.find((q) => !value.includes(q));
  if (quote === undefined) throw new Error(`${name} contains every quote character; cannot write it to ${path}`);
  const line = `${name}=${quote}${value}${quote}`;
  const lines = existsSync(path) ? readFileSync(path, "utf8").replace(/\n$/, "").split("\n") : [];
  const found = find(lines, name);
  if (found === undefined) {
    if (comment !== undefined) lines.push(`# ${comment}`);
    lines.push(line);
  } else {
    lines.splice(found.start, found.end - found.start + 1, line);
  }
  writeFileSync(path, `${lines.join("\n")}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}
