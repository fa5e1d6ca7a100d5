/**
 * The serial applier's rows on their way into the open replica transaction (applier.ts opens and commits it):
 * each rows entry's table facts — generated columns and a system-versioned table's period (table-meta.ts), the
 * replica's cascading foreign keys (fk.ts), read on first use and forgotten after DDL and on reconnect —, small
 * entries held back per table (table-order.ts), statements from the batcher (batcher.ts) queued on the pipeline
 * (pipeline.ts), parents of cascading foreign keys with checks on.
 */
import type { RowsEntry } from '../../record/record.ts';
import type { Flavor } from '../../mysql/sql.ts';
import type { MysqlApplierOptions } from './applier-options.ts';
import { type StatementBatch, StatementBatcher } from './batcher.ts';
import { wrapDbError } from './errors.ts';
import type { QueryFn } from './exec.ts';
import { FkCache, withFkChecks } from './fk.ts';
import { Pipeline } from './pipeline.ts';
import { type TableMeta, TableMetaCache } from './table-meta.ts';
import { type HeldEntry, mayHold, TableOrder } from './table-order.ts';

export class GroupRows {
  #batcher: StatementBatcher | null = null;
  /** Per replica table: generated columns (never written) and, for a system-versioned table, its period. */
  readonly #generated: TableMetaCache;
  /** Cascading foreign keys of the replica (read on the first update/delete, dropped after DDL and on reconnect). */
  readonly #fkCache: FkCache;
  /** Rows entries of the open group held back per table (table-order.ts). */
  readonly #held = new TableOrder();
  readonly #pipe: Pipeline;

  constructor(q: QueryFn, flavor: () => Flavor, overlap: boolean) {
    this.#generated = new TableMetaCache(async (sql) => (await q('meta', sql)) as Record<string, unknown>[]);
    this.#fkCache = new FkCache(async (sql) => (await q('meta', sql)) as Record<string, unknown>[]);
    this.#pipe = new Pipeline(q, flavor, { overlap });
  }

  /** A batcher for the session open() set up (`flavor`, LOAD DATA `loadData`); the table facts are read again. */
  open(opts: MysqlApplierOptions, flavor: Flavor, loadData: boolean): void {
    this.#batcher = new StatementBatcher({
      noPrimaryKey: opts.target.no_primary_key,
      flavor,
      orderedDeletes: (schema, table) => this.#fkCache.loaded?.deleteReachesItself(schema, table) ?? false,
      ...(opts.maxStatementBytes !== undefined ? { maxBytes: opts.maxStatementBytes } : {}),
      ...(opts.maxStatementRows !== undefined ? { maxRows: opts.maxStatementRows } : {}),
      loadData,
      ...(opts.loadMinRows !== undefined ? { loadMinRows: opts.loadMinRows } : {}),
    });
    this.forget();
  }

  /** open() has made a batcher. */
  get opened(): boolean {
    return this.#batcher !== null;
  }

  /** Forgets the table facts (after DDL, on reconnect). */
  forget(): void {
    this.#generated.clear();
    this.#fkCache.invalidate();
  }

  /** `e` with its table's facts when they are at hand, else undefined (then read(); no promise for the common case). */
  known(e: RowsEntry): HeldEntry | undefined {
    const m = this.#generated.peek(e.schema, e.table);
    return m !== undefined && this.#fkCache.loaded ? { entry: e, skip: m.skip, period: m.period } : undefined;
  }

  /** `e` with its table's facts, reading what is not at hand. */
  async read(e: RowsEntry): Promise<HeldEntry> {
    const { skip, period } =
      this.#generated.peek(e.schema, e.table) ?? (await this.#generatedColumns(e.schema, e.table));
    // Loaded for inserts too: which tables the group may hold back depends on it.
    if (!this.#fkCache.loaded) {
      try {
        await this.#fkCache.get();
      } catch (err) {
        throw wrapDbError(err, 'reading the replica foreign keys', { schema: e.schema, table: e.table });
      }
    }
    return { entry: e, skip, period };
  }

  /**
   * Holds `h` back (`bytes`: its journal payload) or sends it after everything held; returns what to await, or
   * undefined when `h` was only held (no promise).
   */
  add(h: HeldEntry, bytes: number | undefined): Promise<void> | undefined {
    if (mayHold(h, this.#fkCache.loaded!)) {
      return this.#held.hold(h, bytes ?? h.entry.rows.length * 64) ? this.#release() : undefined;
    }
    return this.#releaseThenPush(h);
  }

  /** Sends everything held, batched and queued, every row count checked: the group may commit now. */
  async flush(): Promise<void> {
    await this.#release();
    const rest = this.#batcher!.flush();
    if (rest) await this.#pipe.queue(this.#fkTag(rest));
    await this.#pipe.flush();
  }

  /** Forgets the rows batched and held (the group is rolled back or failed). */
  reset(): void {
    this.#batcher?.reset();
    this.#held.clear();
  }

  /** Forgets what is queued once a query in flight has ended (Pipeline.abandon): a ROLLBACK then comes after it. */
  abandonQueries(): Promise<void> {
    return this.#pipe.abandon();
  }

  /** Forgets what is queued and the outcome of a query in flight (Pipeline.clear). */
  clearQueries(): void {
    this.#pipe.clear();
  }

  async #releaseThenPush(h: HeldEntry): Promise<void> {
    await this.#release();
    await this.#push(h);
  }

  async #push(h: HeldEntry): Promise<void> {
    for (const b of this.#batcher!.push(h.entry, h.skip, h.period)) {
      const sent = this.#pipe.queue(this.#fkTag(b));
      if (sent) await sent;
    }
  }

  /** Sends what the group holds back (table-order.ts), table after table. */
  async #release(): Promise<void> {
    if (this.#held.empty) return;
    for (const h of this.#held.release()) await this.#push(h);
  }

  /** Parents of cascading foreign keys run with checks on (fk.ts withFkChecks). */
  #fkTag(b: StatementBatch): StatementBatch {
    return withFkChecks(b, this.#fkCache.loaded);
  }

  async #generatedColumns(schema: string, table: string): Promise<TableMeta> {
    try {
      return await this.#generated.get(schema, table);
    } catch (err) {
      throw wrapDbError(err, 'reading replica column metadata', { schema, table });
    }
  }
}
