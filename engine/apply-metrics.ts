/** prom-client metrics of one applier; registered only when the caller passes a registry. */
import type { Counter, Gauge, Registry } from 'prom-client';
import { promClient } from '../core/prom.ts';

export interface ApplyMetrics {
  transactions(n: number): void;
  rows(n: number): void;
  lastCommitTimeUs(us: bigint): void;
  /**
   * The target's apply state as the apply loop sees it: 'ok', 'failed' (a non-retriable error; retried with
   * backoff) or 'waiting' (e.g. the replica is read-only). Sets tidemark_apply_target_state to 1 for the current
   * state and 0 for the others; a failure also counts in tidemark_apply_failures_total by error code.
   */
  state(state: ApplyTargetState, failureCode?: string): void;
  /**
   * Parallel apply (apply/mysql parallel-run.ts): a unit dispatched (`chained`: it had to wait for the unit right
   * before it), and units rolled back and re-run in order after a conflict the writesets did not foresee.
   */
  parallelUnit(chained: boolean): void;
  parallelRetries(n: number): void;
}

export type ApplyTargetState = 'ok' | 'failed' | 'waiting';
const STATES: readonly ApplyTargetState[] = ['ok', 'failed', 'waiting'];

export const noMetrics: ApplyMetrics = {
  transactions() {},
  rows() {},
  lastCommitTimeUs() {},
  state() {},
  parallelUnit() {},
  parallelRetries() {},
};

/**
 * Metric objects are shared per registry (several appliers, one per target, label their series); creating the
 * same name twice in one registry would throw.
 */
interface Metrics {
  tx: Counter<string>;
  rows: Counter<string>;
  last: Gauge<string>;
  state: Gauge<string>;
  failures: Counter<string>;
  units: Counter<string>;
  retries: Counter<string>;
}
const perRegistry = new WeakMap<Registry, Metrics>();

export function applyMetrics(registry: Registry, labels: { target: string; source: string }): ApplyMetrics {
  let m = perRegistry.get(registry);
  if (!m) {
    const { Counter, Gauge } = promClient();
    const labelNames = ['target', 'source'];
    m = {
      units: new Counter({
        name: 'tidemark_apply_parallel_units_total',
        help: 'Units (runs of source transactions) parallel apply dispatched, by whether each waited for the one before it',
        labelNames: [...labelNames, 'chained'],
        registers: [registry],
      }),
      retries: new Counter({
        name: 'tidemark_apply_parallel_retries_total',
        help: 'Units parallel apply rolled back and re-ran in source order after a conflict its writesets missed',
        labelNames,
        registers: [registry],
      }),
      tx: new Counter({
        name: 'tidemark_apply_transactions_total',
        help: 'Source transactions applied to the target',
        labelNames,
        registers: [registry],
      }),
      rows: new Counter({
        name: 'tidemark_apply_rows_total',
        help: 'Row changes applied to the target',
        labelNames,
        registers: [registry],
      }),
      last: new Gauge({
        name: 'tidemark_apply_last_commit_time_seconds',
        help: 'Source commit time of the last transaction applied to the target (Unix seconds)',
        labelNames,
        registers: [registry],
      }),
      state: new Gauge({
        name: 'tidemark_apply_target_state',
        help: 'Apply state of the target: 1 for the current state (ok, failed, waiting), 0 for the others',
        labelNames: [...labelNames, 'state'],
        registers: [registry],
      }),
      failures: new Counter({
        name: 'tidemark_apply_failures_total',
        help: 'Non-retriable apply failures of the target (each retry that fails again counts), by error code',
        labelNames: [...labelNames, 'code'],
        registers: [registry],
      }),
    };
    perRegistry.set(registry, m);
  }
  const mm = m;
  return {
    transactions: (n) => mm.tx.inc(labels, n),
    rows: (n) => mm.rows.inc(labels, n),
    lastCommitTimeUs: (us) => mm.last.set(labels, Number(us) / 1e6),
    state: (st, code) => {
      for (const x of STATES) mm.state.set({ ...labels, state: x }, x === st ? 1 : 0);
      if (st === 'failed') mm.failures.inc({ ...labels, code: code ?? 'unknown' });
    },
    parallelUnit: (chained) => mm.units.inc({ ...labels, chained: chained ? 'yes' : 'no' }),
    parallelRetries: (n) => mm.retries.inc(labels, n),
  };
}
