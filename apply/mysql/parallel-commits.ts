/**
 * The committed prefix of a parallel run (parallel-run.ts; PARALLEL.md). The server commits the units in source
 * order, but their acknowledgements may reach the coordinator in another order (a later unit's commit can finish
 * while an earlier one's reply is still on its way): the state, the metrics and onApplied follow the committed
 * prefix — units 0..last all acknowledged — never a single reply. onApplied runs in commit order, one call at a
 * time (the apply loop writes its cursor from it).
 */
import type { ApplyMetrics } from '../../engine/apply-metrics.ts';
import type { AppliedState, ApplyRunOptions } from '../../engine/target.ts';
import type { Unit } from './unit-worker.ts';

export class CommittedPrefix {
  readonly #metrics: ApplyMetrics;
  /** Highest unit index of the committed prefix (-1: none yet). */
  #last = -1;
  /** Units whose COMMIT returned ahead of an earlier unit's reply. */
  readonly #done = new Map<number, Unit>();
  #applied: Promise<void> = Promise.resolve();
  /** The state the replica holds: the last unit of the prefix's, or what the serial applier stored after it. */
  state: AppliedState | null;
  /** Called with each unit's state, in commit order. */
  onApplied: ApplyRunOptions['onApplied'];

  constructor(state: AppliedState | null, metrics: ApplyMetrics) {
    this.state = state;
    this.#metrics = metrics;
  }

  /** Highest unit index of the committed prefix (-1: none yet). */
  get last(): number {
    return this.#last;
  }

  /** Settles once every onApplied call made so far has returned (or failed: onError was told). */
  get applied(): Promise<void> {
    return this.#applied;
  }

  /**
   * `unit`'s COMMIT returned: the prefix takes in every unit now acknowledged without a gap. `onError` is told when
   * an onApplied call fails.
   */
  committed(unit: Unit, onError: (err: unknown) => void): void {
    this.#done.set(unit.index, unit);
    for (let u = this.#done.get(this.#last + 1); u; u = this.#done.get(this.#last + 1)) {
      this.#done.delete(u.index);
      this.#last = u.index;
      this.state = u.target;
      this.#metrics.transactions(u.txs);
      this.#metrics.rows(u.rows);
      if (u.target.commitTimeUs !== null) this.#metrics.lastCommitTimeUs(u.target.commitTimeUs);
      const cb = this.onApplied;
      const target = u.target;
      if (cb) this.#applied = this.#applied.then(() => cb(target)).catch(onError);
    }
  }
}
