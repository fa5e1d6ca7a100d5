import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/log.ts';
import { CursorStore, type JournalFrame, JournalReader, JournalWriter } from '../journal/index.ts';
import { payloadFor, removeDir, tempDir } from '../test/fixtures/journal-files.ts';
import { CommitFrames, resumeHint } from './apply-resume.ts';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

async function frames(): Promise<JournalFrame[]> {
  const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 1, segmentBytes: 4096 });
  for (let i = 1; i <= 40; i++) await w.append(payloadFor(i, 150), i % 4 === 0);
  await w.close();
  const out: JournalFrame[] = [];
  for await (const f of new JournalReader({ dir, fromLsn: 1n, follow: false })) out.push({ ...f });
  return out;
}

describe('the apply cursor hint', () => {
  it('CommitFrames remembers where the last commit frames start', () => {
    const c = new CommitFrames();
    for (let i = 1; i <= 40; i++)
      c.note({ lsn: BigInt(i), payload: new Uint8Array(), endOfUnit: true, segment: 1n, offset: i * 10 });
    expect(c.at(40n)).toEqual({ segment: 1n, offset: 400 });
    expect(c.at(25n)).toEqual({ segment: 1n, offset: 250 });
    expect(c.at(24n)).toBeUndefined(); // older than the last 16
    expect(c.at(41n)).toBeUndefined();
  });

  it('is used only when the frame there has the cursor LSN and lies before the reader start', async () => {
    const all = await frames();
    const f = all[27] as JournalFrame;
    const cursors = new CursorStore(dir);
    const at = { segment: f.segment as bigint, offset: f.offset as number };
    await cursors.set('apply:r', f.lsn, at);
    const hint = await resumeHint(dir, cursors, 'apply:r', f.lsn + 1n, silentLogger);
    expect(hint).toMatchObject({ lsn: f.lsn, ...at, frame: { lsn: f.lsn, endOfUnit: f.endOfUnit } });
    expect(hint?.frame.payload).toEqual(f.payload);
    expect(await resumeHint(dir, cursors, 'apply:r', f.lsn + 9n, silentLogger)).toMatchObject({ lsn: f.lsn, ...at });
    // Not before the start (a rewind moved the target back), another frame there, no such segment, no hint.
    expect(await resumeHint(dir, cursors, 'apply:r', f.lsn, silentLogger)).toBeUndefined();
    await cursors.set('apply:r', f.lsn - 1n, at);
    expect(await resumeHint(dir, cursors, 'apply:r', f.lsn + 1n, silentLogger)).toBeUndefined();
    await cursors.set('apply:r', f.lsn, { segment: 999n, offset: 0 });
    expect(await resumeHint(dir, cursors, 'apply:r', f.lsn + 1n, silentLogger)).toBeUndefined();
    await cursors.set('apply:r', f.lsn);
    expect(await resumeHint(dir, cursors, 'apply:r', f.lsn + 1n, silentLogger)).toBeUndefined();
    expect(await resumeHint(dir, cursors, 'apply:none', f.lsn + 1n, silentLogger)).toBeUndefined();
  });
});
