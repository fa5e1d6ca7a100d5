import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/log.ts';
import { CorruptionError } from '../core/errors.ts';
import type { CommitEntry } from '../record/record.ts';
import { appendUnits, copyAsMirror, marker, unitEnds } from '../test/fixtures/lineage.ts';
import { captureLog } from '../test/fixtures/ship-link.ts';
import { readFrames, Source } from '../test/fixtures/ship-mirror.ts';
import { adoptBranch, demoteToMirror, promoteMirror } from './branch.ts';
import { decodeFrame, JournalSink, lastCommit } from './entries.ts';
import { removeDir, sameBytes, tempDir } from '../test/fixtures/journal-files.ts';
import { IDENTITY_FILE, type JournalIdentity, readIdentity, writeIdentity } from './identity.ts';
import { readTruncations } from './truncations.ts';
import { JournalWriter } from './writer.ts';

let dir: string;
let src: Source;
let srcId: string;
beforeEach(async () => {
  dir = await tempDir();
  src = await Source.create(16 << 10);
  await src.writeUnits(12);
  srcId = src.writer.identity.id;
});
afterEach(async () => {
  await src.close();
  await removeDir(dir);
});

const log = silentLogger;

async function entryAt(d: string, lsn: bigint) {
  const f = (await readFrames(d, lsn))[0];
  if (f?.lsn !== lsn) throw new Error(`no frame ${lsn}`);
  return decodeFrame(f);
}

describe('promoteMirror', () => {
  it('cuts the mirror back to the branch point, makes it a source journal and appends the marker unit', async () => {
    const srcFrames = await src.frames();
    const ends = unitEnds(srcFrames);
    const atLsn = ends[7] as bigint;
    await src.unfinished(3);
    // The mirror holds 10 complete units and 3 frames of an unfinished one: all past atLsn is cut.
    const held = await copyAsMirror(src.dir, dir, srcId, ends[9] as bigint, 3);
    expect(held.at(-1)?.lsn).toBe((ends[9] as bigint) + 3n);
    const before = await readIdentity(dir);
    const cap = captureLog();

    const r = await promoteMirror(dir, { atLsn, marker, log: cap.log });

    const lastSeq = ((await entryAt(src.dir, atLsn)).entry as CommitEntry).seq;
    expect(r.markerLsn).toBe(atLsn + 1n);
    // Recovery cut the unfinished unit (event 1), the promotion cut back to atLsn (event 2).
    const events = readTruncations(dir);
    expect(events.map((e) => [e.epoch, e.toLsn])).toEqual([
      [1, ends[9]],
      [2, atLsn],
    ]);
    expect(r.branch).toEqual({ of: srcId, atLsn, epoch: 2 });
    const ident = await readIdentity(dir);
    expect(ident).toEqual({ format: 1, id: r.journalId, created: expect.any(String), branch: r.branch });
    expect(r.journalId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.journalId).not.toBe(before?.id);
    expect(r.journalId).not.toBe(srcId);
    // On disk: atLsn as a decimal string, no mirror field.
    const text = await readFile(join(dir, IDENTITY_FILE), 'utf8');
    expect(JSON.parse(text)).toMatchObject({ branch: { of: srcId, atLsn: String(atLsn), epoch: 2 } });
    expect(JSON.parse(text).mirror).toBeUndefined();
    // Frames: the source's up to atLsn, byte for byte, then the marker alone.
    const got = await readFrames(dir);
    expect(got.map((f) => f.lsn)).toEqual([...srcFrames.filter((f) => f.lsn <= atLsn).map((f) => f.lsn), atLsn + 1n]);
    for (const f of got.slice(0, -1)) {
      expect(sameBytes(f.payload, srcFrames[Number(f.lsn) - 1]?.payload as Uint8Array)).toBe(true);
    }
    const m = await entryAt(dir, atLsn + 1n);
    expect(m.endOfUnit).toBe(true);
    expect(m.entry).toEqual(marker(lastSeq));
    expect((m.entry as CommitEntry).seq).toBe(lastSeq + 1n);
    expect(cap.text()).toMatch(
      new RegExp(`is now the source journal ${r.journalId}, continuing it after LSN ${atLsn}`),
    );
  });

  it('capture resumes from the marker: its position is the resume point, and seqs continue after it', async () => {
    const atLsn = unitEnds(await src.frames())[5] as bigint;
    await copyAsMirror(src.dir, dir, srcId, atLsn);
    const r = await promoteMirror(dir, { atLsn, marker, log });
    expect(r.markerLsn).toBe(atLsn + 1n);
    const want = marker(((await entryAt(src.dir, atLsn)).entry as CommitEntry).seq);
    expect(await lastCommit(dir)).toEqual(want);

    const w = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 0, segmentBytes: 16 << 10 });
    const sink = new JournalSink(w);
    const resume = sink.lastCommit();
    expect(resume?.position).toEqual({
      kind: 'mysql',
      binlog: { file: 'dr1-bin.000007', offset: 1234n },
      gtid: '0-2-99',
    });
    expect(resume).toEqual(want);
    // A source journal now: append works, appendAt does not.
    await expect(w.appendAt(atLsn + 2n, new Uint8Array(1), true)).rejects.toMatchObject({ code: 'JOURNAL_MIRROR' });
    await w.close();
    await appendUnits(dir, 2);
    const after = await readFrames(dir, atLsn + 2n);
    expect(after.map((f) => f.lsn)).toEqual([2n, 3n, 4n, 5n, 6n, 7n].map((n) => atLsn + n));
    expect((decodeFrame(after[0] as (typeof after)[0]).entry as { seq: bigint }).seq).toBe(want.seq + 1n);
  });

  it('is idempotent: a re-run returns the result; after a crash before the marker it appends it', async () => {
    const atLsn = unitEnds(await src.frames())[6] as bigint;
    await copyAsMirror(src.dir, dir, srcId, atLsn);
    const r1 = await promoteMirror(dir, { atLsn, marker, log });
    const r2 = await promoteMirror(dir, { atLsn, marker, log });
    expect(r2).toEqual(r1);
    expect((await readFrames(dir)).at(-1)?.lsn).toBe(atLsn + 1n); // no second marker
    await expect(promoteMirror(dir, { atLsn: atLsn - 1n, marker, log })).rejects.toThrow(
      new RegExp(`was promoted already, branching from ${srcId} at LSN ${atLsn}, not ${atLsn - 1n}`),
    );

    // A crash after the identity was written, before the marker: the re-run appends it.
    const other = await tempDir();
    try {
      await copyAsMirror(src.dir, other, srcId, atLsn);
      const ident: JournalIdentity = {
        format: 1,
        id: 'promoted-id',
        created: 'x',
        branch: { of: srcId, atLsn, epoch: 0 },
      };
      await writeIdentity(other, ident);
      const r3 = await promoteMirror(other, { atLsn, marker, log });
      expect(r3).toEqual({ journalId: 'promoted-id', branch: ident.branch, markerLsn: atLsn + 1n });
      const lastSeq = ((await entryAt(src.dir, atLsn)).entry as CommitEntry).seq;
      expect((await entryAt(other, atLsn + 1n)).entry).toEqual(marker(lastSeq));
      expect(await promoteMirror(other, { atLsn, marker, log })).toEqual(r3); // and now done
    } finally {
      await removeDir(other);
    }
  });

  it('refuses a branch point it does not hold or that does not end a unit, and a journal that is no mirror', async () => {
    const frames = await src.frames();
    const ends = unitEnds(frames);
    await copyAsMirror(src.dir, dir, srcId, ends[3] as bigint, 1);
    // The unfinished unit is not durable: the durable LSN is the 4th unit's end.
    await expect(promoteMirror(dir, { atLsn: (ends[3] as bigint) + 1n, marker, log })).rejects.toThrow(
      `cannot promote journal ${dir} at LSN ${(ends[3] as bigint) + 1n}: the mirror is durable only up to LSN ${ends[3]}`,
    );
    const mid = (ends[2] as bigint) - 1n;
    expect(frames[Number(mid) - 1]?.endOfUnit).toBe(false);
    await expect(promoteMirror(dir, { atLsn: mid, marker, log })).rejects.toThrow(
      new RegExp(`LSN ${mid} does not end a unit \\(its durable LSN is ${ends[3]}\\)`),
    );
    expect((await readIdentity(dir))?.mirror?.of).toBe(srcId); // still a mirror, nothing cut past the unit end
    expect((await readFrames(dir)).at(-1)?.lsn).toBe(ends[3]);
    await src.writer.close();
    await expect(promoteMirror(src.dir, { atLsn: 1n, marker, log })).rejects.toThrow(
      /is a source journal \(id .*\), not a mirror: there is nothing to promote/,
    );
  });
});

describe('demoteToMirror', () => {
  it('cuts the errant tail (a truncation event) and makes the journal a mirror of the new one', async () => {
    const ends = unitEnds(await src.frames());
    const atLsn = ends[8] as bigint;
    await src.writer.close();
    const before = readTruncations(src.dir);
    const branch = { of: srcId, atLsn, epoch: 3 };
    const r = await demoteToMirror(src.dir, { of: 'new-primary-id', branch, log });
    expect(r).toEqual({ cut: atLsn });
    const ident = await readIdentity(src.dir);
    expect(ident).toEqual({
      format: 1,
      id: srcId,
      created: expect.any(String),
      mirror: { of: 'new-primary-id', sourceEpoch: 3 },
    });
    expect(
      readTruncations(src.dir)
        .slice(before.length)
        .map((e) => e.toLsn),
    ).toEqual([atLsn]);
    expect((await readFrames(src.dir)).at(-1)?.lsn).toBe(atLsn);
    // Idempotent, and the mirror continues from atLsn + 1 with the new journal's frames.
    expect(await demoteToMirror(src.dir, { of: 'new-primary-id', branch, log })).toEqual({ cut: null });
    const w = await JournalWriter.open({
      dir: src.dir,
      fsync: 'transaction',
      groupCommitMs: 0,
      segmentBytes: 16 << 10,
      mirrorOf: 'new-primary-id',
    });
    expect(w.headLsn).toBe(atLsn);
    await w.appendAt(atLsn + 1n, new Uint8Array([1]), true);
    expect(await w.sync()).toBe(atLsn + 1n);
    await w.close();
  });

  it('refuses a journal of another id, one shorter than the branch point, and a mirror of another journal', async () => {
    const ends = unitEnds(await src.frames());
    await src.writer.close();
    const head = ends.at(-1) as bigint;
    await expect(
      demoteToMirror(src.dir, { of: 'n', branch: { of: 'some-other-journal', atLsn: 5n, epoch: 0 }, log }),
    ).rejects.toThrow(`journal ${src.dir} is ${srcId}, not the journal some-other-journal the new primary continued`);
    await expect(
      demoteToMirror(src.dir, { of: 'n', branch: { of: srcId, atLsn: head + 4n, epoch: 0 }, log }),
    ).rejects.toThrow(
      `journal ${src.dir} ends at LSN ${head}, below LSN ${head + 4n} where the new primary's journal n branched ` +
        `from it: it lacks frames ${head + 1n}..${head + 4n} the new primary has`,
    );
    expect((await readIdentity(src.dir))?.mirror).toBeUndefined(); // unchanged
    expect((await readFrames(src.dir)).at(-1)?.lsn).toBe(head);
    await copyAsMirror(src.dir, dir, 'x', 3n);
    await expect(demoteToMirror(dir, { of: 'n', branch: { of: 'x', atLsn: 3n, epoch: 0 }, log })).rejects.toThrow(
      /is a mirror of journal x already, not of n/,
    );
  });
});

describe('adoptBranch', () => {
  const mirrorOfA: JournalIdentity = { format: 1, id: 'm', created: '', mirror: { of: 'A', sourceEpoch: 4 } };
  const branch = { of: 'A', atLsn: 100n, epoch: 2 };

  it('is null unless the HELLO names a journal that continues the mirrored one', () => {
    expect(adoptBranch(mirrorOfA, { journalId: 'B' }, 50n)).toBeNull();
    expect(adoptBranch(mirrorOfA, { journalId: 'A', branch: { ...branch, of: 'Z' } }, 50n)).toBeNull();
    expect(adoptBranch(mirrorOfA, { journalId: 'B', branch: { ...branch, of: 'Z' } }, 50n)).toBeNull();
    expect(adoptBranch({ format: 1, id: 'A', created: '' }, { journalId: 'B', branch }, 50n)).toBeNull();
  });

  it('adopts at or below the branch point and refuses above it, naming the errant frames', () => {
    expect(adoptBranch(mirrorOfA, { journalId: 'B', branch }, 0n)).toEqual({ adopt: true });
    expect(adoptBranch(mirrorOfA, { journalId: 'B', branch }, 100n)).toEqual({ adopt: true });
    expect(adoptBranch(mirrorOfA, { journalId: 'B', branch }, 107n, '/s/orders')).toEqual({
      adopt: false,
      refuse:
        "the mirror /s/orders holds LSNs up to 107, past LSN 100 where the new primary's journal B branched from A: " +
        'frames 101..107 never reached the new primary (errant); run tidemark failback for this site',
    });
  });
});

describe('journal identity: branch', () => {
  it('round-trips a branch with atLsn as a decimal string and refuses a malformed one', async () => {
    const id: JournalIdentity = {
      format: 1,
      id: 'j',
      created: 'c',
      branch: { of: 'A', atLsn: 18446744073709551615n, epoch: 7 },
    };
    await writeIdentity(dir, id);
    expect(await readIdentity(dir)).toEqual(id);
    expect(await readFile(join(dir, IDENTITY_FILE), 'utf8')).toContain('"atLsn":"18446744073709551615"');
    for (const bad of [
      { of: 'A', atLsn: 5, epoch: 1 },
      { of: 'A', atLsn: '-5', epoch: 1 },
      { of: '', atLsn: '5', epoch: 1 },
      { of: 'A', atLsn: '5', epoch: -1 },
      { of: 'A', atLsn: '5' },
    ]) {
      await writeFile(join(dir, IDENTITY_FILE), JSON.stringify({ format: 1, id: 'j', branch: bad }));
      await expect(readIdentity(dir)).rejects.toBeInstanceOf(CorruptionError);
    }
  });
});
