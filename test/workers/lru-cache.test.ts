/**
 * The isolate LRU (src/lib/lru-cache.ts) against a model: any sequence of gets, sets and
 * deletes with a moving clock answers what a plain array-ordered LRU answers, never holds
 * more than its bound, and evicts the least recently used entry.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LruCache } from "../../src/lib/lru-cache.ts";

/** The obvious LRU: an array, least recently used first. */
class ModelLru {
  entries: Array<{ key: string; value: number; expiresAt: number }> = [];
  readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  get(key: string, now: number): number | undefined {
    const i = this.entries.findIndex((e) => e.key === key);
    if (i === -1) return undefined;
    const [entry] = this.entries.splice(i, 1);
    if (entry!.expiresAt <= now) return undefined;
    this.entries.push(entry!);
    return entry!.value;
  }
  set(key: string, value: number, expiresAt: number): void {
    const i = this.entries.findIndex((e) => e.key === key);
    if (i !== -1) this.entries.splice(i, 1);
    this.entries.push({ key, value, expiresAt });
    if (this.entries.length > this.max) this.entries.shift();
  }
  delete(key: string): void {
    this.entries = this.entries.filter((e) => e.key !== key);
  }
}

type Op =
  | { op: "get"; key: string }
  | { op: "set"; key: string; value: number; ttl: number }
  | { op: "delete"; key: string }
  | { op: "tick"; ms: number }
  | { op: "expiresAt"; key: string };

const key = fc.constantFrom("a", "b", "c", "d", "e", "f", "g");
const ops = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant("get" as const), key }),
    fc.record({ op: fc.constant("set" as const), key, value: fc.integer(), ttl: fc.integer({ min: 1, max: 50 }) }),
    fc.record({ op: fc.constant("delete" as const), key }),
    fc.record({ op: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 20 }) }),
    fc.record({ op: fc.constant("expiresAt" as const), key }),
  ),
  { maxLength: 200 },
);

describe("LruCache", () => {
  it("answers like the model LRU for any sequence of operations (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), ops, (max, sequence: Op[]) => {
        const cache = new LruCache<number>(max);
        const model = new ModelLru(max);
        let now = 0;
        for (const step of sequence) {
          if (step.op === "get") expect(cache.get(step.key, now)).toBe(model.get(step.key, now));
          else if (step.op === "set") {
            cache.set(step.key, step.value, now + step.ttl);
            model.set(step.key, step.value, now + step.ttl);
          } else if (step.op === "delete") {
            cache.delete(step.key);
            model.delete(step.key);
          } else if (step.op === "tick") now += step.ms;
          else expect(cache.expiresAt(step.key)).toBe(model.entries.find((e) => e.key === step.key)?.expiresAt);
          expect(cache.size).toBe(model.entries.length);
          expect(cache.size).toBeLessThanOrEqual(max);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("evicts the least recently used, where a read counts as a use", () => {
    const cache = new LruCache<string>(2);
    cache.set("a", "A", 100);
    cache.set("b", "B", 100);
    expect(cache.get("a", 0)).toBe("A");
    cache.set("c", "C", 100);
    expect(cache.get("b", 0)).toBeUndefined();
    expect(cache.get("a", 0)).toBe("A");
    expect(cache.get("c", 0)).toBe("C");
    cache.clear();
    expect(cache.size).toBe(0);
    cache.set("d", "D", 100);
    expect(cache.get("d", 0)).toBe("D");
  });

  it("at its full 10,000 entries, keeps a hit entry and evicts the oldest untouched one", () => {
    // (What a hit costs on a full cache is measured by npm run bench, not timed here.)
    const cache = new LruCache<number>(10_000);
    for (let i = 0; i < 10_000; i++) cache.set(`k${i}`, i, Number.POSITIVE_INFINITY);
    expect(cache.get("k0", 0)).toBe(0);
    cache.set("new", -1, Number.POSITIVE_INFINITY);
    expect(cache.size).toBe(10_000);
    expect(cache.get("k0", 0)).toBe(0);
    expect(cache.get("k1", 0)).toBeUndefined();
    expect(cache.get("new", 0)).toBe(-1);
  });
});
