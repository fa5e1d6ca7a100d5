import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../../core/errors.ts';
import { sequencePosition } from '../../record/position.ts';
import { lockForRewindSql, parseStored, setPointSql, storeParams } from './position.ts';

describe('tidemark.applied rows', () => {
  it('round-trips a stored state through the parameters and the text row', () => {
    const next = {
      seq: 9_007_199_254_740_993n,
      lsn: 4096n,
      position: sequencePosition('postgres', 0x1_0000_0028n),
      commitTimeUs: 1_765_000_000_123_456n,
      phase: 'stream' as const,
    };
    const p = storeParams('pgsrc', null, next);
    expect(p.slice(0, 4)).toEqual(['pgsrc', null, '9007199254740993', '4096']);
    const row = { seq: p[2], lsn: p[3], position: p[4], commit_time_us: p[5], phase: p[6], hold: null };
    expect(parseStored(row)).toEqual({ state: next, ddlPendingSeq: null, hold: null });
    expect(storeParams('pgsrc', next, next)[1]).toBe('9007199254740993');
  });

  it('a row with nothing applied yet has no state but keeps its hold; no row at all: nothing', () => {
    expect(
      parseStored({ seq: null, lsn: null, position: null, commit_time_us: null, phase: null, hold: 'rewind' }),
    ).toEqual({ state: null, ddlPendingSeq: null, hold: 'rewind' });
    expect(parseStored(undefined)).toEqual({ state: null, ddlPendingSeq: null, hold: null });
  });

  it('a position that is not JSON is corruption, not a silent restart', () => {
    const row = { seq: '1', lsn: '2', position: '{oops', commit_time_us: null, phase: 'stream', hold: null };
    expect(() => parseStored(row)).toThrow(CorruptionError);
  });

  it('rewind statements: the lock only while the row stores the planned seq; the point with its hold', () => {
    expect(lockForRewindSql("it's", 41n, 'rewound')).toBe(
      "UPDATE tidemark.applied SET hold = 'rewound', applied_at = now() WHERE source = 'it''s' AND seq IS NOT DISTINCT FROM 41::bigint",
    );
    expect(lockForRewindSql('pgsrc', null, 'h')).toMatch(/seq IS NOT DISTINCT FROM NULL::bigint$/);
    const st = {
      seq: 40n,
      lsn: 4096n,
      position: sequencePosition('postgres', 0x1_0000_0028n),
      commitTimeUs: 1_765_000_000_123_456n,
      phase: 'stream' as const,
    };
    const sql = setPointSql('pgsrc', st, null);
    expect(sql).toMatch(
      /^UPDATE tidemark\.applied SET seq = 40, lsn = 4096, position = '\{.*\}', commit_time_us = 1765000000123456, phase = 'stream', hold = NULL, applied_at = now\(\) WHERE source = 'pgsrc'$/,
    );
    // The position text is what the applier stores (storeParams), so open() reads the point back as stored.
    const pos = /position = '(.*?)', commit/.exec(sql)![1]!;
    expect(pos).toBe(storeParams('pgsrc', null, st)[4]);
  });
});
