/**
 * What apply (group-rows.ts) and rewind/forward/undo (rollback/server.ts) know of a table on the server they write:
 * its generated columns (the server computes them: never written or compared) and, for a system-versioned table,
 * its period (versioned.ts). Read once per table, until clear() (after DDL, on reconnect).
 */
import type { SystemPeriod } from '../../record/versioning.ts';
import { generatedColumnsSql } from '../../mysql/sql.ts';
import { tablePeriod } from './versioned.ts';

export interface TableMeta {
  readonly skip: ReadonlySet<string>;
  readonly period: SystemPeriod | null;
}

/** Runs one query and returns its rows. */
type RowsQuery = (sql: string) => Promise<readonly Record<string, unknown>[]>;

export class TableMetaCache {
  readonly #rows: RowsQuery;
  readonly #byTable = new Map<string, TableMeta>();

  constructor(rows: RowsQuery) {
    this.#rows = rows;
  }

  /** The cached meta of a table, or undefined when get() must read it (no promise for the common case). */
  peek(schema: string, table: string): TableMeta | undefined {
    return this.#byTable.get(`${schema}\u0000${table}`);
  }

  async get(schema: string, table: string): Promise<TableMeta> {
    const cached = this.peek(schema, table);
    if (cached) return cached;
    const generated = await this.#rows(generatedColumnsSql(schema, table));
    const period = await tablePeriod(this.#rows, schema, table);
    const m = { skip: new Set(generated.map((r) => String(r['name']))), period };
    this.#byTable.set(`${schema}\u0000${table}`, m);
    return m;
  }

  clear(): void {
    this.#byTable.clear();
  }
}
