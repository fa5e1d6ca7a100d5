/**
 * Test support (not used by production code): builds journal entries by hand the way capture would write them,
 * and feeds them to MysqlApplier.run() as an async stream.
 */
import type { Column, CommitEntry, Entry, Phase, RowImage, RowsEntry, Value } from '../../record/record.ts';
import type mysql from 'mysql2/promise';
import type { JournalItem } from './applier.ts';
import { qualified, quoteIdent } from '../../mysql/sql.ts';
import { fromDriver } from './values.ts';

export interface TableDef {
  readonly schema: string;
  readonly table: string;
  readonly columns: readonly Column[];
  readonly pk: readonly string[];
}

export class TxBuilder {
  readonly entries: Entry[] = [];
  readonly #j: JournalBuilder;

  constructor(j: JournalBuilder) {
    this.#j = j;
  }

  #rows(t: TableDef, op: RowsEntry['op'], rows: RowImage[]): this {
    const e: RowsEntry = {
      kind: 'rows',
      source: this.#j.source,
      seq: this.#j.takeSeq(BigInt(rows.length)),
      txId: `tx-${this.#j.txCount}`,
      schema: t.schema,
      table: t.table,
      op,
      columns: t.columns,
      pk: t.pk,
      rows,
    };
    this.entries.push(e);
    return this;
  }

  insert(t: TableDef, rows: readonly (readonly Value[])[]): this {
    return this.#rows(
      t,
      'insert',
      rows.map((r) => ({ before: null, after: r })),
    );
  }

  update(t: TableDef, pairs: readonly (readonly [readonly Value[], readonly Value[]])[]): this {
    return this.#rows(
      t,
      'update',
      pairs.map(([before, after]) => ({ before, after })),
    );
  }

  delete(t: TableDef, rows: readonly (readonly Value[])[]): this {
    return this.#rows(
      t,
      'delete',
      rows.map((r) => ({ before: r, after: null })),
    );
  }

  ddl(schema: string, sql: string, tables: { schema: string; table: string }[] = []): this {
    this.entries.push({
      kind: 'ddl',
      source: this.#j.source,
      seq: this.#j.takeSeq(1n),
      txId: `tx-${this.#j.txCount}`,
      schema,
      tables,
      sql,
    });
    return this;
  }
}

/** An in-memory journal: every entry gets the next seq and LSN (LSNs start at 1 like the real journal). */
export class JournalBuilder {
  readonly source: string;
  readonly items: JournalItem[] = [];
  txCount = 0;
  #seq = 1n;
  #lsn = 1n;
  #offset = 4n;

  constructor(source = 'src') {
    this.source = source;
  }

  takeSeq(n: bigint): bigint {
    const s = this.#seq;
    this.#seq += n;
    return s;
  }

  /** Appends one source transaction (its entries and a commit). */
  tx(build: (t: TxBuilder) => void, phase: Phase = 'stream'): CommitEntry {
    this.txCount++;
    const b = new TxBuilder(this);
    build(b);
    let rows = 0n;
    for (const e of b.entries) if (e.kind === 'rows') rows += BigInt(e.rows.length);
    this.#offset += 100n;
    const commit: CommitEntry = {
      kind: 'commit',
      source: this.source,
      seq: this.takeSeq(1n),
      txId: `tx-${this.txCount}`,
      position: {
        kind: 'mysql',
        binlog: { file: 'mysql-bin.000001', offset: this.#offset },
        gtid: `0-1-${this.txCount}`,
      },
      commitTimeUs: 1_700_000_000_000_000n + BigInt(this.txCount),
      captureTimeUs: 1_700_000_000_000_000n + BigInt(this.txCount),
      rowCount: rows,
      phase,
    };
    for (const e of [...b.entries, commit]) this.items.push({ lsn: this.#lsn++, entry: e });
    return commit;
  }

  /** The items with lsn >= fromLsn as an async stream (like a journal reader that ends at the head). */
  async *read(fromLsn = 1n): AsyncGenerator<JournalItem> {
    for (const it of this.items) if (it.lsn >= fromLsn) yield it;
  }
}

/** Every row of `t` as record Values (exact: FLOAT read as its double, geometry as bytes), ordered by `order`. */
export async function readRows(conn: mysql.Connection, t: TableDef, order: string): Promise<Value[][]> {
  const sel = t.columns
    .map((c) => {
      const q = quoteIdent(c.name);
      if (c.type === 'float') return `CAST(${q} AS DOUBLE) AS ${q}`;
      if (c.type === 'geometry') return `CAST(${q} AS BINARY) AS ${q}`;
      return q;
    })
    .join(', ');
  const [rows] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT ${sel} FROM ${qualified(t.schema, t.table)} ORDER BY ${order}`,
  );
  return rows.map((r) => t.columns.map((c) => fromDriver(r[c.name], c)));
}
