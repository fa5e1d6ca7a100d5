import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CursorStore } from './cursors.ts';
import { payloadFor, readAll, removeDir, tempDir } from '../test/fixtures/journal-files.ts';
import { applyRetention } from './retention.ts';
import { listSegments, segmentFileName } from './segments.ts';
import { JournalWriter } from './writer.ts';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

const HOUR = 3_600_000;

async function journal(units: number): Promise<bigint[]> {
  const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes: 600 });
  for (let i = 1; i <= units; i++) await w.append(payloadFor(i, 150), true);
  await w.close();
  return listSegments(dir);
}

describe('journal retention', () => {
  it('deletes nothing without cursors', async () => {
    const segs = await journal(40);
    const r = await applyRetention({ dir, keepHours: 0, now: Date.now() + 10 * HOUR });
    expect(r).toMatchObject({ deleted: [], stoppedBy: 'no-cursors', minAckedLsn: null });
    expect(await listSegments(dir)).toEqual(segs);
  });

  it('never deletes frames at or above the lowest acknowledged LSN of all cursors', async () => {
    const segs = await journal(40);
    expect(segs.length).toBeGreaterThan(5);
    const cursors = new CursorStore(dir);
    await cursors.set('apply:a', 40n);
    const low = segs[3] as bigint;
    await cursors.set('apply:b', low);
    const r = await applyRetention({ dir, keepHours: 0, now: Date.now() + HOUR });
    expect(r.stoppedBy).toBe('unacknowledged');
    // Segments 0..2 end below `low`; segment 3 starts at `low`, which is only acknowledged, not below it.
    expect(r.deleted).toEqual(segs.slice(0, 3).map(segmentFileName));
    const left = await readAll(dir, 1n);
    expect(left[0]?.lsn).toBe(segs[3]);
    expect(left.every((f) => f.lsn >= low)).toBe(true);
    expect(left.length).toBe(40 - Number(low) + 1);
  });

  it('keeps segments younger than keep_hours', async () => {
    await journal(40);
    await new CursorStore(dir).set('apply:a', 40n);
    const before = await listSegments(dir);
    const r = await applyRetention({ dir, keepHours: 1 });
    expect(r).toMatchObject({ deleted: [], stoppedBy: 'too-recent' });
    expect(await listSegments(dir)).toEqual(before);
    const later = await applyRetention({ dir, keepHours: 1, now: Date.now() + 2 * HOUR });
    expect(later.deleted.length).toBe(before.length - 1);
  });

  it('never deletes the segment holding the head', async () => {
    const segs = await journal(40);
    await new CursorStore(dir).set('apply:a', 1000n);
    const r = await applyRetention({ dir, keepHours: 0, now: Date.now() + HOUR });
    expect(r.stoppedBy).toBe('head');
    expect(await listSegments(dir)).toEqual([segs[segs.length - 1]]);
    const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes: 600 });
    expect(w.headLsn).toBe(40n);
    await w.close();
  });
});
