import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TidemarkError } from '../core/errors.ts';
import type { JournalFrame } from './api.ts';
import { JournalTruncatedError } from './errors.ts';
import { payloadFor, readAll, removeDir, sameBytes, tempDir } from '../test/fixtures/journal-files.ts';
import { IDENTITY_FILE, JournalIdentityError, journalIdentity, readIdentity } from './identity.ts';
import { reconcileTruncations } from './mirror.ts';
import { JournalReader } from './reader.ts';
import { listSegments } from './segments.ts';
import { readTruncations } from './truncations.ts';
import { JournalWriter } from './writer.ts';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

const SRC = 'source-journal-id';

function mirror(opts: { mirrorOf?: string; startLsn?: bigint; segmentBytes?: number } = {}) {
  return JournalWriter.open({
    dir,
    fsync: 'transaction',
    groupCommitMs: 0,
    segmentBytes: opts.segmentBytes ?? 1 << 20,
    mirrorOf: opts.mirrorOf ?? SRC,
    ...(opts.startLsn === undefined ? {} : { startLsn: opts.startLsn }),
  });
}

/** Frames lsn..lsn+n-1 with units of `unit` frames (unit ends at multiples of `unit`). */
function frames(from: number, n: number, unit = 3): JournalFrame[] {
  return Array.from({ length: n }, (_, i) => ({
    lsn: BigInt(from + i),
    endOfUnit: (from + i) % unit === 0,
    payload: payloadFor(from + i, 300),
  }));
}

async function put(w: JournalWriter, fs: readonly JournalFrame[]): Promise<bigint> {
  for (const f of fs) await w.appendAt(f.lsn, f.payload, f.endOfUnit);
  return w.sync();
}

function expectSame(got: readonly JournalFrame[], want: readonly JournalFrame[]): void {
  expect(got.map((f) => [f.lsn, f.endOfUnit])).toEqual(want.map((f) => [f.lsn, f.endOfUnit]));
  for (let i = 0; i < want.length; i++)
    expect(sameBytes(got[i]?.payload as Uint8Array, want[i]?.payload as Uint8Array)).toBe(true);
}

describe('journal identity', () => {
  it('a new journal gets a JOURNAL file with a random id; one without it (older journal) gets it on next open', async () => {
    await expect(journalIdentity(dir)).rejects.toMatchObject({ code: 'JOURNAL_NO_IDENTITY', retriable: true });
    const w = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 0, segmentBytes: 4096 });
    const id = await journalIdentity(dir);
    expect(id).toMatchObject({ format: 1 });
    expect(id.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(id.mirror).toBeUndefined();
    expect(w.identity).toEqual(id);
    await w.append(payloadFor(1), true);
    await w.close();
    const w2 = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 0, segmentBytes: 4096 });
    expect(w2.identity.id).toBe(id.id); // kept across opens
    await w2.close();
    // A journal made before identities existed: the next open adds one and keeps the frames.
    await unlink(join(dir, IDENTITY_FILE));
    const w3 = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 0, segmentBytes: 4096 });
    expect(w3.headLsn).toBe(1n);
    expect((await readIdentity(dir))?.id).not.toBe(id.id);
    await w3.close();
    expect((await readFile(join(dir, IDENTITY_FILE), 'utf8')).endsWith('}\n')).toBe(true);
  });

  it('a mirror records the journal it mirrors and refuses another; a source journal is not a mirror', async () => {
    const w = await mirror();
    expect(w.identity.mirror).toEqual({ of: SRC, sourceEpoch: 0 });
    await w.close();
    const err = await mirror({ mirrorOf: 'another-source' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JournalIdentityError);
    expect((err as Error).message).toMatch(
      /journal identity changed: .* it mirrors journal source-journal-id, not another-source: .*rebaseline this standby/,
    );
    // Opened without mirrorOf, a mirror stays a mirror (appendAt only).
    const plain = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 0, segmentBytes: 4096 });
    await expect(plain.append(payloadFor(1), true)).rejects.toMatchObject({ code: 'JOURNAL_MIRROR' });
    await plain.close();

    const other = await tempDir();
    const src = await JournalWriter.open({ dir: other, fsync: 'transaction', groupCommitMs: 0, segmentBytes: 4096 });
    await expect(src.appendAt(1n, payloadFor(1), true)).rejects.toMatchObject({ code: 'JOURNAL_MIRROR' });
    await src.close();
    await expect(
      JournalWriter.open({ dir: other, fsync: 'transaction', groupCommitMs: 0, segmentBytes: 4096, mirrorOf: SRC }),
    ).rejects.toThrow(/it is a source journal .*not a mirror of source-journal-id/);
    await removeDir(other);
  });
});

describe('mirror journal: appendAt and sync', () => {
  it('takes head + 1 only; a resend of identical bytes is skipped, a different one or a gap names both LSNs', async () => {
    const w = await mirror();
    const fs = frames(1, 9);
    expect(await put(w, fs)).toBe(9n);
    // Resends of stored frames: identical → skipped (the journal is unchanged).
    expect(await w.appendAt(4n, fs[3]?.payload as Uint8Array, false)).toBe(4n);
    expect(await w.appendAt(9n, fs[8]?.payload as Uint8Array, true)).toBe(9n);
    expect(w.headLsn).toBe(9n);
    const diff = (await w.appendAt(5n, payloadFor(999), false).catch((e: unknown) => e)) as TidemarkError;
    expect(diff.code).toBe('JOURNAL_MIRROR_MISMATCH');
    expect(diff.message).toMatch(/frame LSN 5 was sent again but differs .*\(head LSN 9\)/);
    const flag = (await w.appendAt(6n, fs[5]?.payload as Uint8Array, false).catch((e: unknown) => e)) as TidemarkError;
    expect(flag.code).toBe('JOURNAL_MIRROR_MISMATCH'); // same bytes, other end-of-unit flag
    const gap = (await w.appendAt(11n, payloadFor(11), false).catch((e: unknown) => e)) as TidemarkError;
    expect(gap.code).toBe('JOURNAL_LSN_GAP');
    expect(gap.message).toMatch(/frame LSN 11 does not follow the head LSN 9 \(10 is next\)/);
    await put(w, frames(10, 3));
    await w.close();
    expectSame(await readAll(dir), frames(1, 12));
  });

  it('sync() makes mid-unit frames durable and returns the synced LSN; durableLsn moves at unit ends only', async () => {
    const w = await mirror();
    expect(await put(w, frames(1, 4))).toBe(4n); // units end at 3; 4 is mid-unit
    expect(w.syncedLsn).toBe(4n);
    expect(w.durableLsn).toBe(3n);
    expect(await put(w, frames(5, 2))).toBe(6n);
    expect(w.durableLsn).toBe(6n);
    // A big unit: many frames, synced part by part, durable only at its end.
    const big = Array.from({ length: 50 }, (_, i) => ({
      lsn: 7n + BigInt(i),
      endOfUnit: i === 49,
      payload: new Uint8Array(40_000).fill(i),
    }));
    for (let i = 0; i < 50; i += 10) {
      expect(await put(w, big.slice(i, i + 10))).toBe(16n + BigInt(i));
      expect(w.durableLsn).toBe(i === 40 ? 56n : 6n);
    }
    await w.close();
  });

  it('recovery on open cuts an unfinished unit (truncation event) and readers see complete units only', async () => {
    const w = await mirror();
    await put(w, frames(1, 8)); // 7, 8 are an unfinished unit
    const seen: bigint[] = [];
    for await (const f of new JournalReader({ dir, fromLsn: 1n, follow: false })) seen.push(f.lsn);
    expect(seen.length).toBe(8);
    await w.close();
    const w2 = await mirror();
    expect([w2.headLsn, w2.syncedLsn, w2.durableLsn]).toEqual([6n, 6n, 6n]);
    expect(readTruncations(dir)).toMatchObject([{ epoch: 1, toLsn: 6n }]);
    // The source sends 7 and 8 again (and more).
    await put(w2, frames(7, 6));
    await w2.close();
    expectSame(await readAll(dir), frames(1, 12));
  });
});

describe('mirror journal: start anywhere, cut back', () => {
  it('an empty mirror starts at any LSN, in a segment named by it; startLsn names the first segment', async () => {
    const w = await mirror({ startLsn: 1000n });
    expect(await listSegments(dir)).toEqual([1000n]);
    expect([w.headLsn, w.syncedLsn, w.durableLsn, w.isEmpty]).toEqual([999n, 999n, 999n, true]);
    await w.close();

    // An empty mirror made at LSN 1 restarts at its first frame; a reader waiting in it follows.
    const other = await tempDir();
    const w2 = await JournalWriter.open({
      dir: other,
      fsync: 'transaction',
      groupCommitMs: 0,
      segmentBytes: 4096,
      mirrorOf: SRC,
    });
    expect(await listSegments(other)).toEqual([1n]);
    const ac = new AbortController();
    const got: bigint[] = [];
    const following = (async () => {
      for await (const f of new JournalReader({
        dir: other,
        fromLsn: 1n,
        follow: true,
        pollMs: 10,
        signal: ac.signal,
      })) {
        got.push(f.lsn);
        if (got.length === 6) ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    await put(w2, frames(2000, 6));
    expect(await listSegments(other)).toEqual([2000n]);
    expect([w2.headLsn, w2.durableLsn]).toEqual([2005n, 2004n]);
    await expect(w2.appendAt(3000n, payloadFor(1), true)).rejects.toMatchObject({ code: 'JOURNAL_LSN_GAP' });
    await following;
    expect(got).toEqual([2000n, 2001n, 2002n, 2003n, 2004n, 2005n]);
    await w2.close();
    await removeDir(other);
  });

  it('truncateTo cuts back (also at a segment end), records an event; readers that delivered the frames learn it', async () => {
    // 328-byte frames in 1 KiB segments: 3 frames (one unit) per segment, segments 1, 4, 7, …
    const fixed = (from: number, n: number) =>
      frames(from, n).map((f) => ({ ...f, payload: new Uint8Array(300).fill(Number(f.lsn) & 0xff) }));
    const w = await mirror({ segmentBytes: 1024 });
    await put(w, fixed(1, 30));
    expect(await listSegments(dir)).toEqual([1n, 4n, 7n, 10n, 13n, 16n, 19n, 22n, 25n, 28n]);
    const reader = new JournalReader({ dir, fromLsn: 1n, follow: true, pollMs: 10 });
    const it = reader[Symbol.asyncIterator]();
    for (let i = 0; i < 30; i++) await it.next();
    // Unit end 9 ends segment 7: segment 10 is kept, emptied; later ones go.
    await w.truncateTo(9n);
    expect([w.headLsn, w.syncedLsn, w.durableLsn]).toEqual([9n, 9n, 9n]);
    expect(await listSegments(dir)).toEqual([1n, 4n, 7n, 10n]);
    expect(readTruncations(dir)).toMatchObject([{ epoch: 1, toLsn: 9n }]);
    await expect(it.next()).rejects.toBeInstanceOf(JournalTruncatedError);
    // Mid-unit: recovery cuts on to the unit end before it.
    await w.truncateTo(8n);
    expect(w.headLsn).toBe(6n);
    expect(readTruncations(dir).map((e) => e.toLsn)).toEqual([9n, 8n, 6n]);
    await put(w, fixed(7, 10));
    await w.close();
    expectSame(await readAll(dir), fixed(1, 16));
    await expect(mirror().then((m) => m.truncateTo(-5n).finally(() => m.close()))).rejects.toMatchObject({
      code: 'JOURNAL_GONE',
    });
  });

  it('reconcileTruncations: cuts frames a newer source truncation removed, records the epoch, refuses a gap', async () => {
    const w = await mirror();
    await put(w, frames(1, 12));
    // Nothing new: nothing happens.
    expect(await reconcileTruncations(w, [])).toEqual({ cutTo: null, sourceEpoch: 0 });
    // A source truncation above the mirror's head: only the epoch is recorded.
    expect(await reconcileTruncations(w, [{ epoch: 1, toLsn: 40n }])).toEqual({ cutTo: null, sourceEpoch: 1 });
    expect((await readIdentity(dir))?.mirror).toEqual({ of: SRC, sourceEpoch: 1 });
    // Epoch 2 cut the source back to 6 after this mirror received 7..12: the mirror cuts them.
    const events = [
      { epoch: 1, toLsn: 40n },
      { epoch: 2, toLsn: 6n },
    ];
    expect(await reconcileTruncations(w, events)).toEqual({ cutTo: 6n, sourceEpoch: 2 });
    expect(w.headLsn).toBe(6n);
    expect(w.identity.mirror?.sourceEpoch).toBe(2);
    // Seen already: no second cut.
    await put(w, frames(7, 3));
    expect(await reconcileTruncations(w, events)).toEqual({ cutTo: null, sourceEpoch: 2 });
    expect(w.headLsn).toBe(9n);
    // The source lists only epochs 5.. while this mirror reconciled 2: what 3 and 4 cut is unknown.
    await expect(reconcileTruncations(w, [{ epoch: 5, toLsn: 1n }])).rejects.toMatchObject({
      code: 'JOURNAL_MIRROR_RECONCILE',
    });
    await w.close();
    // An empty mirror adopts the source's epoch without cutting anything.
    const other = await tempDir();
    const e = await JournalWriter.open({
      dir: other,
      fsync: 'transaction',
      groupCommitMs: 0,
      segmentBytes: 4096,
      mirrorOf: SRC,
    });
    expect(await reconcileTruncations(e, [{ epoch: 70, toLsn: 3n }])).toEqual({ cutTo: null, sourceEpoch: 70 });
    await e.close();
    await removeDir(other);
  });

  it('keeps a damaged identity file from being overwritten', async () => {
    await writeFile(join(dir, IDENTITY_FILE), '{"format":1');
    await expect(mirror()).rejects.toThrow(/JOURNAL: not valid JSON/);
    await writeFile(join(dir, IDENTITY_FILE), '{"format":9,"id":"x"}');
    await expect(mirror()).rejects.toMatchObject({ code: 'JOURNAL_FORMAT' });
  });
});
