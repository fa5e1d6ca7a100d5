/**
 * The writeset of one source transaction, for parallel apply (PARALLEL.md): what it may touch on the replica, as
 * hashed keys, so that two transactions whose writesets do not meet can be applied at the same time. Pure: no I/O
 * (the caller supplies what the replica's metadata says about each table: `TableKeys`).
 *
 *   row item    (schema, table, key name, key values) of the primary key and of every unique key, for the before
 *               AND the after image (an update that moves a key touches both the old and the new value)
 *   table item  a whole table, coarse: the tables a foreign key links the changed table to (parents and children:
 *               a cascade changes rows that are never in the journal), the changed table itself when a key column
 *               is not in the image, when it has no key at all (rows matched by their whole image) or when the
 *               transaction is too large to list its rows (`maxRowKeys`)
 *   barrier     DDL (TRUNCATE included), a table the metadata does not know:
 *               depends on everything before it, everything after depends on it
 *
 * Conservative by construction: a hash collision, a string fold coarser than the replica's collation or a table
 * item can only add dependencies, never remove one. String key values are folded (NFD, combining marks removed,
 * lower case, trailing spaces removed) because a case-/accent-insensitive or PAD SPACE unique key makes 'A' and
 * 'a ' the same key on the replica; a collation still finer-grained than that fold (say ß = ss) is caught by the
 * optimistic retry of PARALLEL.md ("a speculative failure is retried at the head").
 * Rows whose unique key holds a NULL do not conflict on that key (a unique index allows many NULLs).
 */
import { createHash } from 'node:crypto';
import type { DdlEntry, RowsEntry, Value } from '../../record/record.ts';

/** What the replica says about one table (information_schema.STATISTICS and the foreign keys). */
export interface TableKeys {
  /** Every unique key of the replica table, PRIMARY included: name and columns in key order. */
  readonly unique: readonly { readonly name: string; readonly columns: readonly string[] }[];
  /**
   * Tables linked to this one by foreign keys, either direction (parents it references, children referencing it),
   * transitively: a cascade from a parent reaches grandchildren too. The caller computes the closure (PARALLEL.md).
   */
  readonly fkTables?: readonly { readonly schema: string; readonly table: string }[];
  /** A unique key the writeset cannot hash (a column prefix, table-keys.ts): the table is taken whole. */
  readonly wholeTable?: boolean;
}

/** The replica's keys of schema.table; undefined: unknown (the transaction becomes a barrier). */
export type KeyLookup = (schema: string, table: string) => TableKeys | undefined;

export interface Writeset {
  /** Why this transaction must run alone (null: it need not). */
  readonly barrier: string | null;
  /** Row items: key hash → table id (tableId()). */
  readonly rows: ReadonlyMap<string, string>;
  /** Table items: table ids touched as a whole. */
  readonly tables: ReadonlySet<string>;
}

/** Default WritesetBuilder maxRowKeys: above it the transaction's tables are taken whole. */
export const MAX_ROW_KEYS = 10_000;

/** A table's identity in writesets; folded to lower case (lower_case_table_names may make two spellings one). */
export function tableId(schema: string, table: string): string {
  return JSON.stringify([schema.toLowerCase(), table.toLowerCase()]);
}

/** The coarse, collation-safe form of a key value (see the file comment). */
export function foldKeyValue(v: Value): string {
  if (v === null) return 'n';
  if (typeof v === 'bigint') return `i${v}`;
  if (typeof v === 'number') return `f${v === 0 ? 0 : v}`;
  if (typeof v === 'string') {
    const folded = v.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().replace(/ +$/, '');
    return `s${folded}`;
  }
  return `b${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
}

function hashKey(table: string, key: string, values: readonly string[]): string {
  return createHash('sha1')
    .update(JSON.stringify([table, key, values]))
    .digest('base64url')
    .slice(0, 16);
}

/** Collects the writeset of one transaction, entry by entry. */
export class WritesetBuilder {
  readonly #keys: KeyLookup;
  readonly #maxRowKeys: number;
  #barrier: string | null = null;
  #rows = new Map<string, string>();
  readonly #tables = new Set<string>();
  /** Too many row items: every table touched is taken whole. */
  #coarse = false;

  constructor(keys: KeyLookup, maxRowKeys = MAX_ROW_KEYS) {
    this.#keys = keys;
    this.#maxRowKeys = maxRowKeys;
  }

  add(e: RowsEntry | DdlEntry): void {
    if (this.#barrier !== null) return;
    if (e.kind === 'ddl') {
      this.#barrier = `DDL at seq ${e.seq}`;
      return;
    }
    const meta = this.#keys(e.schema, e.table);
    if (!meta) {
      this.#barrier = `no key metadata for ${tableId(e.schema, e.table)}`;
      return;
    }
    const t = tableId(e.schema, e.table);
    for (const fk of meta.fkTables ?? []) this.#tables.add(tableId(fk.schema, fk.table));
    const keys = [...meta.unique];
    if (e.pk.length > 0) keys.push({ name: '#source-pk', columns: e.pk });
    if (keys.length === 0) {
      // Rows matched by their whole image (LIMIT 1): any two transactions touching the table conflict.
      this.#tables.add(t);
      return;
    }
    const idx = keys.map((k) => k.columns.map((c) => e.columns.findIndex((col) => col.name === c)));
    if (this.#coarse || meta.wholeTable || idx.some((cols) => cols.some((i) => i < 0))) {
      // A key column the image lacks (generated on the replica, or not captured): the table as a whole.
      this.#tables.add(t);
      return;
    }
    for (const r of e.rows) {
      for (const img of [r.before, r.after]) {
        if (!img) continue;
        for (let k = 0; k < keys.length; k++) {
          const vals = idx[k]!.map((i) => img[i] ?? null);
          if (vals.some((v) => v === null)) continue;
          this.#rows.set(hashKey(t, keys[k]!.name, vals.map(foldKeyValue)), t);
        }
      }
      if (this.#rows.size > this.#maxRowKeys) {
        this.#coarsen();
        this.#tables.add(t);
        return;
      }
    }
  }

  #coarsen(): void {
    for (const t of this.#rows.values()) this.#tables.add(t);
    this.#rows = new Map();
    this.#coarse = true;
  }

  finish(): Writeset {
    if (this.#barrier !== null) return { barrier: this.#barrier, rows: new Map(), tables: new Set() };
    return { barrier: null, rows: this.#rows, tables: this.#tables };
  }
}

/**
 * Whether two transactions conflict, by the rule the scheduler applies incrementally (parallel-schedule.ts): a
 * shared row item, a table item of a table the other touches at all, or a barrier on either side.
 */
export function writesetsMeet(a: Writeset, b: Writeset): boolean {
  if (a.barrier !== null || b.barrier !== null) return true;
  for (const k of a.rows.keys()) if (b.rows.has(k)) return true;
  const touches = (w: Writeset, t: string): boolean => w.tables.has(t) || [...w.rows.values()].includes(t);
  for (const t of a.tables) if (touches(b, t)) return true;
  for (const t of b.tables) if (touches(a, t)) return true;
  return false;
}

/** The writeset of a whole transaction's entries. */
export function writesetOf(
  entries: Iterable<RowsEntry | DdlEntry>,
  keys: KeyLookup,
  maxRowKeys = MAX_ROW_KEYS,
): Writeset {
  const b = new WritesetBuilder(keys, maxRowKeys);
  for (const e of entries) b.add(e);
  return b.finish();
}
