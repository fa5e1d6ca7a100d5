/**
 * The replica's keys for parallel apply's writesets (writeset.ts `KeyLookup`), read through a query function and
 * cached until clear() (after DDL — a barrier, so no unit runs on stale keys — and on reconnect). `load()` reads
 * what a unit's tables need before its writeset is built; `lookup` then answers synchronously.
 * A table the replica does not have yet (created by a later DDL) has no entry: its transactions become barriers.
 */
import { quoteString } from '../../mysql/sql.ts';
import type { RowsQuery } from './fk.ts';
import {
  fkComponents,
  foreignKeyLinksSql,
  parseFkLinks,
  parseTableKeys,
  type TableRef,
  uniqueKeysSql,
} from './table-keys.ts';
import type { KeyLookup, TableKeys } from './writeset.ts';

const id = (schema: string, table: string): string => JSON.stringify([schema, table]);

export class KeysCache {
  readonly #q: RowsQuery;
  #components: Map<string, readonly TableRef[]> | null = null;
  readonly #byTable = new Map<string, TableKeys | undefined>();

  constructor(q: RowsQuery) {
    this.#q = q;
  }

  /** Reads the keys of every table in `tables` not cached yet (and the foreign-key components once). */
  async load(tables: Iterable<TableRef>): Promise<void> {
    for (const t of tables) {
      const k = id(t.schema, t.table);
      if (this.#byTable.has(k)) continue;
      if (!this.#components) this.#components = fkComponents(parseFkLinks(await this.#q(foreignKeyLinksSql())));
      const rows = await this.#q(uniqueKeysSql(t.schema, t.table));
      const exists = rows.length > 0 || (await this.#q(tableExistsSql(t))).length > 0;
      this.#byTable.set(k, exists ? parseTableKeys(t.schema, t.table, rows, this.#components) : undefined);
    }
  }

  readonly lookup: KeyLookup = (schema, table) => this.#byTable.get(id(schema, table));

  clear(): void {
    this.#components = null;
    this.#byTable.clear();
  }
}

/** One row when the base table exists (a table without unique keys has no STATISTICS rows to say so). */
function tableExistsSql(t: TableRef): string {
  return `SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(t.schema)} AND TABLE_NAME = ${quoteString(t.table)}`;
}
