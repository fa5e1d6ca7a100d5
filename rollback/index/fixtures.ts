/** Test helpers: write hand-made transactions into a journal and dump what an index answers. */
import type { Column, CommitEntry, RowImage, RowOp, RowsEntry, Value } from '../../record/record.ts';
import { JournalSink } from '../../ship/journal/entries.ts';
import { JournalWriter } from '../../ship/journal/writer.ts';
import type { RollbackIndex } from './rollback-index.ts';

export interface TableDef {
  schema: string;
  table: string;
  columns: Column[];
  pk: string[];
}

export const ORDERS: TableDef = {
  schema: 'shop',
  table: 'orders',
  columns: [
    { name: 'id', type: 'bigint' },
    { name: 'note', type: 'varchar' },
  ],
  pk: ['id'],
};

export const LINES: TableDef = {
  schema: 'shop',
  table: 'lines',
  columns: [
    { name: 'order_id', type: 'bigint' },
    { name: 'line', type: 'varchar' },
    { name: 'qty', type: 'int' },
  ],
  pk: ['order_id', 'line'],
};

export const LOG: TableDef = { schema: 'shop', table: 'log', columns: [{ name: 'msg', type: 'text' }], pk: [] };

export type Part =
  | { t: TableDef; op: RowOp; rows: [readonly Value[] | null, readonly Value[] | null][] }
  | { ddl: string; schema: string; tables: { schema: string; table: string }[] };

export class TestJournal {
  readonly dir: string;
  readonly writer: JournalWriter;
  readonly sink: JournalSink;
  seq = 1n;
  timeUs = 1_700_000_000_000_000n;
  private n = 0;

  private constructor(dir: string, writer: JournalWriter) {
    this.dir = dir;
    this.writer = writer;
    this.sink = new JournalSink(writer);
  }

  static async open(dir: string, segmentBytes = 4096): Promise<TestJournal> {
    const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes });
    const j = new TestJournal(dir, w);
    const last = j.sink.lastCommit();
    if (last) {
      j.seq = last.seq + 1n;
      j.timeUs = last.commitTimeUs;
    }
    return j;
  }

  /** Appends a transaction's entries without its commit. */
  async entries(parts: Part[], txId: string): Promise<bigint> {
    const first = this.seq;
    for (const p of parts) {
      if ('ddl' in p) {
        await this.sink.append({
          kind: 'ddl',
          source: 's',
          seq: this.seq,
          txId,
          schema: p.schema,
          tables: p.tables,
          sql: p.ddl,
        });
        this.seq++;
        continue;
      }
      const rows: RowImage[] = p.rows.map(([before, after]) => ({ before, after }));
      const e: RowsEntry = {
        kind: 'rows',
        source: 's',
        seq: this.seq,
        txId,
        schema: p.t.schema,
        table: p.t.table,
        op: p.op,
        columns: p.t.columns,
        pk: p.t.pk,
        rows,
      };
      await this.sink.append(e);
      this.seq += BigInt(rows.length);
    }
    return first;
  }

  /** A complete transaction; returns its commit entry. */
  async tx(parts: Part[], o: { timeUs?: bigint; txId?: string } = {}): Promise<CommitEntry> {
    const txId = o.txId ?? `0-1-${++this.n}`;
    await this.entries(parts, txId);
    this.timeUs = o.timeUs ?? this.timeUs + 1_000_000n;
    const rowCount = parts.reduce((s, p) => s + ('ddl' in p ? 0n : BigInt(p.rows.length)), 0n);
    const c: CommitEntry = {
      kind: 'commit',
      source: 's',
      seq: this.seq,
      txId,
      position: { kind: 'mysql', binlog: { file: 'bin.000001', offset: this.seq * 100n }, gtid: txId },
      commitTimeUs: this.timeUs,
      captureTimeUs: this.timeUs + 5n,
      rowCount,
      phase: 'stream',
    };
    await this.sink.commit(c);
    this.seq++;
    return c;
  }

  async close(): Promise<void> {
    await this.writer.close();
  }
}

export function ins(t: TableDef, ...rows: (readonly Value[])[]): Part {
  return { t, op: 'insert', rows: rows.map((r) => [null, r]) };
}
export function upd(t: TableDef, ...rows: [readonly Value[], readonly Value[]][]): Part {
  return { t, op: 'update', rows };
}
export function del(t: TableDef, ...rows: (readonly Value[])[]): Part {
  return { t, op: 'delete', rows: rows.map((r) => [r, null]) };
}

/** Everything an index answers about the given keys, as plain JSON-able text (for "answers identically"). */
export function dumpIndex(index: RollbackIndex, keys: [string, string, string][]): string {
  const txs = index.listTxs({});
  const out = {
    indexedLsn: index.indexedLsn,
    txs,
    entries: txs.map((t) => index.entriesOf(t.commitSeq)),
    keys: keys.map(([s, t, k]) => index.keyVersions(s, t, k)),
    ddl: index.ddlBetween(0n, 1n << 62n),
    pks: keys.map(([s, t]) => index.primaryKey(s, t)),
  };
  return JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
}
