import { describe, expect, it } from 'vitest';
import type { AppliedState } from '../../engine/target.ts';
import { DivergenceError } from './errors.ts';
import { BREAK_AFTER_MS, breakWaits, type Flight, speculative } from './parallel-conflicts.ts';
import { ORDERED_COMMIT_REFUSED } from './position-table.ts';

function flight(index: number, worker: number): Flight {
  const target: AppliedState = {
    seq: BigInt(index),
    lsn: BigInt(index),
    position: null,
    commitTimeUs: null,
    phase: null,
  };
  return {
    unit: { index, items: [], target, firstSeq: BigInt(index), txs: 1, rows: 1 },
    worker,
    dependsOn: -1,
    prevSeq: null,
  };
}

const serverError = (errno: number) => Object.assign(new Error(`errno ${errno}`), { errno });

describe('parallel conflicts', () => {
  it('the breaker evicts the ready units after the earliest stuck one, once each', () => {
    const executing = new Map([
      [2, flight(2, 0)],
      [5, flight(5, 1)],
    ]);
    const ready = new Map([
      [1, flight(1, 2)],
      [3, flight(3, 3)],
      [4, flight(4, 4)],
    ]);
    const busy = (w: number) => (w === 0 ? BREAK_AFTER_MS : 0);
    expect(breakWaits(executing, ready, busy)).toBe(2);
    expect([...ready.values()].map((f) => f.evict === true)).toEqual([false, true, true]);
    expect(breakWaits(executing, ready, busy)).toBe(0);
    expect(breakWaits(executing, new Map([[6, flight(6, 5)]]), () => BREAK_AFTER_MS - 1)).toBe(0);
  });

  it('lock waits and deadlocks are speculative anywhere, divergence and duplicates only before the head', () => {
    for (const atHead of [true, false]) {
      expect(speculative(serverError(1205), atHead)).toBe(true);
      expect(speculative(serverError(1213), atHead)).toBe(true);
    }
    for (const err of [serverError(1062), serverError(ORDERED_COMMIT_REFUSED), new DivergenceError('diverged', {})]) {
      expect(speculative(err, false)).toBe(true);
      expect(speculative(err, true)).toBe(false);
    }
    expect(speculative(serverError(1146), false)).toBe(false);
    expect(speculative(new Error('no errno'), false)).toBe(false);
  });
});
