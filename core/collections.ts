/**
 * Two small collection helpers the hot paths of capture, apply and rewind share (no I/O, no tidemark imports).
 */

/** Element-wise equality (===) of two lists. */
export function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A bounded cache keyed by schema, then table: a lookup joins no key string (it runs per binlog event or journal
 * entry). At most `maxSchemas` schemas and `maxTables` tables per schema: past a bound, that level starts over.
 */
export class ByTable<V> {
  readonly #bySchema = new Map<string, Map<string, V>>();
  readonly #maxSchemas: number;
  readonly #maxTables: number;

  constructor(maxSchemas: number, maxTables: number) {
    this.#maxSchemas = maxSchemas;
    this.#maxTables = maxTables;
  }

  get(schema: string, table: string): V | undefined {
    return this.#bySchema.get(schema)?.get(table);
  }

  set(schema: string, table: string, v: V): void {
    let tables = this.#bySchema.get(schema);
    if (tables === undefined) {
      if (this.#bySchema.size >= this.#maxSchemas) this.#bySchema.clear();
      tables = new Map();
      this.#bySchema.set(schema, tables);
    }
    if (tables.size >= this.#maxTables) tables.clear();
    tables.set(table, v);
  }

  clear(): void {
    this.#bySchema.clear();
  }
}
