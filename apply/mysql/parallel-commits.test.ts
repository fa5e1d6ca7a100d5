import { describe, expect, it } from 'vitest';
import { noMetrics } from '../../engine/apply-metrics.ts';
import type { AppliedState } from '../../engine/target.ts';
import { CommittedPrefix } from './parallel-commits.ts';
import type { Unit } from './unit-worker.ts';

function unit(index: number): Unit {
  const target: AppliedState = {
    seq: BigInt(10 * index + 9),
    lsn: BigInt(index),
    position: null,
    commitTimeUs: null,
    phase: null,
  };
  return { index, items: [], target, firstSeq: BigInt(10 * index), txs: 1, rows: 2 };
}

describe('CommittedPrefix', () => {
  it('follows the committed prefix, not single replies: state and onApplied in commit order', async () => {
    const rows: number[] = [];
    const p = new CommittedPrefix(null, { ...noMetrics, rows: (n) => rows.push(n) });
    const seen: bigint[] = [];
    p.onApplied = (st) => {
      seen.push(st.seq);
    };
    const fail = (err: unknown) => {
      throw err;
    };
    p.committed(unit(1), fail);
    p.committed(unit(2), fail);
    expect(p.last).toBe(-1);
    expect(p.state).toBeNull();
    p.committed(unit(0), fail);
    expect(p.last).toBe(2);
    expect(p.state?.seq).toBe(29n);
    await p.applied;
    expect(seen).toEqual([9n, 19n, 29n]);
    expect(rows).toEqual([2, 2, 2]);
  });

  it('tells onError when onApplied fails, and later units still report', async () => {
    const p = new CommittedPrefix(null, noMetrics);
    const seen: bigint[] = [];
    p.onApplied = (st) => {
      if (st.seq === 9n) throw new Error('cursor write failed');
      seen.push(st.seq);
    };
    const errors: unknown[] = [];
    p.committed(unit(0), (e) => errors.push(e));
    p.committed(unit(1), (e) => errors.push(e));
    await p.applied;
    expect(errors.map((e) => (e as Error).message)).toEqual(['cursor write failed']);
    expect(seen).toEqual([19n]);
  });
});
