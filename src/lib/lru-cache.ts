/**
 * A small time-bounded LRU map, shared per isolate (module scope outlives a request).
 *
 * Recency is a doubly linked list beside the Map, so a hit moves pointers and never
 * changes the Map. The obvious LRU on a JavaScript Map (delete the key and set it again to
 * move it to the end of the insertion order) costs time proportional to the Map's size in
 * V8, so a full cache made every request of a long-running gateway slower (docs/BENCHMARKS.md,
 * "The targets, and why four of them are missed", a long-running instance).
 */
interface Node<V> {
  key: string;
  value: V;
  expiresAt: number;
  older: Node<V> | null;
  newer: Node<V> | null;
}

export class LruCache<V> {
  readonly #entries = new Map<string, Node<V>>();
  /** Least recently used end. */
  #oldest: Node<V> | null = null;
  /** Most recently used end. */
  #newest: Node<V> | null = null;
  readonly maxEntries: number;

  constructor(maxEntries: number) {
    this.maxEntries = maxEntries;
  }

  /** The value if present and unexpired at `now`; a hit becomes the most recently used. */
  get(key: string, now: number): V | undefined {
    const node = this.#entries.get(key);
    if (node === undefined) return undefined;
    if (node.expiresAt <= now) {
      this.#remove(node);
      return undefined;
    }
    this.#touch(node);
    return node.value;
  }

  /** When the entry for `key` expires (ms), without touching its recency; undefined when absent. */
  expiresAt(key: string): number | undefined {
    return this.#entries.get(key)?.expiresAt;
  }

  set(key: string, value: V, expiresAt: number): void {
    const found = this.#entries.get(key);
    if (found !== undefined) {
      found.value = value;
      found.expiresAt = expiresAt;
      this.#touch(found);
      return;
    }
    const node: Node<V> = { key, value, expiresAt, older: this.#newest, newer: null };
    if (this.#newest !== null) this.#newest.newer = node;
    else this.#oldest = node;
    this.#newest = node;
    this.#entries.set(key, node);
    if (this.#entries.size > this.maxEntries && this.#oldest !== null) this.#remove(this.#oldest);
  }

  delete(key: string): void {
    const node = this.#entries.get(key);
    if (node !== undefined) this.#remove(node);
  }

  clear(): void {
    this.#entries.clear();
    this.#oldest = null;
    this.#newest = null;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Moves `node` to the most recently used end. */
  #touch(node: Node<V>): void {
    if (node === this.#newest) return;
    this.#unlink(node);
    node.older = this.#newest;
    node.newer = null;
    this.#newest!.newer = node;
    this.#newest = node;
  }

  #remove(node: Node<V>): void {
    this.#unlink(node);
    this.#entries.delete(node.key);
  }

  #unlink(node: Node<V>): void {
    if (node.older !== null) node.older.newer = node.newer;
    else this.#oldest = node.newer;
    if (node.newer !== null) node.newer.older = node.older;
    else this.#newest = node.older;
    node.older = null;
    node.newer = null;
  }
}
