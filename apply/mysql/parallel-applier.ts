/**
 * Parallel apply with ordered commit (PARALLEL.md), chosen by `targets[].parallel.workers > 1`: the coordinator
 * reads the journal, forms units (runs of consecutive whole source transactions, bounded like the serial
 * applier's groups), computes each unit's writeset (writeset.ts, keys from keys-cache.ts), asks the scheduler
 * (parallel-schedule.ts) for its worker and the unit it depends on, and hands it to that worker (unit-worker.ts).
 * A unit starts once the unit it depends on committed and commits once the unit before it committed: commits are
 * in source order, so the single position row always describes a committed prefix (exactly-once at any SIGKILL)
 * and a reader of the replica never sees a later source transaction before an earlier one.
 *
 * DDL, a source transaction too large to hold in memory and the transactions up to `isolateThroughLsn` (finding
 * a failing transaction) go through the serial MysqlApplier after every unit in flight has committed — its DDL
 * protocol and streaming stay exactly as they are.
 *
 * Conflicts the writesets missed (gap locks, a collation finer than the fold, replica triggers) surface as a lock
 * wait timeout, a deadlock or a divergence of a unit that is not at the head yet: every unit in flight is rolled
 * back and re-run one at a time in source order (`retries` counts them). Only the head's divergence is real
 * (APPLY_DIVERGED naming its seq, as the serial applier reports it). See parallel-run.ts for the run itself.
 */
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { type ApplyMetrics, applyMetrics, noMetrics } from '../../engine/apply-metrics.ts';
import type { AppliedState, ApplyRunOptions } from '../../engine/target.ts';
import { openSession, serverFlavor } from '../../mysql/session.ts';
import { type ApplierTarget, heldError, type JournalItem, MysqlApplier, type MysqlApplierOptions } from './applier.ts';
import { FkCache } from './fk.ts';
import { KeysCache } from './keys-cache.ts';
import { isPromotedHold } from './position-table.ts';
import { ParallelRun, type ParallelFaults } from './parallel-run.ts';
import { TableMetaCache } from './table-meta.ts';
import { type SharedMeta, UnitWorker } from './unit-worker.ts';
import { wrapDbError } from './errors.ts';

export type { ParallelFaults } from './parallel-run.ts';

export interface ParallelTarget extends ApplierTarget {
  readonly parallel: { readonly workers: number; readonly max_row_keys: number };
}

export interface ParallelApplierOptions extends MysqlApplierOptions {
  readonly target: ParallelTarget;
  readonly faults?: ParallelFaults;
}

export class ParallelApplier {
  readonly #o: ParallelApplierOptions;
  readonly #log: Logger;
  readonly #metrics: ApplyMetrics;
  /** DDL, big transactions, isolation; also reads the stored position at open(). */
  readonly #serial: MysqlApplier;
  #meta: mysql.Connection | null = null;
  #workers: UnitWorker[] = [];
  #state: AppliedState | null = null;
  #hold: string | null = null;
  #running = false;
  #lastLsn = -1n;
  #retries = 0;
  #evictions = 0;
  readonly #keys = new KeysCache((sql) => this.#rowsQuery(sql));
  readonly #tableMeta = new TableMetaCache((sql) => this.#rowsQuery(sql));
  readonly #fkCache = new FkCache((sql) => this.#rowsQuery(sql));

  constructor(o: ParallelApplierOptions) {
    this.#o = o;
    this.#log = (o.log ?? silentLogger).child({
      component: 'apply',
      target: o.target.name,
      source: o.source,
      workers: o.target.parallel.workers,
    });
    this.#metrics = o.metrics ? applyMetrics(o.metrics, { target: o.target.name, source: o.source }) : noMetrics;
    this.#serial = new MysqlApplier(o);
  }

  get state(): AppliedState | null {
    return this.#state;
  }

  get hold(): string | null {
    return this.#hold;
  }

  get promoted(): boolean {
    return isPromotedHold(this.#hold);
  }

  get lastReadLsn(): bigint {
    return this.#lastLsn;
  }

  /** Units rolled back and re-run one at a time after a conflict the writesets did not foresee. */
  get retries(): number {
    return this.#retries;
  }

  /** Executed units the lock-wait breaker rolled back so that an earlier unit could go on. */
  get evictions(): number {
    return this.#evictions;
  }

  /** Server connection ids of every session it holds: the workers' and the serial applier's (diagnostics, tests). */
  get threadIds(): number[] {
    const ids = [...this.#workers.map((w) => w.threadId), this.#serial.threadId, this.#meta?.threadId ?? null];
    return ids.filter((id): id is number => id !== null);
  }

  async open(): Promise<AppliedState | null> {
    if (this.#running) throw new TidemarkError('open() while run() is active', { code: 'APPLY_STATE' });
    await this.close();
    this.#state = await this.#serial.open();
    this.#hold = this.#serial.hold;
    this.#invalidate();
    if (this.#hold !== null) return this.#state;
    const t = this.#o.target;
    try {
      this.#meta = await openSession(t, { apply: false });
      const flavor = await serverFlavor(this.#meta);
      const shared: SharedMeta = {
        tableMeta: (schema, table) => this.#tableMeta.get(schema, table),
        fks: () => this.#fkCache.get(),
        loadedFks: () => this.#fkCache.loaded,
      };
      for (let i = 0; i < t.parallel.workers; i++) {
        const w = new UnitWorker({
          target: t,
          source: this.#o.source,
          flavor,
          shared,
          faults: this.#o.faults,
          maxStatementBytes: this.#o.maxStatementBytes,
          maxStatementRows: this.#o.maxStatementRows,
        });
        this.#workers.push(w);
        await w.open();
      }
    } catch (err) {
      await this.close();
      throw wrapDbError(err, `opening parallel apply sessions on ${t.host}:${t.port}`, { target: t.name });
    }
    this.#log.info({ seq: this.#state?.seq.toString() ?? null }, 'parallel apply sessions open');
    return this.#state;
  }

  async run(entries: AsyncIterable<JournalItem>, opts: ApplyRunOptions = {}): Promise<void> {
    if (this.#workers.length === 0) throw new TidemarkError('run() before open()', { code: 'APPLY_STATE' });
    if (this.#running) throw new TidemarkError('run() is already active', { code: 'APPLY_STATE' });
    if (this.#hold !== null) throw heldError(this.#o.target.name, this.#hold);
    this.#running = true;
    const run = new ParallelRun({
      options: this.#o,
      log: this.#log,
      metrics: this.#metrics,
      serial: this.#serial,
      workers: this.#workers,
      keys: this.#keys,
      state: this.#state,
      invalidate: () => this.#invalidate(),
    });
    try {
      await run.run(entries, opts);
    } finally {
      this.#state = run.state;
      this.#lastLsn = run.lastReadLsn;
      this.#retries += run.retries;
      this.#evictions += run.evictions;
      this.#running = false;
    }
  }

  async close(): Promise<void> {
    const ws = this.#workers;
    this.#workers = [];
    await Promise.all(ws.map((w) => w.close()));
    const m = this.#meta;
    this.#meta = null;
    await m?.end().catch(() => m.destroy());
    await this.#serial.close();
  }

  /** Metadata is stale after DDL and on reconnect. */
  #invalidate(): void {
    this.#keys.clear();
    this.#tableMeta.clear();
    this.#fkCache.invalidate();
  }

  async #rowsQuery(sql: string): Promise<Record<string, unknown>[]> {
    const m = this.#meta;
    if (!m) throw new TidemarkError('apply metadata connection is closed', { code: 'APPLY_RETRY', retriable: true });
    const [rows] = await m.query(sql);
    return rows as Record<string, unknown>[];
  }
}
