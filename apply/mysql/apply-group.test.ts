import { describe, expect, it } from 'vitest';
import type { CommitEntry } from '../../record/record.ts';
import { addCommit, midState, newGroup } from './apply-group.ts';
import type { AppliedState } from './position-table.ts';

describe('apply groups', () => {
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
