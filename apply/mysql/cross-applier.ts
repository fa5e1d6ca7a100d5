/**
 * A PostgreSQL source applied to a MariaDB target (issue #14 item 8): wraps the MySQL applier and passes it the
 * journal with every rows entry translated through the PostgreSQL → MariaDB mapping (from-postgres.ts): the columns
 * become the target's own (checked against information_schema at a table's first row: a type that does not hold the
 * source's exactly is APPLY_TYPE_MAP, before anything of that table is written), the values the record Values the
 * MySQL applier writes (PostgreSQL text → bigint, number, exact DECIMAL text, UTC DATETIME text …). Everything
 * else — grouping, exactly once, the stored position — is the MySQL applier's. A DDL entry is refused.
 */
import type mysql from 'mysql2/promise';
import { TidemarkError } from '../../core/errors.ts';
import type { Applier, ApplyRunOptions, AppliedState, JournalItem } from '../../engine/target.ts';
import { type MysqlTargetColumn, mysqlTableColumns } from '../../mysql/cross-read.ts';
import { type MysqlEndpoint, openSession } from '../../mysql/session.ts';
import type { Column, RowImage, RowsEntry, Value } from '../../record/record.ts';
import { type ColumnAt, checkMysqlTarget, mysqlCreateTableSql, pgValueToMysql } from './from-postgres.ts';

/** The target Columns of a PostgreSQL entry's columns (each checked), or a clear error naming what is missing. */
export function mapColumns(e: RowsEntry, target: ReadonlyMap<string, MysqlTargetColumn>): Column[] {
  if (target.size === 0) {
    throw new TidemarkError(
      `table ${e.schema}.${e.table} does not exist on the MariaDB target: create it with the mapped types ` +
        `(apply/mysql/README.md "Cross-engine") before applying, e.g. ${mysqlCreateTableSql(e.schema, e.table, e.columns, e.pk)}`,
      { code: 'APPLY_BAD_ENTRY', context: { schema: e.schema, table: e.table } },
    );
  }
  return e.columns.map((c) => {
    const at: ColumnAt = { schema: e.schema, table: e.table, column: c.name };
    const t = target.get(c.name);
    if (!t) {
      throw new TidemarkError(
        `column ${e.schema}.${e.table}.${c.name} (source type ${c.columnType ?? c.type}) does not exist on the MariaDB target`,
        { code: 'APPLY_BAD_ENTRY', context: { ...at } },
      );
    }
    return checkMysqlTarget(at, c, t).column;
  });
}

/** A PostgreSQL rows entry as the MySQL applier's rows entry for `columns` (mapColumns). */
export function translateRows(e: RowsEntry, columns: readonly Column[]): RowsEntry {
  const image = (img: readonly Value[] | null) =>
    img
      ? img.map((v, i) =>
          pgValueToMysql({ schema: e.schema, table: e.table, column: e.columns[i]!.name }, e.columns[i]!, v),
        )
      : null;
  const rows: RowImage[] = e.rows.map((r) => ({ before: image(r.before), after: image(r.after) }));
  return { ...e, columns, rows };
}

export class FromPostgresApplier implements Applier {
  readonly #inner: Applier;
  readonly #endpoint: MysqlEndpoint;
  readonly #target: string;
  #meta: mysql.Connection | null = null;
  readonly #columns = new Map<string, Column[]>();

  constructor(inner: Applier, endpoint: MysqlEndpoint, targetName: string) {
    this.#inner = inner;
    this.#endpoint = endpoint;
    this.#target = targetName;
  }

  get state(): AppliedState | null {
    return this.#inner.state;
  }
  get hold(): string | null {
    return this.#inner.hold;
  }
  get promoted(): boolean {
    return this.#inner.promoted;
  }
  get lastReadLsn(): bigint {
    return this.#inner.lastReadLsn;
  }

  async open(): Promise<AppliedState | null> {
    this.#meta ??= await openSession(this.#endpoint, { apply: false });
    return this.#inner.open();
  }

  async #columnsOf(e: RowsEntry): Promise<Column[]> {
    const key = JSON.stringify([e.schema, e.table, e.columns.map((c) => [c.name, c.columnType ?? c.type])]);
    let cols = this.#columns.get(key);
    if (!cols) {
      if (!this.#meta) throw new TidemarkError('run() before open()', { code: 'APPLY_STATE' });
      const t = await mysqlTableColumns(this.#meta, e.schema, e.table);
      cols = mapColumns(e, new Map(t.columns.map((c) => [c.name, c])));
      this.#columns.set(key, cols);
    }
    return cols;
  }

  async *#translate(entries: AsyncIterable<JournalItem>): AsyncGenerator<JournalItem> {
    for await (const item of entries) {
      const e = item.entry;
      if (e.kind === 'rows') yield { lsn: item.lsn, entry: translateRows(e, await this.#columnsOf(e)) };
      else if (e.kind === 'ddl') {
        throw new TidemarkError(
          `target ${this.#target}: a DDL entry of the PostgreSQL source (seq ${e.seq}) is not translated to MariaDB: ` +
            'make the change on the target by hand, then `tidemark skip` the transaction',
          { code: 'APPLY_TYPE_MAP', context: { seq: `${e.seq}` } },
        );
      } else yield item;
    }
  }

  run(entries: AsyncIterable<JournalItem>, o: ApplyRunOptions): Promise<void> {
    return this.#inner.run(this.#translate(entries), o);
  }

  async close(): Promise<void> {
    await this.#inner.close();
    await this.#meta?.end().catch(() => {});
    this.#meta = null;
  }
}
