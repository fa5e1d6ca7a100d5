/** prom-client metrics of one applier; registered only when the caller passes a registry. */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface ApplyMetrics {
  transactions(n: number): void;
  rows(n: number): void;
  lastCommitTimeUs(us: bigint): void;
}

export const noMetrics: ApplyMetrics = {
  transactions() {},
  rows() {},
  lastCommitTimeUs() {},
};

/**
 * Metric objects are shared per registry (several appliers, one per target, label their series); creating the
 * same name twice in one registry would throw.
 */
const perRegistry = new WeakMap<Registry, { tx: Counter<string>; rows: Counter<string>; last: Gauge<string> }>();

export function applyMetrics(registry: Registry, labels: { target: string; source: string }): ApplyMetrics {
  let m = perRegistry.get(registry);
  if (!m) {
    const labelNames = ['target', 'source'];
    m = {
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
    };
    perRegistry.set(registry, m);
  }
  const mm = m;
  return {
    transactions: (n) => mm.tx.inc(labels, n),
    rows: (n) => mm.rows.inc(labels, n),
    lastCommitTimeUs: (us) => mm.last.set(labels, Number(us) / 1e6),
  };
}
