/**
 * One run() of the parallel applier (parallel-applier.ts): forms units from the journal, schedules them on the
 * workers, keeps commits in source order, hands DDL / big transactions / isolation to the serial applier, and
 * recovers from conflicts the writesets missed by re-running the units in flight one at a time (PARALLEL.md).
 */
import type { Logger } from 'pino';
import { Condition } from '../../core/condition.ts';
import { TidemarkError } from '../../core/errors.ts';
import type { ApplyMetrics } from '../../engine/apply-metrics.ts';
import { Puller } from '../../engine/puller.ts';
import type { AppliedState, ApplyRunOptions } from '../../engine/target.ts';
import { seqSpan } from '../../record/record.ts';
import { type ApplierFaults, heldError, type JournalItem, type MysqlApplier } from './applier.ts';
import { errnoOf, wrapDbError } from './errors.ts';
import { JournalOrder } from './journal-order.ts';
import type { KeysCache } from './keys-cache.ts';
import { CommittedPrefix } from './parallel-commits.ts';
import { BREAK_AFTER_MS, breakWaits, type Flight, speculative } from './parallel-conflicts.ts';
import { ParallelScheduler } from './parallel-schedule.ts';
import type { ParallelApplierOptions } from './parallel-applier.ts';
import { ORDERED_COMMIT_REFUSED } from './position-table.ts';
import { serialStretch } from './serial-stretch.ts';
import { UnitAssembler, type UnitDraft } from './unit-assembler.ts';
import type { Unit, UnitWorker } from './unit-worker.ts';
import { MAX_ROW_KEYS, WritesetBuilder } from './writeset.ts';

export interface ParallelFaults extends ApplierFaults {
  /** Runs in the worker after the unit's rows were executed, before it waits for its turn to commit. */
  beforeCommit?(u: { index: number; worker: number; firstSeq: bigint; lastSeq: bigint }): void | Promise<void>;
  /** TEST ONLY: commit each unit as soon as it has executed (no source order) — proves the reader test can fail. */
  unordered?: boolean;
}

export interface ParallelRunDeps {
  readonly options: ParallelApplierOptions;
  readonly log: Logger;
  readonly metrics: ApplyMetrics;
  readonly serial: MysqlApplier;
  readonly workers: readonly UnitWorker[];
  readonly keys: KeysCache;
  readonly state: AppliedState | null;
  /** Drops cached metadata (after a DDL ran through the serial applier). */
  readonly invalidate: () => void;
}

/** A source transaction with more rows than this is not held in memory: it streams through the serial applier. */
export const BIG_TX_ROWS = MAX_ROW_KEYS;
interface Failure {
  readonly flight: Flight;
  readonly err: unknown;
  /** Every unit before it had committed when it failed. */
  readonly atHead: boolean;
}

type Read = { kind: 'item'; item: JournalItem } | { kind: 'timeout' } | { kind: 'end' };

export class ParallelRun {
  readonly #d: ParallelRunDeps;
  readonly #order: JournalOrder;
  readonly #scheduler: ParallelScheduler;
  /** The committed prefix: state, metrics, onApplied (parallel-commits.ts). */
  readonly #prefix: CommittedPrefix;
  #retries = 0;
  /** Units dispatched, and those that had to wait for the unit right before them (no parallelism). */
  readonly #stats = { units: 0, chained: 0, txs: 0 };
  #skipThrough: bigint;
  // Units are dispatched in order; #prefix.last is the highest index of the committed prefix.
  /** Highest unit that recorded its position (every one before it did too). */
  #sent = -1;
  /** Units executed and waiting to record their position. */
  readonly #ready = new Map<number, Flight>();
  /** Units executing their rows. */
  readonly #executing = new Map<number, Flight>();
  #evictions = 0;
  readonly #inflight = new Map<number, Flight>();
  #lastSeq: bigint | null;
  #chains: Promise<void>[];
  #halt = false;
  #failure: Failure | null = null;
  readonly #cond = new Condition();

  constructor(d: ParallelRunDeps) {
    this.#d = d;
    this.#order = new JournalOrder(d.options.source);
    this.#scheduler = new ParallelScheduler({
      workers: d.workers.length,
      maxRowKeys: d.options.target.parallel.max_row_keys,
    });
    this.#prefix = new CommittedPrefix(d.state, d.metrics);
    this.#skipThrough = d.state?.seq ?? -1n;
    this.#lastSeq = d.state?.seq ?? null;
    this.#chains = d.workers.map(() => Promise.resolve());
  }

  get state(): AppliedState | null {
    return this.#prefix.state;
  }

  get lastReadLsn(): bigint {
    return this.#order.lastLsn;
  }

  get retries(): number {
    return this.#retries;
  }

  get evictions(): number {
    return this.#evictions;
  }

  async run(entries: AsyncIterable<JournalItem>, opts: ApplyRunOptions): Promise<void> {
    this.#prefix.onApplied = opts.onApplied;
    const puller = new Puller(entries[Symbol.asyncIterator](), opts.signal);
    const breaker = setInterval(() => this.#breakWaits(), BREAK_AFTER_MS / 3);
    try {
      const isolate = opts.isolateThroughLsn ?? -1n;
      if (isolate >= 0n) {
        const stop = (it: JournalItem) => it.entry.kind === 'commit' && it.lsn >= isolate;
        if (!(await this.#serialStretch([], puller, opts, stop))) return;
      }
      await this.#loop(puller, opts);
    } catch (err) {
      throw await this.#fail(err);
    } finally {
      clearInterval(breaker);
      puller.close();
      this.#d.log.info(
        { ...this.#stats, retries: this.#retries, evictions: this.#evictions },
        'parallel apply run ended',
      );
    }
  }

  // ---- reading and forming units -----------------------------------------------------------------------------

  async #loop(puller: Puller<JournalItem>, opts: ApplyRunOptions): Promise<void> {
    const { max_transactions: maxTx, max_rows: maxRows, max_wait_ms: maxWait } = this.#d.options.target.batch;
    const u = new UnitAssembler(BIG_TX_ROWS);
    const close = async (): Promise<void> => {
      const draft = u.takeUnit();
      if (draft) await this.#dispatch(draft);
    };
    for (;;) {
      await this.#checkFailure();
      const closable = u.txs > 0 && !u.inTransaction;
      const waited = Date.now() - u.started;
      if (closable && (u.txs >= maxTx || u.rows >= maxRows || waited >= maxWait)) {
        await close();
        continue;
      }
      // Wait for the journal, but wake now and then to see a failure or a commit while units are in flight.
      const limit = closable ? Math.max(0, maxWait - waited) : null;
      const r = await this.#read(puller, this.#inflight.size > 0 ? Math.min(limit ?? 50, 50) : limit);
      if (r.kind === 'timeout') continue;
      if (r.kind === 'end') {
        await close(); // an open transaction is dropped: none of it was sent
        await this.#drain();
        return;
      }
      const e = r.item.entry;
      if (e.seq + seqSpan(e) - 1n <= this.#skipThrough) continue; // in the replica already (re-delivery)
      if (u.push(r.item, Date.now()) === 'serial') {
        // What is complete goes first, then the open transaction through to its commit.
        await close();
        const head = [...u.takeOpen(), r.item];
        if (!(await this.#serialStretch(head, puller, opts, (it) => it.entry.kind === 'commit'))) return;
      }
    }
  }

  async #read(puller: Puller<JournalItem>, timeoutMs: number | null): Promise<Read> {
    const r = await puller.next(timeoutMs);
    if (r === 'timeout') return { kind: 'timeout' };
    if (r === 'abort' || r.done) return { kind: 'end' };
    this.#order.check(r.value);
    return { kind: 'item', item: r.value };
  }

  // ---- dispatch and the workers --------------------------------------------------------------------------------

  async #dispatch({ items, target, txs, rows }: UnitDraft): Promise<void> {
    const tables = new Map<string, { schema: string; table: string }>();
    for (const it of items) {
      const e = it.entry;
      if (e.kind === 'rows') tables.set(JSON.stringify([e.schema, e.table]), { schema: e.schema, table: e.table });
    }
    await this.#d.keys.load(tables.values());
    const ws = new WritesetBuilder(this.#d.keys.lookup, BIG_TX_ROWS);
    for (const it of items) if (it.entry.kind === 'rows') ws.add(it.entry);
    const a = this.#scheduler.next(ws.finish());
    const chained = a.dependsOn === a.index - 1;
    this.#stats.units++;
    this.#stats.txs += txs;
    if (chained) this.#stats.chained++;
    this.#d.metrics.parallelUnit(chained);
    const unit: Unit = { index: a.index, items, target, firstSeq: items[0]!.entry.seq, txs, rows };
    const f: Flight = { unit, worker: a.worker, dependsOn: a.dependsOn, prevSeq: this.#lastSeq };
    this.#lastSeq = target.seq;
    // Backpressure: a bounded number of units in memory.
    await this.#cond.until(() => this.#inflight.size < 2 * this.#d.workers.length || this.#failure !== null);
    this.#inflight.set(unit.index, f);
    this.#chains[f.worker] = this.#chains[f.worker]!.then(() => this.#fly(f));
  }

  async #fly(f: Flight): Promise<void> {
    const w = this.#d.workers[f.worker]!;
    const faults = this.#d.options.faults;
    const ordered = faults?.unordered !== true;
    await this.#cond.until(() => this.#prefix.last >= f.dependsOn || this.#halt);
    if (this.#halt) return;
    try {
      for (;;) {
        this.#executing.set(f.unit.index, f);
        await w.execute(f.unit).finally(() => this.#executing.delete(f.unit.index));
        await faults?.beforeCommit?.({
          index: f.unit.index,
          worker: f.worker,
          firstSeq: f.unit.firstSeq,
          lastSeq: f.unit.target.seq,
        });
        if (!ordered) {
          await w.commitUnordered(f.unit);
          break;
        }
        // Ordered commit: the position update is sent once the unit before it has recorded its own (holding the
        // row lock until its COMMIT), so it waits inside InnoDB and reads that unit's committed row; both COMMITs
        // can then share one group-commit flush.
        this.#ready.set(f.unit.index, f);
        await this.#cond.until(() => this.#sent >= f.unit.index - 1 || this.#halt || f.evict === true);
        this.#ready.delete(f.unit.index);
        if (this.#halt) {
          await w.rollback();
          return;
        }
        if (f.evict && this.#sent < f.unit.index - 1) {
          f.evict = false;
          await w.rollback();
          await this.#cond.until(() => this.#prefix.last >= f.unit.index - 1 || this.#halt);
          if (this.#halt) return;
          continue;
        }
        // Nobody waits to record after it yet: position and COMMIT in one round trip.
        const alone = !this.#ready.has(f.unit.index + 1);
        await w.recordPosition(f.unit, f.prevSeq, alone);
        this.#sent = Math.max(this.#sent, f.unit.index);
        this.#cond.notify();
        if (!alone) await w.commit();
        break;
      }
      this.#commitDone(f);
    } catch (err) {
      const atHead = this.#prefix.last >= f.unit.index - 1;
      await w.rollback();
      if (!this.#failure || this.#failure.flight.unit.index > f.unit.index) this.#failure = { flight: f, err, atHead };
      this.#halt = true;
      this.#cond.notify();
    }
  }

  /** A unit's COMMIT returned (parallel-commits.ts: the state follows the committed prefix). */
  #commitDone(f: Flight): void {
    this.#inflight.delete(f.unit.index);
    this.#prefix.committed(f.unit, (err) => {
      this.#failure ??= { flight: f, err, atHead: false };
      this.#halt = true;
    });
    this.#cond.notify();
  }

  /** Waits until every unit in flight committed (or one failed: then recovers, which re-runs them). */
  async #drain(): Promise<void> {
    for (;;) {
      await this.#cond.until(() => this.#inflight.size === 0 || this.#failure !== null);
      if (this.#failure) await this.#checkFailure();
      else break;
    }
    await Promise.all(this.#chains);
    await this.#prefix.applied;
    if (this.#failure) await this.#checkFailure();
  }

  /** The lock-wait breaker (BREAK_AFTER_MS): later executed units give way to an earlier one stuck in a statement. */
  #breakWaits(): void {
    const now = Date.now();
    const n = breakWaits(this.#executing, this.#ready, (w) => this.#d.workers[w]!.busyMs(now));
    if (n === 0) return;
    this.#evictions += n;
    this.#d.metrics.parallelRetries(n);
    this.#cond.notify();
  }

  // ---- failures --------------------------------------------------------------------------------------------------

  /**
   * After a unit failed: every worker stops (its open transaction rolled back); a real failure is thrown, a
   * speculative one re-runs the units in flight one at a time in source order on worker 0.
   */
  async #checkFailure(): Promise<void> {
    const failure = this.#failure;
    if (!failure) return;
    this.#halt = true;
    this.#cond.notify();
    await Promise.all(this.#chains);
    await this.#prefix.applied;
    const { err, atHead, flight } = failure;
    if (!speculative(err, atHead)) throw err;
    const pending = [...this.#inflight.values()].sort((a, b) => a.unit.index - b.unit.index);
    this.#d.log.info(
      { err: String((err as Error)?.message ?? err), unit: flight.unit.index, rerun: pending.length },
      'parallel apply: a conflict the writesets missed; re-running the units in flight one at a time',
    );
    this.#retries += pending.length;
    this.#d.metrics.parallelRetries(pending.length);
    this.#failure = null;
    this.#halt = false;
    this.#sent = this.#prefix.last;
    const w = this.#d.workers[0]!;
    for (const f of pending) {
      if (!w.connected) await w.open();
      try {
        await w.execute(f.unit);
        await w.recordPosition(f.unit, f.prevSeq, true);
      } catch (e) {
        await w.rollback();
        throw e;
      }
      this.#sent = f.unit.index;
      this.#commitDone(f);
    }
    await this.#prefix.applied;
    for (const other of this.#d.workers) if (!other.connected) await other.open();
  }

  /** Stops every worker and returns what run() throws. */
  async #fail(err: unknown): Promise<TidemarkError> {
    this.#halt = true;
    this.#cond.notify();
    await Promise.all(this.#chains).catch(() => {});
    for (const w of this.#d.workers) await w.rollback();
    if (errnoOf(err) === ORDERED_COMMIT_REFUSED) return heldError(this.#d.options.target.name, null);
    const e = err instanceof TidemarkError ? err : wrapDbError(err, 'parallel apply');
    if (e.retriable) for (const w of this.#d.workers) w.drop();
    if (e.code !== 'TARGET_HELD' && e.code !== 'TARGET_READ_ONLY') {
      this.#d.log.error({ code: e.code, retriable: e.retriable, context: e.context }, e.message);
    }
    return e;
  }

  // ---- the serial applier --------------------------------------------------------------------------------------

  /**
   * Runs `head` and what follows it in the journal, up to and including the first item `stop` accepts, through
   * the serial applier once everything in flight committed. Returns false when the journal ended or the run was
   * aborted meanwhile.
   */
  async #serialStretch(
    head: JournalItem[],
    puller: Puller<JournalItem>,
    opts: ApplyRunOptions,
    stop: (it: JournalItem) => boolean,
  ): Promise<boolean> {
    await this.#drain();
    const next = async (): Promise<JournalItem | null> => {
      const r = await this.#read(puller, null);
      return r.kind === 'item' ? r.item : null;
    };
    const serial = this.#d.serial;
    const { ended, ddl } = await serialStretch(serial, this.#d.options.target.name, head, next, stop, opts);
    this.#prefix.state = serial.state;
    this.#lastSeq = serial.state?.seq ?? this.#lastSeq;
    this.#skipThrough = this.#lastSeq ?? -1n;
    if (ddl) this.#d.invalidate();
    return !ended;
  }
}
