/**
 * Transaction assembler: a pure state machine fed with decoded binlog events (BinlogItem, binlog-item.ts) that
 * produces the entries of the change-record model (record/record.ts) in order.
 *
 * Event groups (MariaDB; MySQL differs only in that BEGIN is a Query event after the GTID event):
 *   DML        GTID(standalone=false) TableMap Rows… XID                   (transactional engines)
 *              GTID(standalone=false) TableMap Rows… Query COMMIT          (non-transactional engines)
 *   DDL        GTID(standalone=true)  Query <ddl>                           (the DDL itself ends the group)
 *   CTAS       GTID(standalone=false) Query CREATE TABLE  TableMap Rows… XID
 *   objects    GTID(standalone=true)  Query CREATE/ALTER/DROP VIEW|PROCEDURE|FUNCTION|TRIGGER|EVENT
 *   accounts   GTID(standalone=true)  Query GRANT/REVOKE/CREATE USER/…     (kept when about listed accounts)
 *   other      GTID(standalone=true)  Query FLUSH/…                        (skipped)
 *
 * Each rows event of an included table becomes one `rows` entry; a DDL statement on an included table becomes
 * a `ddl` entry, and so does the DDL of a view, routine, trigger or event of an included schema (objectIncluded;
 * `tables` empty: they hold no rows), and so does a user/role/grant statement whose every account is in
 * `accounts` (source.accounts; one naming listed and other accounts is skipped with onMixedAccounts: running it
 * on a replica would touch accounts that are not tidemark's); the end of a group with entries becomes its `commit` entry (phase "stream") whose position is
 * {current file, end offset of the commit event} and whose gtid is the executed-GTID state after it. A group
 * without entries (only excluded tables, skipped statements) produces nothing, but `position` moves past it.
 * Every entry takes seqs from a counter starting at `nextSeq` (a rows entry takes one per row). Which statements
 * are captured and what they become: statement-scope.ts.
 *
 * Replay: when a stream is cut inside a transaction after some of its entries were already handed to the sink,
 * the next stream restarts at the group's start with `replay` = {txId, seq, entries}: the first `entries`
 * entries of that group are regenerated with the same seqs but not output again, so the journal sees each
 * entry exactly once.
 */
import type { MysqlPosition } from '../../record/position.ts';
import type { CommitEntry, CopiedTable, DdlEntry, RowsEntry } from '../../record/record.ts';
import { TidemarkError } from '../../core/errors.ts';
import type { BinlogItem } from './binlog-item.ts';
import { classifyStatement, type StatementClass, type TableRef } from './ddl.ts';
import type { CrossSchemaStep } from './ddl-crossschema.ts';
import { CopyWindows } from './copy-windows.ts';
import { isStatementCtas, TemporaryTables } from './dml.ts';
import { GtidState } from './gtid-state.ts';
import { statementDmlError, xaIncludedError, xidOfStatement } from './statement-errors.ts';
import { accountsIncluded, ddlSteps, objectIncluded, statementDmlHits } from './statement-scope.ts';
import type { AssemblerOptions, AssemblerOutput, PartialTx } from './assembler-types.ts';

export type { AssemblerOptions, AssemblerOutput, PartialTx } from './assembler-types.ts';

interface OpenTx {
  readonly txId: string;
  readonly gtid: string | null;
  readonly seq: bigint;
  /** Ends with its first Query event (MariaDB standalone group, or MySQL DDL without BEGIN). */
  readonly standalone: boolean;
  entries: number;
  rowCount: bigint;
  /** An XA PREPARE group: its id and the included tables it changes (never journaled, see onXaEnd). */
  xa: { readonly xid: string; readonly tables: Set<string> } | null;
}

export class TransactionAssembler {
  private readonly opts: AssemblerOptions;
  private readonly nowUs: () => bigint;
  private readonly gtids: GtidState;
  private file: string;
  private lastEnd: bigint;
  private pos: MysqlPosition;
  private seq: bigint;
  private pendingGtid: { gtid: string; standalone: boolean | null; xa: false | 'prepare' | 'complete' } | null = null;
  private lastCommitTimeUs: bigint;
  private readonly temps = new TemporaryTables();
  private tx: OpenTx | null = null;
  private replay: PartialTx | null;
  private readonly windows: CopyWindows;

  constructor(opts: AssemblerOptions) {
    this.opts = opts;
    this.nowUs = opts.nowUs ?? (() => BigInt(Date.now()) * 1000n);
    this.gtids = new GtidState(opts.start.gtid);
    this.file = opts.start.binlog.file;
    this.lastEnd = opts.start.binlog.offset;
    this.pos = opts.start;
    this.seq = opts.nextSeq;
    this.replay = opts.replay && opts.replay.entries > 0 ? opts.replay : null;
    this.windows = new CopyWindows(opts.copied);
    this.lastCommitTimeUs = opts.lastCommitTimeUs ?? 0n;
  }

  /** The binlog file being read (where the next event's offsets point). */
  get currentFile(): string {
    return this.file;
  }

  /** Position after the last complete event group, included or not: the resume point. */
  get position(): MysqlPosition {
    return this.pos;
  }

  /** Open copy windows (for a stream that continues after this one). */
  get copyWindows(): readonly CopiedTable[] {
    return this.windows.list();
  }

  /** The stream copied tables (a `copy` output) taking `seqs` seqs: later entries continue after them. */
  copied(tables: readonly CopiedTable[], seqs: bigint): void {
    for (const c of tables) this.windows.add(c);
    this.seq += seqs;
  }

  /** Captured here: included by the filter and not inside a copy window (copy-windows.ts). */
  private readonly includes = (schema: string, table: string): boolean => {
    if (!this.opts.filter.includesTable(schema, table)) return false;
    return !this.windows.covers(schema, table, { file: this.file, offset: this.lastEnd });
  };

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
        return this.onXaEnd(item.endOffset, 0);
      case 'rows':
        return this.onRows(item);
      case 'opaque':
        return [];
    }
  }

  private onGtid(item: Extract<BinlogItem, { type: 'gtid' }>): AssemblerOutput[] {
    if (this.tx && this.tx.entries > 0) {
      throw new TidemarkError(
        `binlog group ${this.tx.txId} at ${this.file}:${this.lastEnd} has no commit event before the next GTID`,
        { code: 'BINLOG_SEQUENCE', retriable: false, context: { file: this.file, offset: this.lastEnd } },
      );
    }
    this.tx = null;
    this.pendingGtid = { gtid: item.gtid, standalone: item.standalone, xa: item.xa };
    const start = this.lastEnd;
    if (item.endOffset > 0n) this.lastEnd = item.endOffset;
    // MariaDB: a non-standalone GTID event is the BEGIN of its transaction.
    if (item.standalone === false || item.xa === 'prepare') {
      const tx = this.openTx(false, start);
      if (item.xa === 'prepare') tx.xa = { xid: item.xid ?? '?', tables: new Set() };
    }
    return [];
  }

  private openTx(standalone: boolean, startOffset: bigint): OpenTx {
    const gtid = this.pendingGtid?.gtid ?? null;
    this.pendingGtid = null;
    const txId = gtid ?? `${this.file}:${startOffset}`;
    const tx: OpenTx = { txId, gtid, seq: this.seq, standalone, entries: 0, rowCount: 0n, xa: null };
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
        return this.onXaStatement(item, start);
      case 'dml':
        return this.onDml(cls, item, start);
      case 'other': {
        this.temps.track(item.sql, item.schema, item.threadId);
        this.opts.onSkippedStatement?.(cls.statement, item.schema);
        // Outside a transaction the statement is a group of its own; inside one (SAVEPOINT…) it changes nothing.
        return !this.tx || this.tx.standalone ? this.endGroup(item.endOffset, item.timestampMs) : [];
      }
      case 'account-ddl':
      case 'object-ddl': {
        const kept =
          cls.kind === 'object-ddl'
            ? objectIncluded(cls.object, this.opts, this.includes)
            : accountsIncluded(cls, this.opts);
        if (!kept) {
          this.opts.onSkippedStatement?.(cls.statement, item.schema);
          return !this.tx || this.tx.standalone ? this.endGroup(item.endOffset, item.timestampMs) : [];
        }
        const tx = this.tx ?? this.openTx(true, start);
        const out: AssemblerOutput[] = [];
        this.emitSteps(out, tx, item.schema, [{ kind: 'ddl', sql: item.sql, tables: [] }]);
        if (tx.standalone) out.push(...this.endGroup(item.endOffset, item.timestampMs));
        return out;
      }
      case 'table-ddl':
      case 'database-ddl': {
        // CREATE TABLE … SELECT logged as a statement (MIXED/STATEMENT; ROW logs the definition and the rows).
        if (cls.kind === 'table-ddl' && cls.statement === 'CREATE TABLE' && isStatementCtas(item.sql)) {
          const ctas = {
            kind: 'dml',
            statement: 'CREATE TABLE … SELECT',
            tables: cls.tables,
            unknownTarget: false,
          } as const;
          return this.onDml(ctas, item, start);
        }
        const tx = this.tx ?? this.openTx(true, start);
        const where = { file: this.file, offset: start, gtid: tx.gtid };
        const steps = ddlSteps(cls, item.sql, this.opts, this.includes, where);
        const out: AssemblerOutput[] = [];
        if (steps) this.emitSteps(out, tx, item.schema, steps);
        else this.opts.onSkippedStatement?.(cls.statement, item.schema);
        if (tx.standalone) out.push(...this.endGroup(item.endOffset, item.timestampMs));
        return out;
      }
    }
  }

  /**
   * Statement-logged DML (a session with binlog_format=STATEMENT, or MIXED): its changes are not in the binlog
   * as rows, so on an included table capture must stop rather than lose them. Elsewhere it is ignored.
   */
  private onDml(
    cls: Extract<StatementClass, { kind: 'dml' }>,
    item: Extract<BinlogItem, { type: 'query' }>,
    start: bigint,
  ): AssemblerOutput[] {
    const hit = statementDmlHits(cls, item.schema, item.threadId, this.opts.filter, this.temps);
    if (hit) {
      const gtid = this.tx?.gtid ?? this.pendingGtid?.gtid ?? null;
      throw statementDmlError({
        statement: cls.statement,
        tables: hit,
        schema: item.schema,
        file: this.file,
        offset: start,
        gtid,
      });
    }
    this.opts.onSkippedStatement?.(cls.statement, item.schema);
    return !this.tx || this.tx.standalone ? this.endGroup(item.endOffset, item.timestampMs) : [];
  }

  /** XA statements: XA START (MySQL), XA END, XA PREPARE/COMMIT/ROLLBACK (ending a group of their own). */
  private onXaStatement(item: Extract<BinlogItem, { type: 'query' }>, start: bigint): AssemblerOutput[] {
    const x = xidOfStatement(item.sql);
    if (x.verb === 'START') {
      // MySQL marks an XA group only by this statement (MariaDB by the GTID event's flags).
      const tx = this.tx ?? this.openTx(false, start);
      tx.xa ??= { xid: x.xid, tables: new Set() };
      return [];
    }
    if (x.verb === 'END') return [];
    if (this.tx?.xa) return this.onXaEnd(item.endOffset, item.timestampMs);
    // XA COMMIT / XA ROLLBACK of a prepared transaction: its rows were in the prepare group, which either touched
    // no included table or stopped capture (onXaEnd). Nothing to journal; the position moves on.
    return this.endGroup(item.endOffset, item.timestampMs);
  }

  /**
   * End of an XA PREPARE group. Its rows are not committed yet (XA COMMIT may come much later, or XA ROLLBACK),
   * and tidemark does not hold prepared changes, so a prepared transaction on included tables stops capture
   * (resume stays before it); one on other tables is skipped like any transaction on them.
   */
  private onXaEnd(endOffset: bigint, timestampMs: number): AssemblerOutput[] {
    const tx = this.tx;
    if (tx?.xa && tx.xa.tables.size > 0) {
      throw xaIncludedError({
        xid: tx.xa.xid,
        tables: [...tx.xa.tables],
        file: this.file,
        offset: this.pos.binlog.offset,
        gtid: tx.gtid,
      });
    }
    return this.endGroup(endOffset, timestampMs);
  }

  /** A DDL's steps (ddlSteps) as DDL entries and, for tables copied from the source, one copy request. */
  private emitSteps(out: AssemblerOutput[], tx: OpenTx, schema: string, steps: readonly CrossSchemaStep[]): void {
    const copies: TableRef[] = [];
    for (const st of steps) {
      if (st.kind === 'copy') {
        copies.push(st.table);
        continue;
      }
      const tables = st.tables.map((t) => ({ schema: t.schema, table: t.table }));
      this.emit(out, tx, {
        kind: 'ddl',
        source: this.opts.source,
        seq: this.seq,
        txId: tx.txId,
        schema,
        tables,
        sql: st.sql,
      });
      this.seq += 1n;
    }
    // Copies come last among the steps; one request, so all their definitions precede all their rows.
    if (copies.length > 0) {
      tx.entries++;
      out.push({ kind: 'copy', tables: copies, txId: tx.txId, seq: this.seq });
    }
  }

  private onRows(item: Extract<BinlogItem, { type: 'rows' }>): AssemblerOutput[] {
    if (!this.includes(item.schema, item.table)) return [];
    const tx = this.tx ?? this.openTx(false, this.lastEnd);
    if (tx.xa) {
      // Prepared, not committed: these rows may never happen (XA ROLLBACK). Only remember that they exist.
      tx.xa.tables.add(`${item.schema}.${item.table}`);
      return [];
    }
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
    // Binlog event timestamps have one-second resolution (the statement start time of the commit); never
    // earlier than the commit before (a baseline's snapshot time has sub-second precision).
    const eventUs = BigInt(timestampMs) * 1000n;
    const commitTimeUs = eventUs > this.lastCommitTimeUs ? eventUs : this.lastCommitTimeUs;
    this.lastCommitTimeUs = commitTimeUs;
    let entry: CommitEntry = {
      kind: 'commit',
      source: this.opts.source,
      seq: this.seq,
      txId: tx.txId,
      position,
      commitTimeUs,
      captureTimeUs: this.nowUs(),
      rowCount: tx.rowCount,
      phase: 'stream',
    };
    const copied = this.windows.after(position.binlog);
    if (copied.length > 0) entry = { ...entry, copied };
    this.seq += 1n;
    return [{ kind: 'commit', entry }];
  }
}
