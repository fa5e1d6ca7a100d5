import { describe, expect, it } from 'vitest';
import { groupDue, groupWait, pullForGroup } from './batch-group.ts';
import { Puller } from './puller.ts';

const limits = { max_transactions: 3, max_rows: 100, max_wait_ms: 50 };

describe('batch groups', () => {
  it('is due at max_transactions, max_rows or max_wait_ms of waiting, and after one transaction while isolating', () => {
    const g = { txs: 0, rows: 0, waitedMs: 0 };
    g.waitedMs = 10;
    expect(groupDue(g, limits, false)).toBe(false);
    expect(groupWait(g, limits)).toBe(40);
    g.txs = 1;
    expect(groupDue(g, limits, false)).toBe(false);
    expect(groupDue(g, limits, true)).toBe(true);
    g.txs = 3;
    expect(groupDue(g, limits, false)).toBe(true);
    g.txs = 0;
    g.rows = 100;
    expect(groupDue(g, limits, false)).toBe(true);
    g.rows = 0;
    g.waitedMs = 50;
    expect(groupDue(g, limits, false)).toBe(true);
    g.waitedMs = 80;
    expect(groupWait(g, limits)).toBe(0);
    // max_wait_ms 0: no time bound.
    expect(groupDue(g, { ...limits, max_wait_ms: 0 }, false)).toBe(false);
  });

  it('adds the time a pull waited to the group, bounded by what is left of max_wait_ms', async () => {
    async function* never(): AsyncGenerator<number> {
      await new Promise(() => {});
    }
    const g = { txs: 1, rows: 1, waitedMs: 30 };
    const r = await pullForGroup(new Puller(never(), undefined), g, limits);
    expect(r).toBe('timeout');
    expect(g.waitedMs).toBeGreaterThanOrEqual(49);
    expect(groupDue(g, limits, false)).toBe(true);
  });

  it('counts a timeout as the whole allowance, even when the timer fired a little early', async () => {
    const early = { next: async () => 'timeout' as const } as unknown as Puller<number>;
    const g = { txs: 1, rows: 1, waitedMs: 30 };
    expect(await pullForGroup(early, g, limits)).toBe('timeout');
    expect(g.waitedMs).toBe(50);
    expect(groupDue(g, limits, false)).toBe(true);
  });
});
