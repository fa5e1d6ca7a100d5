import { describe, expect, it } from 'vitest';
import { makeManifest } from '../../test/fixtures/backup-catalog-kit.ts';
import { refusal } from '../../test/fixtures/refusal.ts';
import type { Manifest } from '../manifest.ts';
import type { BinlogGroup } from './binlog-groups.ts';
import {
  advance,
  formatGtidPos,
  gtidAtOrBefore,
  parseGtidPos,
  planFurther,
  planPointInTime,
  type ReplayCursor,
  segmentForTime,
  stopCursor,
} from './pitr-plan.ts';

const t = (min: number): Date => new Date(Date.UTC(2026, 11, 6, 10, min));

/**
 * A full at GTID 0-1-100 (mysql-bin.000001:5000), an incremental at 0-1-300 (000002:700), and log segments of 100
 * GTIDs each: 000001 in two segments (0..4000, 4000..9000 then rotated), 000002 in segments of GTIDs 201-300,
 * 301-400, 401-500.
 */
function history(): { full: Manifest; incr: Manifest; logs: Manifest[] } {
  const full = makeManifest('full', t(10), {
    job: 'db',
    gtid: '0-1-100',
    binlog: { file: 'mysql-bin.000001', position: 5000n },
    lsn: { from: 0n, to: 1000n },
  });
  const incr = makeManifest('incremental', t(30), {
    job: 'db',
    parent: full.id,
    chain: full.id,
    gtid: '0-1-300',
    binlog: { file: 'mysql-bin.000002', position: 700n },
    lsn: { from: 1000n, to: 2000n },
  });
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
  const logs = [
    seg(1n, 'mysql-bin.000001', 0n, 4000n, 1, 80, 0),
    seg(2n, 'mysql-bin.000001', 4000n, 9000n, 81, 200, 10),
    seg(3n, 'mysql-bin.000002', 0n, 3000n, 201, 300, 20),
    seg(4n, 'mysql-bin.000002', 3000n, 6000n, 301, 400, 30),
    seg(5n, 'mysql-bin.000002', 6000n, 9000n, 401, 500, 40),
  ];
  return { full, incr, logs };
}

const plan = (manifests: Manifest[], gtid: string) =>
  planPointInTime({ manifests, job: 'db', logJob: 'db-logs', target: parseGtidPos(gtid) });
const seqs = (ms: readonly Manifest[]) => ms.map((m) => Number(m.log?.seq));

describe('GTID positions', () => {
  it('parse, format, compare and advance per domain', () => {
    const p = parseGtidPos(' 1-2-5, 0-1-10 ');
    expect(formatGtidPos(p)).toBe('0-1-10,1-2-5');
    expect(gtidAtOrBefore(parseGtidPos('0-1-10'), p)).toBe(true);
    expect(gtidAtOrBefore(parseGtidPos('0-1-11'), p)).toBe(false);
    expect(gtidAtOrBefore(parseGtidPos('3-1-1'), p)).toBe(false);
    expect(formatGtidPos(advance(p, parseGtidPos('0-4-12,2-1-1')))).toBe('0-4-12,1-2-5,2-1-1');
    expect(formatGtidPos(advance(p, parseGtidPos('0-4-3')))).toBe('0-1-10,1-2-5');
    expect(parseGtidPos('').size).toBe(0);
    expect(refusal(() => parseGtidPos('0-1')).code).toBe('CONFIG');
    expect(refusal(() => parseGtidPos('0-1-2,0-1-3')).message).toContain('domain 0 twice');
  });
});

describe('planPointInTime', () => {
  it('takes the newest backup at or before the target and the segments from its binlog file to the target', () => {
    const { full, incr, logs } = history();
    const all = [full, incr, ...logs];
    const before = plan(all, '0-1-250');
    expect(before.backup.id).toBe(full.id);
    expect(before.restore.steps.map((s) => s.manifest.id)).toEqual([full.id]);
    expect(before.start).toEqual({ file: 'mysql-bin.000001', position: 5000n, gtid: '0-1-100' });
    // The full's position 5000 is in seq 2; seq 1 is only the header of mysql-bin.000001.
    expect(seqs(before.segments)).toEqual([2, 3]);
    expect(before.header?.log?.seq).toBe(1n);

    const after = plan(all, '0-1-401');
    expect(after.backup.id).toBe(incr.id);
    expect(after.restore.steps.map((s) => s.role)).toEqual(['full', 'incremental']);
    expect(seqs(after.segments)).toEqual([3, 4, 5]);
    expect(after.header).toBeNull();
    expect(after.target).toBe('0-1-401');
    // Exactly at a segment's last GTID: that segment is the last one.
    expect(seqs(plan(all, '0-1-400').segments)).toEqual([3, 4]);
    // Exactly at the backup: nothing to replay.
    expect(plan(all, '0-1-300')).toMatchObject({ segments: [], target: '0-1-300' });
    expect(plan(all, '0-1-300').backup.id).toBe(incr.id);
  });

  it('refuses a target before every backup, naming the oldest', () => {
    const { full, incr, logs } = history();
    const e = refusal(() => plan([full, incr, ...logs], '0-1-99'));
    expect(e.code).toBe('BACKUP_PITR_BEFORE');
    expect(e.message).toContain(`the oldest, '${full.id}', is at 0-1-100`);
    expect(refusal(() => plan([full, ...logs], '5-1-1000')).code).toBe('BACKUP_PITR_BEFORE');
  });

  it('refuses a target after the last archived segment (retriable: the archiver may catch up)', () => {
    const { full, incr, logs } = history();
    const e = refusal(() => plan([full, incr, ...logs], '0-1-501'));
    expect(e.code).toBe('BACKUP_PITR_AFTER');
    expect(e.retriable).toBe(true);
    expect(e.message).toContain('seq 5, up to 0-1-500');
  });

  it('refuses a seq gap between the backup and the target, naming the missing seq', () => {
    const { full, incr, logs } = history();
    const e = refusal(() => plan([full, incr, ...logs.filter((m) => m.log?.seq !== 4n)], '0-1-450'));
    expect(e.code).toBe('BACKUP_PITR_GAP');
    expect(e.context['missing']).toBe('4');
    expect(e.message).toContain('missing segment seq 4 ');
    const two = refusal(() => plan([full, ...logs.filter((m) => m.log?.seq !== 3n && m.log?.seq !== 4n)], '0-1-450'));
    expect(two.context['missing']).toBe('3..4');
    // A gap after the target, or between the file's header and the start position, does not matter.
    expect(seqs(plan([full, ...logs.filter((m) => m.log?.seq !== 5n)], '0-1-250').segments)).toEqual([2, 3]);
    const fullInSeq2 = { ...full, binlog: { file: 'mysql-bin.000001', position: 8000n } };
    const bigFile = [
      ...logs.slice(0, 1),
      { ...(logs[1] as Manifest), log: { ...((logs[1] as Manifest).log as NonNullable<Manifest['log']>), seq: 3n } },
      ...logs
        .slice(2)
        .map((m) => ({ ...m, log: { ...(m.log as NonNullable<Manifest['log']>), seq: (m.log?.seq ?? 0n) + 1n } })),
    ];
    expect(seqs(plan([fullInSeq2, ...bigFile], '0-1-250').segments)).toEqual([3, 4]);
    expect(seqs(plan([full, incr, ...logs.filter((m) => m.log?.seq !== 5n)], '0-1-350').segments)).toEqual([3, 4]);
  });

  it('refuses missing bytes (consecutive seq, but not contiguous) and a missing start of the backup file', () => {
    const { full, incr, logs } = history();
    const shifted = logs.map((m) =>
      m.log?.seq === 4n ? { ...m, log: { ...(m.log as NonNullable<Manifest['log']>), startPos: 3100n } } : m,
    );
    const e = refusal(() => plan([full, incr, ...shifted], '0-1-350'));
    expect(e.code).toBe('BACKUP_PITR_GAP');
    expect(e.message).toContain('starts at mysql-bin.000002:3100, but seq 3 ended at mysql-bin.000002:3000');
    const noStart = refusal(() => plan([full, incr, ...logs.filter((m) => m.log?.seq !== 3n)], '0-1-350'));
    expect(noStart.message).toContain("no segment at the start of binlog file 'mysql-bin.000002'");
    const beyond = { ...incr, binlog: { file: 'mysql-bin.000002', position: 9500n } };
    expect(refusal(() => plan([full, beyond, ...logs], '0-1-450')).message).toContain(
      'no segment holding mysql-bin.000002:9500',
    );
  });

  it('refuses two segments with one seq and a broken chain', () => {
    const { full, incr, logs } = history();
    const dup = { ...(logs[1] as Manifest), id: `${(logs[1] as Manifest).id.slice(0, -6)}ffffff` };
    expect(refusal(() => plan([full, incr, ...logs, dup], '0-1-350')).message).toContain('two segments with seq 2');
    expect(refusal(() => plan([incr, ...logs], '0-1-350')).code).toBe('BACKUP_CHAIN_BROKEN');
  });
});

describe('segmentForTime', () => {
  it('picks the last segment whose first commit is at or before the moment', () => {
    const { logs } = history();
    expect(segmentForTime(logs, 'db-logs', t(0)).log?.seq).toBe(1n);
    expect(segmentForTime(logs, 'db-logs', t(25)).log?.seq).toBe(3n);
    expect(segmentForTime(logs, 'db-logs', t(30)).log?.seq).toBe(4n);
    expect(segmentForTime(logs, 'db-logs', t(49)).log?.seq).toBe(5n);
  });

  it('skips segments without transactions', () => {
    const { logs } = history();
    const quiet = logs.map((m) =>
      m.log?.seq === 4n
        ? { ...m, log: { ...(m.log as NonNullable<Manifest['log']>), firstGtid: null, lastGtid: null } }
        : m,
    );
    expect(segmentForTime(quiet, 'db-logs', t(35)).log?.seq).toBe(3n);
  });

  it('refuses a moment before the first archived commit or after the end of the archive', () => {
    const { logs } = history();
    expect(refusal(() => segmentForTime(logs, 'db-logs', new Date(t(0).getTime() - 1))).code).toBe(
      'BACKUP_PITR_BEFORE',
    );
    const after = refusal(() => segmentForTime(logs, 'db-logs', new Date(t(49).getTime() + 1)));
    expect(after.code).toBe('BACKUP_PITR_AFTER');
    expect(after.message).toContain('seq 5');
    expect(refusal(() => segmentForTime([], 'db-logs', t(1))).message).toContain('no archived segment');
  });
});

describe('planFurther', () => {
  it('takes the segments from where the replay stopped to the later target, with the file header when needed', () => {
    const all = history().logs;
    const from: ReplayCursor = { file: 'mysql-bin.000001', position: 4500n, gtid: '0-1-90' };
    const p = planFurther(all, 'db-logs', from, parseGtidPos('0-1-250'));
    expect(seqs(p.segments)).toEqual([2, 3]);
    expect(p.header?.log?.seq).toBe(1n);
    expect(p.target).toBe('0-1-250');
    const same = planFurther(all, 'db-logs', { ...from, position: 2000n, gtid: '0-1-40' }, parseGtidPos('0-1-70'));
    expect(seqs(same.segments)).toEqual([1]);
    expect(same.header).toBeNull();
  });

  it('needs nothing at the same point; refuses going back and a target after the archive', () => {
    const all = history().logs;
    const from: ReplayCursor = { file: 'mysql-bin.000001', position: 4500n, gtid: '0-1-90' };
    expect(planFurther(all, 'db-logs', from, parseGtidPos('0-1-90')).segments).toEqual([]);
    const back = refusal(() => planFurther(all, 'db-logs', from, parseGtidPos('0-1-89')));
    expect(back.code).toBe('BACKUP_PITR_BEFORE');
    expect(back.message).toContain('only goes forward');
    expect(refusal(() => planFurther(all, 'db-logs', from, parseGtidPos('0-1-501'))).code).toBe('BACKUP_PITR_AFTER');
    const gap = refusal(() => planFurther(all.slice(1), 'db-logs', from, parseGtidPos('0-1-250')));
    expect(gap.code).toBe('BACKUP_PITR_GAP');
    expect(gap.message).toContain('the replay cursor at GTID 0-1-90');
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
