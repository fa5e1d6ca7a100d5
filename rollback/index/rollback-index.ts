/**
 * The rollback index (rollback/README.md, "Internals"): a SQLite file next to the journal that lists its transactions, where
 * each entry lies, and every version of every row key, so that history, rewind, forward and undo find what to
 * read without scanning the journal. It is derived data: a damaged or out-of-date file is moved aside and rebuilt.
 *
 * Several processes may open it: the `run` process keeps it current (its index loop) and CLI commands
 * catch it up before they answer. Writers take SQLite's write lock per batch; readers are never blocked (WAL).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import type { Logger } from 'pino';
import { silentLogger } from '../../core/log.ts';
import { CorruptionError, describeChain, TidemarkError } from '../../core/errors.ts';
import { listSegments } from '../../journal/index.ts';
import { readEntryAt } from '../../journal/index.ts';
import { IndexBuilder } from './builder.ts';
import { catchUpJournal } from './catch-up.ts';
import { type PruneResult, pruneBelow } from './prune.ts';
import { IndexQueries } from './queries.ts';
import { INDEX_FILE, IndexDamagedError, isDamage, moveAside, openDatabase, quickCheck } from './schema.ts';
import type { FrameMark } from './state.ts';
import type { CatchUpOptions, DdlInfo, EntryRef, RowVersionRef, TxInfo, TxQuery } from './types.ts';

export interface RollbackIndexOptions {
  journalDir: string;
  log?: Logger;
  /** Run PRAGMA quick_check on open (reads the whole file; for long-lived processes). Default false. */
  verify?: boolean;
  /** How long a writer waits for another process's batch. Default 10 s. */
  busyTimeoutMs?: number;
  /** SQLite page cache. Default 64 MiB. */
  cacheMb?: number;
  /** Changes per SQLite transaction while catching up (tests). Default BATCH_CHANGES. */
  batchChanges?: number;
}

interface Conn {
  db: DatabaseSync;
  builder: IndexBuilder;
  queries: IndexQueries;
  ino: bigint;
}

export class RollbackIndex {
  readonly journalDir: string;
  readonly path: string;
  private readonly log: Logger;
  private readonly opts: RollbackIndexOptions;
  private conn: Conn | null = null;

  private constructor(opts: RollbackIndexOptions) {
    this.opts = opts;
    this.journalDir = opts.journalDir;
    this.path = join(opts.journalDir, INDEX_FILE);
    this.log = opts.log ?? silentLogger;
  }

  /**
   * Opens (creating if missing). A damaged file (SQLITE_CORRUPT/NOTADB, wrong version, or whose last indexed
   * transaction no longer matches the journal at that LSN) is moved aside as *.damaged and rebuilt: logged warn.
   */
  static async open(opts: RollbackIndexOptions): Promise<RollbackIndex> {
    if (!existsSync(opts.journalDir)) {
      throw new TidemarkError(`no journal at ${opts.journalDir}: nothing to index`, {
        code: 'NO_JOURNAL',
        context: { dir: opts.journalDir },
      });
    }
    const index = new RollbackIndex(opts);
    for (let attempt = 1; ; attempt++) {
      try {
        index.connect();
        if (opts.verify) quickCheck(index.c.db, index.path);
        await index.checkJournal();
        return index;
      } catch (err) {
        if (!(err instanceof IndexDamagedError) || attempt > 1) {
          index.close();
          throw err;
        }
        index.rebuild(err);
      }
    }
  }

  private get c(): Conn {
    if (!this.conn) throw new TidemarkError(`rollback index ${this.path} is closed`, { code: 'USAGE' });
    return this.conn;
  }

  private connect(): void {
    const db = openDatabase(this.path, {
      busyTimeoutMs: this.opts.busyTimeoutMs ?? 10_000,
      cacheMb: this.opts.cacheMb ?? 64,
    });
    try {
      const builder = new IndexBuilder(db, this.log);
      const queries = new IndexQueries(db, () => builder.storedState());
      this.conn = { db, builder, queries, ino: statSync(this.path, { bigint: true }).ino };
    } catch (err) {
      db.close();
      if (isDamage(err)) throw new IndexDamagedError(`rollback index ${this.path}: ${(err as Error).message}`, err);
      throw err;
    }
  }

  /** Closes the file, moves it aside as *.damaged and starts an empty one. */
  private rebuild(why: unknown): void {
    this.close();
    const to = moveAside(this.path);
    this.log.warn(
      { path: this.path, movedTo: to, why: describeChain(why) },
      'rollback index damaged or out of date: moved aside, rebuilding it from the journal',
    );
    this.connect();
  }

  /** The commit at indexedLsn (and the frame of an unfinished unit) must still be what the journal holds there. */
  private async checkJournal(): Promise<void> {
    const { builder } = this.c;
    const s = builder.state;
    if (!s.last && !s.scan) return;
    if ((await listSegments(this.journalDir)).length === 0) {
      throw new IndexDamagedError(`rollback index: the journal is empty but the index goes up to LSN ${s.indexedLsn}`);
    }
    if (s.last && !(await this.matches(s.last, true))) {
      throw new IndexDamagedError(
        `rollback index: the journal no longer holds transaction ${s.last.txId} (seq ${s.last.seq}) at LSN ${s.last.lsn}`,
      );
    }
    if (s.scan && !(await this.matches(s.scan, false)) && builder.begin()) {
      builder.discardUnit();
      builder.commit(s.epoch);
    }
  }

  /** Whether the journal holds that entry at that place; a segment retention removed counts as a match. */
  private async matches(m: FrameMark, commit: boolean): Promise<boolean> {
    try {
      const e = await readEntryAt(this.journalDir, m.segment, m.offset, m.lsn);
      return e.seq === m.seq && e.txId === m.txId && (e.kind === 'commit') === commit;
    } catch (err) {
      if (err instanceof TidemarkError && err.code === 'JOURNAL_GONE') return true;
      if (err instanceof CorruptionError) return false;
      throw err;
    }
  }

  /** Reconnects when another process moved the file aside (rebuilt it) since this one opened it. */
  private followFile(): void {
    let ino: bigint | null = null;
    try {
      ino = statSync(this.path, { bigint: true }).ino;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (this.conn && ino === this.conn.ino) return;
    this.close();
    this.connect();
  }

  /**
   * Indexes every complete unit from indexedLsn + 1 to the journal head (no follow). Commits in SQLite
   * transactions of about BATCH_CHANGES changes (a unit larger than that is committed in pieces that queries do
   * not see until its commit is indexed). onProgress at most about once a second.
   */
  async catchUp(opts: CatchUpOptions = {}): Promise<bigint> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.followFile();
        const ctx = { dir: this.journalDir, builder: this.c.builder, log: this.log };
        return await catchUpJournal(
          this.opts.batchChanges ? { ...ctx, batchChanges: this.opts.batchChanges } : ctx,
          opts,
        );
      } catch (err) {
        const damaged = err instanceof IndexDamagedError || isDamage(err);
        if (!damaged || attempt > 1) throw err;
        this.rebuild(err);
      }
    }
  }

  /** Drops transactions whose frames retention removed from the journal. */
  async prune(): Promise<PruneResult> {
    const oldest = (await listSegments(this.journalDir))[0];
    if (oldest === undefined || oldest <= 1n) return { uptoSeq: null, txs: 0 };
    this.followFile();
    const r = this.read(() => pruneBelow(this.c.db, oldest));
    if (r.txs > 0) this.log.info({ txs: r.txs, uptoSeq: r.uptoSeq?.toString() }, 'rollback index: pruned');
    return r;
  }

  get indexedLsn(): bigint {
    return this.c.builder.state.indexedLsn;
  }

  /** Runs a query; a damaged file is moved aside (an empty one takes its place) and reported as retriable. */
  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!isDamage(err)) throw err;
      this.rebuild(err);
      throw new IndexDamagedError(
        `rollback index ${this.path} is damaged: it was moved aside and is rebuilt by the next catch-up`,
        err,
      );
    }
  }

  listTxs(q: TxQuery): TxInfo[] {
    return this.read(() => this.c.queries.listTxs(q));
  }

  /** Streaming form of listTxs for large windows. */
  *iterateTxs(q: TxQuery): Generator<TxInfo> {
    const it = this.c.queries.iterateTxs(q);
    for (;;) {
      const r = this.read(() => it.next());
      if (r.done) return;
      yield r.value;
    }
  }

  txById(txId: string): TxInfo | null {
    return this.read(() => this.c.queries.txById(txId));
  }

  txByCommitSeq(seq: bigint): TxInfo | null {
    return this.read(() => this.c.queries.txByCommitSeq(seq));
  }

  /** The transaction whose [firstSeq, commitSeq] contains seq. */
  txContaining(seq: bigint): TxInfo | null {
    return this.read(() => this.c.queries.txContaining(seq));
  }

  /** Last transaction with commitTimeUs <= t (by commitSeq). */
  lastTxAtOrBefore(timeUs: bigint): TxInfo | null {
    return this.read(() => this.c.queries.lastTxAtOrBefore(timeUs));
  }

  /** Rows and ddl entries of a transaction, ascending lsn. */
  entriesOf(commitSeq: bigint): EntryRef[] {
    return this.read(() => this.c.queries.entriesOf(commitSeq));
  }

  /** Every change of the row with this key, ascending seq (a key-changing update is listed under both keys). */
  keyVersions(schema: string, table: string, keyText: string): RowVersionRef[] {
    return this.read(() => this.c.queries.keyVersions(schema, table, keyText));
  }

  /** Changes of that key with afterSeq < seq <= uptoSeq. */
  laterChanges(schema: string, table: string, keyText: string, afterSeq: bigint, uptoSeq: bigint): RowVersionRef[] {
    return this.read(() => this.c.queries.laterChanges(schema, table, keyText, afterSeq, uptoSeq));
  }

  /** Did a transaction committed after afterSeq change the table (false: no key of it has a later change)? */
  touchedAfter(schema: string, table: string, afterSeq: bigint): boolean {
    return this.read(() => this.c.queries.touchedAfter(schema, table, afterSeq));
  }

  /** laterChanges for many keys of one table: key → commit seqs of its later changes (keys without are absent). */
  laterCommitsMany(
    schema: string,
    table: string,
    keyTexts: Iterable<string>,
    afterSeq: bigint,
    uptoSeq: bigint,
  ): Map<string, bigint[]> {
    return this.read(() => this.c.queries.laterCommitsMany(schema, table, keyTexts, afterSeq, uptoSeq));
  }

  /** DDL with afterSeq < seq <= uptoSeq, ascending. */
  ddlBetween(afterSeq: bigint, uptoSeq: bigint): DdlInfo[] {
    return this.read(() => this.c.queries.ddlBetween(afterSeq, uptoSeq));
  }

  /** Primary-key column names of a table as last seen in the journal (for --key parsing), or null. */
  primaryKey(schema: string, table: string): string[] | null {
    return this.read(() => this.c.queries.primaryKey(schema, table));
  }

  close(): void {
    const c = this.conn;
    this.conn = null;
    if (!c?.db.isOpen) return;
    if (c.db.isTransaction) c.db.exec('ROLLBACK');
    c.db.close();
  }
}
