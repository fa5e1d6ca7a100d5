import { copyFile, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptionError } from '../core/errors.ts';
import { payloadFor, readAll, removeDir, sameBytes, tempDir } from '../test/fixtures/journal-files.ts';
import { HEADER_BYTES } from './frame.ts';
import { inspectTail } from './recovery.ts';
import { listSegments, segmentFileName } from './segments.ts';
import { readTruncations } from './truncations.ts';
import { JournalWriter } from './writer.ts';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

const SEG1 = segmentFileName(1n);

function open(segmentBytes = 1 << 20, log?: pino.Logger) {
  return JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 5, segmentBytes, ...(log ? { log } : {}) });
}

/** Unit A = LSN 1, 2; unit B = LSN 3, 4, 5. Returns the byte offset where each frame ends. */
async function twoUnits(): Promise<number[]> {
  const w = await open();
  const ends: number[] = [];
  let at = 0;
  for (const [lsn, eou] of [
    [1, false],
    [2, true],
    [3, false],
    [4, false],
    [5, true],
  ] as const) {
    const p = payloadFor(lsn * 11, 80);
    await w.append(p, eou);
    at += HEADER_BYTES + p.length;
    ends.push(at);
  }
  await w.close();
  return ends;
}

describe('journal recovery', () => {
  it('recovers to the previous unit for a cut at every byte offset within the last frame', async () => {
    const ends = await twoUnits();
    const seg = join(dir, SEG1);
    const full = join(dir, 'full.bin');
    await copyFile(seg, full);
    const endA = ends[1] as number;
    const lastStart = ends[3] as number;
    const lastEnd = ends[4] as number;
    for (let cut = lastStart; cut < lastEnd; cut++) {
      await copyFile(full, seg);
      await truncate(seg, cut);
      const w = await open();
      expect(w.headLsn, `cut at ${cut}`).toBe(2n);
      expect(sameBytes(w.lastUnitPayload() ?? new Uint8Array(), payloadFor(22, 80))).toBe(true);
      await w.close();
      expect((await stat(seg)).size).toBe(endA);
    }
    expect((await readAll(dir)).map((f) => f.lsn)).toEqual([1n, 2n]);
    // Appending continues with the next LSN.
    const w = await open();
    expect(await w.append(new Uint8Array([1]), true)).toBe(3n);
    await w.close();
  });

  it('removes a unit cut by a crash, logs it and records a truncation event', async () => {
    const w = await open(600);
    await w.append(payloadFor(1), false);
    await w.append(payloadFor(2), true);
    // An unfinished unit spanning several segments.
    for (let i = 3; i < 12; i++) await w.append(payloadFor(i, 300), false);
    await w.close();
    expect((await listSegments(dir)).length).toBeGreaterThan(3);
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    const w2 = await open(600, log);
    expect(w2.headLsn).toBe(2n);
    await w2.close();
    const warn = lines.map((l) => JSON.parse(l)).find((l) => l.truncatedFrames !== undefined);
    expect(warn).toMatchObject({ truncatedFrames: 9 });
    expect(warn.truncatedBytes).toBeGreaterThan(9 * HEADER_BYTES);
    expect((await readAll(dir)).map((f) => f.lsn)).toEqual([1n, 2n]);
    expect(readTruncations(dir).map((e) => [e.epoch, e.toLsn])).toEqual([[1, 2n]]);
    // Unit 1..2 filled segment 1, so segment 3 stays (emptied) and the later ones are gone.
    expect(await listSegments(dir)).toEqual([1n, 3n]);
    expect((await stat(join(dir, segmentFileName(3n)))).size).toBe(0);
  });

  it('empties and keeps the next segment when the last unit ends its segment', async () => {
    const w = await open(1000);
    await w.append(new Uint8Array(400), false);
    await w.append(new Uint8Array(400), true);
    await w.append(new Uint8Array(400), false); // rotates to segment 3, then the writer "crashes"
    await w.close();
    expect(await listSegments(dir)).toEqual([1n, 3n]);
    const w2 = await open(1000);
    expect(w2.headLsn).toBe(2n);
    expect(await listSegments(dir)).toEqual([1n, 3n]);
    expect((await stat(join(dir, segmentFileName(3n)))).size).toBe(0);
    expect(await w2.append(new Uint8Array(10), true)).toBe(3n);
    await w2.close();
    expect((await stat(join(dir, segmentFileName(3n)))).size).toBe(HEADER_BYTES + 10);
    expect(readTruncations(dir).map((e) => e.toLsn)).toEqual([2n]);
  });

  it('removes everything when no unit was ever completed', async () => {
    const w = await open();
    await w.append(payloadFor(1), false);
    await w.close();
    const w2 = await open();
    expect(w2.headLsn).toBe(0n);
    expect(w2.lastUnitPayload()).toBeNull();
    expect(await w2.append(new Uint8Array([5]), true)).toBe(1n);
    await w2.close();
  });

  it('treats a zero-filled tail as torn', async () => {
    const ends = await twoUnits();
    const seg = join(dir, SEG1);
    await writeFile(seg, new Uint8Array(4096), { flag: 'a' });
    const w = await open();
    expect(w.headLsn).toBe(5n);
    await w.close();
    expect((await stat(seg)).size).toBe(ends[4]);
  });

  it('refuses to open when a frame in the middle is corrupt, naming segment and offset', async () => {
    const ends = await twoUnits();
    const seg = join(dir, SEG1);
    const before = await readFile(seg);
    for (const off of [ends[1] as number, (ends[1] as number) + 5, (ends[1] as number) + HEADER_BYTES + 3]) {
      const bad = Buffer.from(before);
      bad[off] = (bad[off] as number) ^ 0x10;
      await writeFile(seg, bad);
      const err = await open().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CorruptionError);
      expect((err as Error).message).toContain(SEG1);
      expect((err as Error).message).toContain(`byte offset ${ends[1]}`);
      // Nothing was changed and the lock was released.
      expect(sameBytes(await readFile(seg), bad)).toBe(true);
    }
    await writeFile(seg, before);
    await (await open()).close();
  });

  it('refuses a segment that does not continue the previous one', async () => {
    const w = await open(200);
    for (let i = 1; i <= 6; i++) await w.append(payloadFor(i, 100), true);
    await w.close();
    const segs = await listSegments(dir);
    expect(segs.length).toBeGreaterThan(2);
    // Lose the second-to-last segment's last frame: the last segment no longer continues it.
    const prev = segs[segs.length - 2] as bigint;
    const path = join(dir, segmentFileName(prev));
    const size = (await stat(path)).size;
    const frames = (await readAll(dir)).filter((f) => f.lsn >= prev && f.lsn < (segs[segs.length - 1] as bigint));
    const last = frames[frames.length - 1];
    await truncate(path, size - HEADER_BYTES - (last?.payload.length ?? 0));
    const t = await inspectTail(dir);
    expect(t.headLsn).toBe(6n);
    // Recovery stops at the last segment (it holds a complete unit); a reader crossing the gap refuses it.
    const err = await readAll(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as Error).message).toContain(`${segmentFileName(prev)} ends at LSN`);
  });

  it('inspectTail is read-only', async () => {
    await twoUnits();
    const seg = join(dir, SEG1);
    await writeFile(seg, new Uint8Array(10).fill(1), { flag: 'a' });
    const size = (await stat(seg)).size;
    const t = await inspectTail(dir);
    expect(t.headLsn).toBe(5n);
    expect(t.torn?.bytes).toBe(10);
    expect((await stat(seg)).size).toBe(size);
  });
});
