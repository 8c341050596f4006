/** Number formats shared by the bench's console output and its Markdown report. */
export const f0 = (n: number) => Math.round(n).toLocaleString("en");
export const f1 = (n: number) => n.toFixed(1);
export const f2 = (n: number) => n.toFixed(2);
/** µs → ms with two decimals. */
export const ms = (us: number) => (us / 1000).toFixed(2);

export const say = (line = "") => process.stdout.write(`${line}\n`);

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
