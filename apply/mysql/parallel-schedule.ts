/**
 * The schedule of parallel apply (PARALLEL.md): source transactions arrive in source order with their writesets
 * (writeset.ts); each gets a worker and `dependsOn`, the latest earlier transaction it conflicts with. Pure.
 *
 * Rules the executor follows (and the property test checks a random executor against):
 *   - a transaction starts only once `dependsOn` has committed (-1: at once);
 *   - a worker runs its transactions one at a time, in the order assigned (ascending index);
 *   - a transaction commits only once `index - 1` has committed: commits happen in source order, so the single
 *     position row stays exactly-once and a reader never sees a later source transaction before an earlier one.
 * Since commits are ordered, "dependsOn has committed" means every transaction before it has too: one number is
 * enough.
 *
 * Conflicts: two transactions conflict when they share a row item, when one has a table item of a table the other
 * touches at all, or when either is a barrier. Memory is bounded: the last writer of each row item is kept in a
 * map of at most `maxRowKeys` items (`maxTables` for tables), in order of last write (an item written again moves
 * to the end). Over the bound the oldest items are evicted and `floor` rises to their last writer: every later
 * transaction depends on at least `floor`. That is conservative and exact enough: an item missing from the map was
 * either never written or last written by a transaction at or below `floor` (the evicted are always the oldest),
 * so depending on `floor` covers it. With a window of 1M items `floor` trails far behind the transactions in
 * flight and costs nothing; a barrier sets `floor` to itself.
 *
 * Workers: a transaction that depends on one of the last `workers` transactions (possibly still in flight) goes to
 * that transaction's worker, where it would wait anyway, leaving the other workers free; any other goes to the
 * worker whose last transaction is the oldest (round robin when nothing conflicts).
 */
import type { Writeset } from './writeset.ts';

export interface ScheduleOptions {
  /** Apply connections (≥ 1; 1 = serial). */
  readonly workers: number;
  /** Row items remembered (default 1,000,000). */
  readonly maxRowKeys?: number;
  /** Tables remembered (default 100,000). */
  readonly maxTables?: number;
}

export interface Assignment {
  /** Position in source order, from 0. */
  readonly index: number;
  readonly worker: number;
  /** Latest earlier transaction this one conflicts with; it starts after that one committed (-1: none). */
  readonly dependsOn: number;
  /** It commits after this one committed (always index - 1). */
  readonly commitAfter: number;
  readonly barrier: boolean;
}

/** Bounded last-writer map: item → index of its last writer, oldest write first. */
class LastWriters {
  readonly #m = new Map<string, number>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get(k: string): number {
    return this.#m.get(k) ?? -1;
  }

  /** Records writer i of k; returns the highest last-writer evicted to stay within the bound (-1: none). */
  set(k: string, i: number): number {
    this.#m.delete(k);
    this.#m.set(k, i);
    let evicted = -1;
    while (this.#m.size > this.#max) {
      const [oldest, w] = this.#m.entries().next().value as [string, number];
      this.#m.delete(oldest);
      evicted = Math.max(evicted, w);
    }
    return evicted;
  }

  get size(): number {
    return this.#m.size;
  }
}

export class ParallelScheduler {
  readonly #workers: number;
  readonly #rowWriter: LastWriters;
  /** Last transaction that took a table whole. */
  readonly #tableWriter: LastWriters;
  /** Last transaction that touched a table at all (row or table item). */
  readonly #tableToucher: LastWriters;
  /** Every transaction depends on at least this one (barriers, evictions). */
  #floor = -1;
  #next = 0;
  /** Worker of each of the last `workers` transactions (ring) and each worker's last transaction. */
  readonly #recentWorker: number[];
  readonly #lastOnWorker: number[];

  constructor(opts: ScheduleOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new RangeError('workers must be an integer ≥ 1');
    this.#workers = opts.workers;
    this.#rowWriter = new LastWriters(Math.max(1, opts.maxRowKeys ?? 1_000_000));
    const maxTables = Math.max(1, opts.maxTables ?? 100_000);
    this.#tableWriter = new LastWriters(maxTables);
    this.#tableToucher = new LastWriters(maxTables);
    this.#recentWorker = new Array<number>(opts.workers).fill(-1);
    this.#lastOnWorker = new Array<number>(opts.workers).fill(-1);
  }

  /** Items currently remembered (for metrics and tests). */
  get remembered(): number {
    return this.#rowWriter.size + this.#tableToucher.size;
  }

  /** Schedules the next transaction in source order. */
  next(ws: Writeset): Assignment {
    const i = this.#next++;
    const barrier = ws.barrier !== null;
    let dep = this.#floor;
    if (barrier) {
      dep = i - 1;
    } else {
      for (const [k, t] of ws.rows) dep = Math.max(dep, this.#rowWriter.get(k), this.#tableWriter.get(t));
      for (const t of ws.tables) dep = Math.max(dep, this.#tableToucher.get(t));
    }
    const worker = this.#pickWorker(i, dep);
    if (barrier) {
      this.#floor = i;
    } else {
      let evicted = -1;
      for (const [k, t] of ws.rows) {
        evicted = Math.max(evicted, this.#rowWriter.set(k, i), this.#tableToucher.set(t, i));
      }
      for (const t of ws.tables) {
        evicted = Math.max(evicted, this.#tableWriter.set(t, i), this.#tableToucher.set(t, i));
      }
      this.#floor = Math.max(this.#floor, evicted);
    }
    return { index: i, worker, dependsOn: dep, commitAfter: i - 1, barrier };
  }

  #pickWorker(i: number, dep: number): number {
    let w: number;
    if (dep >= 0 && dep >= i - this.#workers) {
      w = this.#recentWorker[dep % this.#workers]!;
    } else {
      w = 0;
      for (let x = 1; x < this.#workers; x++) if (this.#lastOnWorker[x]! < this.#lastOnWorker[w]!) w = x;
    }
    this.#recentWorker[i % this.#workers] = w;
    this.#lastOnWorker[w] = i;
    return w;
  }
}
