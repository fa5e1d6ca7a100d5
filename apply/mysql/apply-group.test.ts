import { describe, expect, it } from 'vitest';
import type { CommitEntry } from '../../record/record.ts';
import { addCommit, groupDue, groupWait, midState, newGroup } from './apply-group.ts';
import type { AppliedState } from './position-table.ts';

const limits = { max_transactions: 3, max_rows: 100, max_wait_ms: 50 };

describe('apply groups', () => {
  it('is due at max_transactions, max_rows or max_wait_ms of waiting, and after one transaction while isolating', () => {
    const g = newGroup();
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

  it('records the last commit entry as the state the group stores', () => {
    const g = newGroup();
    const position = { kind: 'mysql', binlog: { file: 'b.000001', offset: 400n } } as const;
    const e = { kind: 'commit', seq: 9n, position, commitTimeUs: 5n, phase: 'stream' } as unknown as CommitEntry;
    addCommit(g, e, 42n);
    expect(g.txs).toBe(1);
    expect(g.target).toEqual({ seq: 9n, lsn: 42n, position, commitTimeUs: 5n, phase: 'stream' });
  });

  it('a mid-transaction state keeps the base position and never lowers its lsn', () => {
    const base: AppliedState = { seq: 3n, lsn: 10n, position: null, commitTimeUs: 7n, phase: 'baseline' };
    expect(midState(5n, 8n, base)).toEqual({ seq: 5n, lsn: 10n, position: null, commitTimeUs: 7n, phase: 'baseline' });
    expect(midState(5n, 12n, base).lsn).toBe(12n);
    expect(midState(5n, 12n, null)).toEqual({ seq: 5n, lsn: 12n, position: null, commitTimeUs: null, phase: null });
  });
});
