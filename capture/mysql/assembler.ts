/**
 * Transaction assembler: a pure state machine fed with decoded binlog events (BinlogItem, see events.ts) that
 * produces the entries of the change-record model (record/record.ts) in order.
 *
 * Event groups (MariaDB; MySQL differs only in that BEGIN is a Query event after the GTID event):
 *   DML        GTID(standalone=false) TableMap Rows… XID                   (transactional engines)
 *              GTID(standalone=false) TableMap Rows… Query COMMIT          (non-transactional engines)
 *   DDL        GTID(standalone=true)  Query <ddl>                           (the DDL itself ends the group)
 *   CTAS       GTID(standalone=false) Query CREATE TABLE  TableMap Rows… XID
 *   other      GTID(standalone=true)  Query GRANT/FLUSH/CREATE USER…       (skipped)
 *
 * Each rows event of an included table becomes one `rows` entry; a DDL statement on an included table becomes
 * a `ddl` entry; the end of a group with entries becomes its `commit` entry (phase "stream") whose position is
 * {current file, end offset of the commit event} and whose gtid is the executed-GTID state after it. A group
 * without entries (only excluded tables, skipped statements) produces nothing, but `position` moves past it.
 * Every entry takes seqs from a counter starting at `nextSeq` (a rows entry takes one per row).
 *
 * Replay: when a stream is cut inside a transaction after some of its entries were already handed to the sink,
 * the next stream restarts at the group's start with `replay` = {txId, seq, entries}: the first `entries`
 * entries of that group are regenerated with the same seqs but not output again, so the journal sees each
 * entry exactly once.
 */
import type { MysqlPosition } from '../../record/position.ts';
import type { Column, CommitEntry, DdlEntry, RowImage, RowOp, RowsEntry } from '../../record/record.ts';
import { TidemarkError } from '../../record/errors.ts';
import { classifyStatement, type TableRef } from './ddl.ts';
import type { TableFilter } from './filter.ts';

/** A decoded binlog event, reduced to what capture needs. Offsets are end offsets (the next event's start). */
export type BinlogItem =
  | { readonly type: 'rotate'; readonly file: string; readonly offset: bigint }
  | {
      readonly type: 'gtid';
      /** "domain-server-seq" (MariaDB) or "uuid:n" (MySQL). */
      readonly gtid: string;
      /** MariaDB: group has no terminating COMMIT/XID (DDL, admin statements). null when unknown (MySQL). */
      readonly standalone: boolean | null;
      /** The group is an XA PREPARE / XA COMMIT group. */
      readonly xa: boolean;
      readonly endOffset: bigint;
    }
  | {
      readonly type: 'query';
      readonly schema: string;
      readonly sql: string;
      readonly timestampMs: number;
      readonly endOffset: bigint;
    }
  | { readonly type: 'xid'; readonly timestampMs: number; readonly endOffset: bigint }
  | { readonly type: 'xa-prepare'; readonly endOffset: bigint }
  | {
      readonly type: 'rows';
      readonly op: RowOp;
      readonly schema: string;
      readonly table: string;
      readonly columns: readonly Column[];
      /** Primary key column names; null when the table map did not say (resolved by the stream). */
      readonly pk: readonly string[] | null;
      readonly rows: readonly RowImage[];
      /** The rows event's NO_FOREIGN_KEY_CHECKS flag was set (RowsEntry.fkChecksOff). */
      readonly fkChecksOff?: boolean;
    };

export type AssemblerOutput =
  | { readonly kind: 'append'; readonly entry: RowsEntry | DdlEntry }
  | { readonly kind: 'commit'; readonly entry: CommitEntry };

/** A transaction cut after some of its entries reached the sink (see Replay above). */
export interface PartialTx {
  readonly txId: string;
  /** Seq of the transaction's first entry. */
  readonly seq: bigint;
  /** Entries of the transaction already handed to the sink. */
  readonly entries: number;
}

export interface AssemblerOptions {
  readonly source: string;
  readonly filter: TableFilter;
  /** Where reading starts (end of the last complete group); its gtid seeds the GTID state. */
  readonly start: MysqlPosition;
  readonly nextSeq: bigint;
  readonly replay?: PartialTx | null;
  /** Capture clock, microseconds since the epoch. */
  readonly nowUs?: () => bigint;
  /** Called for statements that are neither transaction control nor captured DDL (keyword label only). */
  readonly onSkippedStatement?: (statement: string, schema: string) => void;
}

interface OpenTx {
  readonly txId: string;
  readonly gtid: string | null;
  readonly seq: bigint;
  /** Ends with its first Query event (MariaDB standalone group, or MySQL DDL without BEGIN). */
  readonly standalone: boolean;
  entries: number;
  rowCount: bigint;
}

/** Executed-GTID state per replication domain ("0-1-42,1-3-7"), MariaDB flavour. */
class GtidState {
  private readonly domains = new Map<string, string>();
  readonly seeded: boolean;
  constructor(seed: string | undefined) {
    this.seeded = seed !== undefined && seed !== '';
    for (const g of (seed ?? '').split(',')) {
      const d = /^(\d+)-\d+-\d+$/.exec(g.trim());
      if (d?.[1]) this.domains.set(d[1], g.trim());
    }
  }
  add(gtid: string): string {
    const d = /^(\d+)-\d+-\d+$/.exec(gtid);
    if (!d?.[1] || !this.seeded) return gtid; // MySQL uuid:n, or no seed: report the transaction's own GTID
    this.domains.set(d[1], gtid);
    return [...this.domains.entries()]
      .sort((a, b) => Number(a[0]) - Number(b[0]))
      .map(([, g]) => g)
      .join(',');
  }
}

export class TransactionAssembler {
  private readonly opts: AssemblerOptions;
  private readonly nowUs: () => bigint;
  private readonly gtids: GtidState;
  private file: string;
  private lastEnd: bigint;
  private pos: MysqlPosition;
  private seq: bigint;
  private pendingGtid: { gtid: string; standalone: boolean | null; xa: boolean } | null = null;
  private tx: OpenTx | null = null;
  private replay: PartialTx | null;

  constructor(opts: AssemblerOptions) {
    this.opts = opts;
    this.nowUs = opts.nowUs ?? (() => BigInt(Date.now()) * 1000n);
    this.gtids = new GtidState(opts.start.gtid);
    this.file = opts.start.binlog.file;
    this.lastEnd = opts.start.binlog.offset;
    this.pos = opts.start;
    this.seq = opts.nextSeq;
    this.replay = opts.replay && opts.replay.entries > 0 ? opts.replay : null;
  }

  /** Position after the last complete event group, included or not: the resume point. */
  get position(): MysqlPosition {
    return this.pos;
  }

  get nextSeq(): bigint {
    return this.seq;
  }

  /** The open transaction if some of its entries were output (what a restart must replay), else null. */
  partial(): PartialTx | null {
    const t = this.tx;
    return t && t.entries > 0 ? { txId: t.txId, seq: t.seq, entries: t.entries } : null;
  }

  feed(item: BinlogItem): AssemblerOutput[] {
    switch (item.type) {
      case 'rotate':
        this.file = item.file;
        this.lastEnd = item.offset;
        if (!this.tx) this.pos = { ...this.pos, binlog: { file: item.file, offset: item.offset } };
        return [];
      case 'gtid':
        return this.onGtid(item);
      case 'query':
        return this.onQuery(item);
      case 'xid':
        return this.endGroup(item.endOffset, item.timestampMs);
      case 'xa-prepare':
        throw this.xaError();
      case 'rows':
        return this.onRows(item);
    }
  }

  private xaError(): TidemarkError {
    return new TidemarkError(
      `XA transaction in the binlog at ${this.file}:${this.lastEnd}: tidemark does not capture XA transactions; ` +
        'commit them as ordinary transactions on the source',
      { code: 'UNSUPPORTED_XA', retriable: false, context: { file: this.file, offset: this.lastEnd } },
    );
  }

  private onGtid(item: Extract<BinlogItem, { type: 'gtid' }>): AssemblerOutput[] {
    if (this.tx && this.tx.entries > 0) {
      throw new TidemarkError(
        `binlog group ${this.tx.txId} at ${this.file}:${this.lastEnd} has no commit event before the next GTID`,
        { code: 'BINLOG_SEQUENCE', retriable: false, context: { file: this.file, offset: this.lastEnd } },
      );
    }
    this.tx = null;
    if (item.xa) throw this.xaError();
    this.pendingGtid = { gtid: item.gtid, standalone: item.standalone, xa: item.xa };
    const start = this.lastEnd;
    if (item.endOffset > 0n) this.lastEnd = item.endOffset;
    // MariaDB: a non-standalone GTID event is the BEGIN of its transaction.
    if (item.standalone === false) this.openTx(false, start);
    return [];
  }

  private openTx(standalone: boolean, startOffset: bigint): OpenTx {
    const gtid = this.pendingGtid?.gtid ?? null;
    this.pendingGtid = null;
    const txId = gtid ?? `${this.file}:${startOffset}`;
    const tx: OpenTx = { txId, gtid, seq: this.seq, standalone, entries: 0, rowCount: 0n };
    if (this.replay && this.replay.txId !== txId) {
      throw new TidemarkError(
        `resume expected transaction ${this.replay.txId} first but read ${txId} at ${this.file}:${startOffset}`,
        { code: 'RESUME_MISMATCH', retriable: false, context: { file: this.file } },
      );
    }
    this.tx = tx;
    return tx;
  }

  private onQuery(item: Extract<BinlogItem, { type: 'query' }>): AssemblerOutput[] {
    const start = this.lastEnd;
    if (item.endOffset > 0n) this.lastEnd = item.endOffset;
    const cls = classifyStatement(item.sql, item.schema);
    switch (cls.kind) {
      case 'begin':
        if (!this.tx) this.openTx(false, start);
        return [];
      case 'commit':
      case 'rollback':
        // ROLLBACK ends a group only when non-transactional changes were logged; those did happen.
        return this.endGroup(item.endOffset, item.timestampMs);
      case 'xa':
        throw this.xaError();
      case 'other': {
        this.opts.onSkippedStatement?.(cls.statement, item.schema);
        // Outside a transaction the statement is a group of its own; inside one (SAVEPOINT…) it changes nothing.
        return !this.tx || this.tx.standalone ? this.endGroup(item.endOffset, item.timestampMs) : [];
      }
      case 'table-ddl':
      case 'database-ddl': {
        const tx = this.tx ?? this.openTx(true, start);
        const included =
          cls.kind === 'table-ddl'
            ? cls.tables.some((t) => this.opts.filter.includesTable(t.schema, t.table))
            : this.opts.filter.includesSchema(cls.database);
        const out: AssemblerOutput[] = [];
        if (included) {
          const tables: readonly TableRef[] = cls.kind === 'table-ddl' ? cls.tables : [];
          const entry: DdlEntry = {
            kind: 'ddl',
            source: this.opts.source,
            seq: this.seq,
            txId: tx.txId,
            schema: item.schema,
            tables: tables.map((t) => ({ schema: t.schema, table: t.table })),
            sql: item.sql,
          };
          this.seq += 1n;
          this.emit(out, tx, entry);
        } else {
          this.opts.onSkippedStatement?.(cls.statement, item.schema);
        }
        if (tx.standalone) out.push(...this.endGroup(item.endOffset, item.timestampMs));
        return out;
      }
    }
  }

  private onRows(item: Extract<BinlogItem, { type: 'rows' }>): AssemblerOutput[] {
    if (!this.opts.filter.includesTable(item.schema, item.table)) return [];
    const tx = this.tx ?? this.openTx(false, this.lastEnd);
    const entry: RowsEntry = {
      kind: 'rows',
      source: this.opts.source,
      seq: this.seq,
      txId: tx.txId,
      schema: item.schema,
      table: item.table,
      op: item.op,
      columns: item.columns,
      pk: item.pk ?? [],
      rows: item.rows,
      ...(item.fkChecksOff ? { fkChecksOff: true } : {}),
    };
    this.seq += BigInt(item.rows.length);
    tx.rowCount += BigInt(item.rows.length);
    const out: AssemblerOutput[] = [];
    this.emit(out, tx, entry);
    return out;
  }

  private emit(out: AssemblerOutput[], tx: OpenTx, entry: RowsEntry | DdlEntry): void {
    tx.entries++;
    if (this.replay && tx.entries <= this.replay.entries) {
      if (tx.entries === this.replay.entries) this.replay = null;
      return; // already in the sink from the cut stream
    }
    out.push({ kind: 'append', entry });
  }

  private endGroup(endOffset: bigint, timestampMs: number): AssemblerOutput[] {
    if (endOffset <= 0n) {
      // A commit without its end offset would make a wrong resume point: refuse rather than guess.
      throw new TidemarkError(`commit event in ${this.file} after offset ${this.lastEnd} has no end offset`, {
        code: 'BINLOG_SEQUENCE',
        retriable: false,
        context: { file: this.file },
      });
    }
    this.lastEnd = endOffset;
    const tx = this.tx;
    const gtid = tx?.gtid ?? this.pendingGtid?.gtid ?? null;
    this.tx = null;
    this.pendingGtid = null;
    const state = gtid ? this.gtids.add(gtid) : this.pos.gtid;
    const position: MysqlPosition = {
      kind: 'mysql',
      binlog: { file: this.file, offset: endOffset },
      ...(state ? { gtid: state } : {}),
    };
    this.pos = position;
    if (!tx || tx.entries === 0) return [];
    if (this.replay) {
      throw new TidemarkError(`resume of transaction ${this.replay.txId} ended before its already-written entries`, {
        code: 'RESUME_MISMATCH',
        retriable: false,
      });
    }
    const entry: CommitEntry = {
      kind: 'commit',
      source: this.opts.source,
      seq: this.seq,
      txId: tx.txId,
      position,
      // Binlog event timestamps have one-second resolution (the statement start time of the commit).
      commitTimeUs: BigInt(timestampMs) * 1000n,
      captureTimeUs: this.nowUs(),
      rowCount: tx.rowCount,
      phase: 'stream',
    };
    this.seq += 1n;
    return [{ kind: 'commit', entry }];
  }
}
