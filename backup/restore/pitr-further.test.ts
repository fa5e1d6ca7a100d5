import { describe, expect, it } from 'vitest';
import { makeManifest } from '../../test/fixtures/backup-catalog-kit.ts';
import { refusal } from '../../test/fixtures/refusal.ts';
import type { BinlogGroup } from './binlog-groups.ts';
import { parseGtidPos, planFurther, type ReplayCursor, stopCursor } from './pitr-plan.ts';

const t = (min: number): Date => new Date(Date.UTC(2026, 11, 6, 10, min));

/** Log segments of job 'db-logs': 000001 [0, 4000) GTIDs 1-80, [4000, 9000) 81-200, 000002 [0, 3000) 201-300. */
function logs() {
  const seg = (seq: bigint, file: string, startPos: bigint, endPos: bigint, a: number, b: number, min: number) =>
    makeManifest('log', t(min), {
      job: 'db-logs',
      gtid: `0-1-${b}`,
      binlog: null,
      log: {
        seq,
        binlogFile: file,
        startPos,
        endPos,
        firstGtid: `0-1-${a}`,
        lastGtid: `0-1-${b}`,
        firstCommit: t(min),
        lastCommit: t(min + 9),
      },
      endedAt: t(min + 9),
    });
  return [
    seg(1n, 'mysql-bin.000001', 0n, 4000n, 1, 80, 0),
    seg(2n, 'mysql-bin.000001', 4000n, 9000n, 81, 200, 10),
    seg(3n, 'mysql-bin.000002', 0n, 3000n, 201, 300, 20),
  ];
}

const seqs = (p: { segments: readonly { log: { seq: bigint } | null }[] }) => p.segments.map((m) => Number(m.log?.seq));

describe('planFurther', () => {
  it('takes the segments from where the replay stopped to the later target, with the file header when needed', () => {
    const all = logs();
    const from: ReplayCursor = { file: 'mysql-bin.000001', position: 4500n, gtid: '0-1-90' };
    const p = planFurther(all, 'db-logs', from, parseGtidPos('0-1-250'));
    expect(seqs(p)).toEqual([2, 3]);
    expect(p.header?.log?.seq).toBe(1n);
    expect(p.target).toBe('0-1-250');
    const same = planFurther(all, 'db-logs', { ...from, position: 2000n, gtid: '0-1-40' }, parseGtidPos('0-1-70'));
    expect(seqs(same)).toEqual([1]);
    expect(same.header).toBeNull();
  });

  it('needs nothing at the same point; refuses going back and a target after the archive', () => {
    const all = logs();
    const from: ReplayCursor = { file: 'mysql-bin.000001', position: 4500n, gtid: '0-1-90' };
    expect(planFurther(all, 'db-logs', from, parseGtidPos('0-1-90')).segments).toEqual([]);
    const back = refusal(() => planFurther(all, 'db-logs', from, parseGtidPos('0-1-89')));
    expect(back.code).toBe('BACKUP_PITR_BEFORE');
    expect(back.message).toContain('only goes forward');
    expect(refusal(() => planFurther(all, 'db-logs', from, parseGtidPos('0-1-301'))).code).toBe('BACKUP_PITR_AFTER');
    const gap = refusal(() => planFurther(all.slice(1), 'db-logs', from, parseGtidPos('0-1-250')));
    expect(gap.code).toBe('BACKUP_PITR_GAP');
    expect(gap.message).toContain('the replay stopped at GTID 0-1-90');
  });
});

const group = (seq: number, start: number, end: number, domain = 0): BinlogGroup => ({
  gtid: `${domain}-1-${seq}`,
  domain,
  serverId: 1,
  seq: BigInt(seq),
  start: BigInt(start),
  end: BigInt(end),
  time: 0,
});

describe('stopCursor', () => {
  const scanned = [
    { file: 'mysql-bin.000001', groups: [group(9, 100, 200), group(10, 200, 300), group(11, 300, 420)] },
    { file: 'mysql-bin.000002', groups: [group(12, 250, 380), group(13, 380, 500)] },
  ];
  const from: ReplayCursor = { file: 'mysql-bin.000001', position: 200n, gtid: '0-1-9' };

  it('is the end of the target group, across files, skipping groups before the start', () => {
    expect(stopCursor(scanned, from, parseGtidPos('0-1-10'))).toEqual({
      file: 'mysql-bin.000001',
      position: 300n,
      gtid: '0-1-10',
    });
    expect(stopCursor(scanned, from, parseGtidPos('0-1-12'))).toEqual({
      file: 'mysql-bin.000002',
      position: 380n,
      gtid: '0-1-12',
    });
  });

  it('refuses when the groups do not reach the target, or another domain comes first', () => {
    const short = refusal(() => stopCursor(scanned, from, parseGtidPos('0-1-14')));
    expect(short.code).toBe('BACKUP_PITR_REPLAY');
    expect(short.message).toContain('end at 0-1-13');
    const other = [
      { file: 'mysql-bin.000001', groups: [group(10, 200, 300), group(1, 300, 400, 1), group(11, 400, 500)] },
    ];
    expect(refusal(() => stopCursor(other, from, parseGtidPos('0-1-11'))).code).toBe('BACKUP_PITR_REPLAY');
  });
});
