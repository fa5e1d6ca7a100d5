/**
 * Applies journal entries to one MySQL/MariaDB replica exactly once (see README.md for the full contract).
 *
 *   const a = new MysqlApplier({ target, source: 'orders-db', log });
 *   const state = await a.open();                      // null: nothing applied yet
 *   await a.run(readJournal(state ? state.lsn + 1n : 1n), { signal, onApplied });
 *   await a.close();
 *
 * Exactly once: every replica transaction ends with an update of `tidemark`.`applied_position` in the same
 * transaction; entries whose seq is at or below the stored seq are skipped. Several source transactions are
 * grouped into one replica transaction; rows stream into it statement by statement (memory stays bounded); it
 * commits only at a source transaction boundary, so a reader never sees part of a source transaction.
 * A retriable error (connection lost, deadlock, lock wait timeout) rolls back and is rethrown as retriable: the
 * caller calls open() again and re-reads the journal from the returned lsn + 1.
 */
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { silentLogger } from '../../core/log.ts';
import { TidemarkError } from '../../core/errors.ts';
import { JournalOrder } from './journal-order.ts';
import { type DdlEntry, type RowsEntry, seqSpan } from '../../record/record.ts';
import { addCommit, type Group, midState, newGroup } from './apply-group.ts';
import { groupDue, pullForGroup } from '../../engine/batch-group.ts';
import { DdlProtocol } from './ddl-protocol.ts';
import { heldError, wrapDbError } from './errors.ts';
import { type InfileFactory, localInfileOn, type QueryFn, type QueryKind, sendQuery } from './exec.ts';
import { type ApplyMetrics, applyMetrics, noMetrics } from '../../engine/apply-metrics.ts';
import { preparePosition } from './position-store.ts';
import { type AppliedState, claimSql, isPromotedHold, upsertPositionSql } from './position-table.ts';
import type { JournalItem, MysqlApplierOptions, RunOptions } from './applier-options.ts';
import { Puller } from '../../engine/puller.ts';
import { openSession, serverFlavor } from '../../mysql/session.ts';
import type { Flavor } from '../../mysql/sql.ts';
import { GroupRows } from './group-rows.ts';

export type { AppliedState } from './position-table.ts';
export { heldError } from './errors.ts';

export type { ApplierFaults } from './exec.ts';
export type { ApplierTarget, JournalItem, MysqlApplierOptions, RunOptions } from './applier-options.ts';

export class MysqlApplier {
  readonly #opts: MysqlApplierOptions;
  readonly #log: Logger;
  readonly #metrics: ApplyMetrics;
  #conn: mysql.Connection | null = null;
  #flavor: Flavor = 'mariadb';
  #state: AppliedState | null = null;
  /** The DDL protocol; its `pending` is the DDL recorded as pending (read by open()). */
  readonly #ddls: DdlProtocol;
  #hold: string | null = null;
  #queries = 0;
  /** The open group's rows: table facts, held entries, batcher, pipeline (group-rows.ts). */
  readonly #groupRows: GroupRows;
  #running = false;
  // Per-run state.
  #group: Group | null = null;
  /** Entries of the current source transaction have been applied into the open group. */
  #txApplied = false;
  #txStartLsn: bigint | null = null;
  #order: JournalOrder;
  #lastAppliedSeq = -1n;
  #onApplied: RunOptions['onApplied'];

  constructor(opts: MysqlApplierOptions) {
    this.#opts = opts;
    this.#order = new JournalOrder(opts.source);
    this.#groupRows = new GroupRows(this.#qf, () => this.#flavor, opts.overlap !== false);
    this.#log = (opts.log ?? silentLogger).child({ component: 'apply', target: opts.target.name, source: opts.source });
    this.#ddls = new DdlProtocol(opts.source, opts.target.name, this.#qf, this.#log);
    this.#metrics = opts.metrics
      ? applyMetrics(opts.metrics, { target: opts.target.name, source: opts.source })
      : noMetrics;
  }

  /** The state last committed to the replica by this applier (or read by open()). */
  get state(): AppliedState | null {
    return this.#state;
  }

  /** Why the target is held (rewind/forward/undo), as read by open(); while held, run() must not be called. */
  get hold(): string | null {
    return this.#hold;
  }

  /** The hold says a takeover promoted the target to primary: nothing is applied to it again. */
  get promoted(): boolean {
    return isPromotedHold(this.#hold);
  }

  /** LSN of the last journal entry the current or last run() read (-1n before the first). */
  get lastReadLsn(): bigint {
    return this.#order.lastLsn;
  }

  /** Server connection id of the apply session (diagnostics and tests). */
  get threadId(): number | null {
    return this.#conn?.threadId ?? null;
  }

  /** (Re)connects, sets the session up, ensures the position table and returns the stored state. */
  async open(): Promise<AppliedState | null> {
    if (this.#running) throw new TidemarkError('open() while run() is active', { code: 'APPLY_STATE' });
    this.#drop();
    const t = this.#opts.target;
    const wantLoad = this.#opts.loadData !== false;
    const conn = await openSession(t, { apply: true, multipleStatements: true, localInfile: wantLoad });
    this.#conn = conn;
    let load = false;
    try {
      this.#flavor = await serverFlavor(conn);
      load = wantLoad && this.#flavor === 'mariadb' && (await localInfileOn(conn));
      const stored = await preparePosition((sql) => this.#q('meta', sql), this.#opts.source);
      this.#state = stored.state;
      this.#ddls.pending = stored.ddlPendingSeq;
      this.#hold = stored.hold;
    } catch (err) {
      this.#drop();
      throw wrapDbError(err, `opening apply session on ${t.host}:${t.port}`, { target: t.name });
    }
    this.#groupRows.open(this.#opts, this.#flavor, load);
    this.#log.info(
      {
        seq: this.#state?.seq.toString() ?? null,
        lsn: this.#state?.lsn.toString() ?? null,
        flavor: this.#flavor,
        loadData: load,
      },
      'apply session open',
    );
    return this.#state;
  }

  /**
   * Applies `entries` until they end or `signal` aborts. Entries already applied (seq ≤ stored seq) are skipped.
   * At the end (or on abort) a group that ends on a transaction boundary is committed; a cut transaction is
   * rolled back. Throws a TidemarkError; when retriable the connection is closed and the caller must open() again.
   */
  async run(entries: AsyncIterable<JournalItem>, opts: RunOptions = {}): Promise<void> {
    if (!this.#conn || !this.#groupRows.opened) throw new TidemarkError('run() before open()', { code: 'APPLY_STATE' });
    if (this.#running) throw new TidemarkError('run() is already active', { code: 'APPLY_STATE' });
    if (this.#hold !== null) throw heldError(this.#opts.target.name, this.#hold);
    this.#running = true;
    this.#resetRun(opts.onApplied);
    const limits = this.#opts.target.batch;
    const isolate = opts.isolateThroughLsn ?? -1n;
    const it = entries[Symbol.asyncIterator]();
    const puller = new Puller(it, opts.signal);
    let inTx = false;
    try {
      for (;;) {
        let r: IteratorResult<JournalItem> | 'timeout' | 'abort';
        const g = this.#group;
        if (g && !inTx) {
          if (groupDue(g, limits, this.#order.lastLsn <= isolate)) {
            await this.#commitGroup(g.target);
            continue;
          }
          r = await pullForGroup(puller, g, limits);
          if (r === 'timeout') {
            await this.#commitGroup(g.target);
            continue;
          }
        } else {
          r = await puller.next(null);
        }
        if (r === 'timeout') continue;
        if (r === 'abort' || r.done) {
          if (this.#group && !inTx) await this.#commitGroup(this.#group.target);
          else if (this.#group) {
            this.#log.warn({ nextSeq: this.#order.nextSeq.toString() }, 'stopping inside a transaction: rolled back');
            await this.#rollback();
          }
          return;
        }
        inTx = await this.#handle(r.value);
      }
    } catch (err) {
      throw await this.#fail(err);
    } finally {
      puller.close();
      this.#running = false;
      this.#group = null;
      this.#onApplied = undefined;
    }
  }

  #resetRun(onApplied: RunOptions['onApplied']): void {
    this.#onApplied = onApplied;
    this.#group = null;
    this.#txApplied = false;
    this.#txStartLsn = null;
    this.#order = new JournalOrder(this.#opts.source);
    this.#lastAppliedSeq = this.#state?.seq ?? -1n;
  }

  async close(): Promise<void> {
    const c = this.#conn;
    this.#conn = null;
    if (!c) return;
    try {
      await c.end();
    } catch {
      c.destroy();
    }
  }

  // ---- entries ------------------------------------------------------------------------------------------------

  /** Applies one entry; returns whether a source transaction is open afterwards. */
  async #handle(item: JournalItem): Promise<boolean> {
    const e = item.entry;
    this.#order.check(item);
    if (e.kind !== 'commit' && this.#txStartLsn === null) this.#txStartLsn = item.lsn;
    const last = e.seq + seqSpan(e) - 1n;
    if (last <= this.#lastAppliedSeq) {
      // Already in the replica (re-delivery after a crash).
      if (e.kind === 'commit') this.#txStartLsn = null;
      return e.kind !== 'commit';
    }
    if (e.kind === 'rows') {
      await this.#rows(e, item.bytes);
      this.#lastAppliedSeq = last;
      return true;
    }
    if (e.kind === 'ddl') {
      await this.#ddl(e);
      return true;
    }
    addCommit(await this.#ensureGroup(), e, item.lsn);
    this.#lastAppliedSeq = e.seq;
    this.#txApplied = false;
    this.#txStartLsn = null;
    return false;
  }

  async #rows(e: RowsEntry, bytes: number | undefined): Promise<void> {
    // Awaits only what is not at hand yet (a group to open, a table's metadata to read): ~4 % of an OLTP apply's
    // allocations were the promises of awaits that had nothing to wait for.
    const g = this.#group ?? (await this.#ensureGroup());
    const h = this.#groupRows.known(e) ?? (await this.#groupRows.read(e));
    g.rows += e.rows.length;
    this.#txApplied = true;
    const sent = this.#groupRows.add(h, bytes);
    if (sent) await sent;
  }

  /**
   * DDL is not transactional: commit what is open, then the DDL protocol (ddl-protocol.ts: recorded as pending,
   * run, recorded as applied).
   */
  async #ddl(e: DdlEntry): Promise<void> {
    const startLsn = this.#txStartLsn ?? this.#state?.lsn ?? 0n;
    if (this.#group) {
      const target = this.#txApplied ? this.#midState(this.#lastAppliedSeq, startLsn - 1n) : this.#group.target;
      await this.#commitGroup(target);
    }
    const st = this.#midState(e.seq, startLsn - 1n);
    await this.#ddls.run(e, this.#state?.seq ?? null, st);
    this.#stored(st);
    this.#lastAppliedSeq = e.seq;
    this.#txApplied = false;
    this.#groupRows.forget();
    this.#log.info({ seq: e.seq.toString(), schema: e.schema }, 'DDL applied');
  }

  /** A state that covers entries up to `seq` inside a transaction that is not complete yet. */
  #midState(seq: bigint, lsn: bigint): AppliedState {
    return midState(seq, lsn, this.#group?.target ?? this.#state);
  }

  // ---- replica transactions ---------------------------------------------------------------------------------

  /**
   * Opens a replica transaction and claims the position row (claimSql): from here until COMMIT no rewind,
   * forward or undo can run on this target, and a target they hold or moved is refused (TARGET_HELD).
   */
  async #ensureGroup(): Promise<Group> {
    if (this.#group) return this.#group;
    const res = await this.#q('begin', `START TRANSACTION;\n${claimSql(this.#opts.source, this.#state?.seq ?? null)}`);
    const claimed = Array.isArray(res) ? (res[1] as { affectedRows?: number } | undefined)?.affectedRows : undefined;
    if (claimed !== 1) throw heldError(this.#opts.target.name, null);
    this.#group = newGroup();
    return this.#group;
  }

  async #commitGroup(target: AppliedState | null): Promise<void> {
    const g = this.#group;
    if (!g) return;
    await this.#groupRows.flush();
    // Only now, with every row count checked, may the group commit (never in the same query as the rows).
    try {
      if (target) await this.#q('commit', `${upsertPositionSql(this.#opts.source, target)};\nCOMMIT`);
      else await this.#q('commit', 'COMMIT');
    } catch (err) {
      throw wrapDbError(err, 'committing an apply group', { txs: g.txs, rows: g.rows });
    }
    this.#group = null;
    this.#metrics.transactions(g.txs);
    this.#metrics.rows(g.rows);
    if (target) {
      this.#stored(target);
      if (target.commitTimeUs !== null) this.#metrics.lastCommitTimeUs(target.commitTimeUs);
      this.#log.debug({ seq: target.seq.toString(), lsn: target.lsn.toString(), txs: g.txs, rows: g.rows }, 'applied');
      await this.#onApplied?.(target);
    }
  }

  #stored(st: AppliedState): void {
    this.#state = st;
    this.#ddls.pending = null;
  }

  async #rollback(): Promise<void> {
    await this.#groupRows.abandonQueries();
    this.#groupRows.reset();
    this.#group = null;
    await this.#q('rollback', 'ROLLBACK');
  }

  /** Cleans up after an error and returns what to throw. */
  async #fail(err: unknown): Promise<TidemarkError> {
    const e = wrapDbError(err, 'apply');
    this.#groupRows.reset();
    this.#group = null;
    if (e.retriable) {
      this.#groupRows.clearQueries();
      this.#drop();
    } else {
      try {
        // A query still in flight ends first (its outcome no longer matters): ROLLBACK must come after it.
        await this.#groupRows.abandonQueries();
        // A statement that failed between SET foreign_key_checks = 1 and = 0 left checks on.
        if (this.#conn) await this.#q('rollback', 'ROLLBACK;\nSET SESSION foreign_key_checks = 0');
      } catch {
        this.#drop();
      }
    }
    // Both are waited out by the apply loop, which says so once.
    if (e.code === 'TARGET_HELD' || e.code === 'TARGET_READ_ONLY') this.#log.info(e.message);
    else this.#log.error({ code: e.code, retriable: e.retriable, context: e.context }, e.message);
    return e;
  }

  #drop(): void {
    this.#conn?.destroy();
    this.#conn = null;
  }

  // ---- queries ----------------------------------------------------------------------------------------------

  readonly #qf: QueryFn = (kind, sql, infile) => this.#q(kind, sql, infile);

  async #q(kind: QueryKind, sql: string, infile?: InfileFactory): Promise<unknown> {
    const conn = this.#conn;
    if (!conn) throw new TidemarkError('apply connection is closed', { code: 'APPLY_RETRY', retriable: true });
    return sendQuery(conn, kind, ++this.#queries, sql, this.#opts.faults, infile);
  }
}
