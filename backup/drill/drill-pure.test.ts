import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeManifest } from '../../test/fixtures/backup-catalog-kit.ts';
import type { Manifest } from '../manifest.ts';
import { formatGtidPos } from '../restore/pitr-plan.ts';
import { differences } from './checksums.ts';
import { DrillHistory } from './history.ts';
import { positionTarget } from './target.ts';

const t = (min: number): Date => new Date(Date.UTC(2026, 11, 6, 10, min));
function seg(seq: bigint, file: string, startPos: bigint, endPos: bigint, last: string | null): Manifest {
  return makeManifest('log', t(Number(seq)), {
    job: 'L',
    log: {
      seq,
      binlogFile: file,
      startPos,
      endPos,
      firstGtid: last,
      lastGtid: last,
      firstCommit: t(Number(seq)),
      lastCommit: t(Number(seq)),
    },
  });
}
const logs = [
  seg(1n, 'b.000001', 0n, 1000n, '0-1-10'),
  seg(2n, 'b.000001', 1000n, 2000n, '0-1-20'),
  seg(3n, 'b.000002', 0n, 500n, '1-2-5'),
  seg(4n, 'b.000002', 500n, 900n, null),
];

describe('positionTarget', () => {
  it('the segment holding the position and the GTIDs archived before it', () => {
    const a = positionTarget(logs, 'L', 'b.000001', 1500n);
    expect(a?.holding?.log?.seq).toBe(2n);
    expect(formatGtidPos(a?.before ?? new Map())).toBe('0-1-10');
    // At a segment's end: that segment holds it (its last group ends there).
    expect(positionTarget(logs, 'L', 'b.000001', 2000n)?.holding?.log?.seq).toBe(2n);
    const b = positionTarget(logs, 'L', 'b.000002', 700n);
    expect(b?.holding?.log?.seq).toBe(4n);
    expect(formatGtidPos(b?.before ?? new Map())).toBe('0-1-20,1-2-5');
  });

  it('the very start of a file: no holding segment, everything before the file', () => {
    const c = positionTarget(logs, 'L', 'b.000002', 0n);
    expect(c?.holding).toBeNull();
    expect(formatGtidPos(c?.before ?? new Map())).toBe('0-1-20');
  });

  it('null while the archive does not reach the position', () => {
    expect(positionTarget(logs, 'L', 'b.000002', 901n)).toBeNull();
    expect(positionTarget(logs, 'L', 'b.000003', 4n)).toBeNull();
    expect(positionTarget(logs, 'other', 'b.000001', 4n)).toBeNull();
  });
});

describe('drill checksums and history', () => {
  it('differences names tables that differ or exist on one side only', () => {
    expect(differences({ 'a.t': '1:2:3', 'a.u': '1:1:1' }, { 'a.t': '1:2:3', 'a.u': '1:1:2', 'a.v': '0:0:0' })).toEqual(
      ['a.u', 'a.v'],
    );
    expect(differences({ 'a.t': '1:2:3' }, { 'a.t': '1:2:3' })).toEqual([]);
  });

  it('records drills and lists them newest first, per job', () => {
    const dir = mkdtempSync(join(tmpdir(), 'drills-'));
    try {
      const h = new DrillHistory(join(dir, 'c.sqlite'));
      const base = { logJob: 'L', backup: 'B', gtid: '0-1-5', tables: 3, code: null, error: null };
      h.record({ ...base, job: 'db', startedAt: t(1), endedAt: t(2), ok: true, mismatches: [] });
      h.record({
        ...base,
        job: 'db',
        startedAt: t(3),
        endedAt: t(4),
        ok: false,
        mismatches: ['a.t'],
        code: 'BACKUP_DRILL_FAILED',
        error: 'tables differ: a.t',
      });
      h.record({ ...base, job: 'other', startedAt: t(5), endedAt: t(6), ok: true, mismatches: [] });
      h.close();
      const again = new DrillHistory(join(dir, 'c.sqlite'));
      const rows = again.list('db');
      expect(rows.map((r) => [r.ok, r.startedAt, r.mismatches, r.code])).toEqual([
        [false, t(3), ['a.t'], 'BACKUP_DRILL_FAILED'],
        [true, t(1), [], null],
      ]);
      expect(again.list(undefined, 1).map((r) => r.job)).toEqual(['other']);
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
