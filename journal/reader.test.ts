import { spawn } from 'node:child_process';
import { appendFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import type { JournalFrame } from './api.ts';
import { JournalTruncatedError } from './errors.ts';
import { payloadFor, readAll, removeDir, tempDir } from '../test/fixtures/journal-files.ts';
import { encodeFrame } from './frame.ts';
import { JournalReader } from './reader.ts';
import { listSegments, segmentFileName } from './segments.ts';
import { JournalWriter } from './writer.ts';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function openWriter(segmentBytes = 2048) {
  return JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 2, segmentBytes });
}

/** Collects `n` frames from a following reader. */
async function take(it: AsyncIterator<JournalFrame>, n: number): Promise<JournalFrame[]> {
  const out: JournalFrame[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe('JournalReader', () => {
  it('follows frames appended later, across rotation, with low latency', async () => {
    const ac = new AbortController();
    const reader = new JournalReader({ dir, fromLsn: 1n, follow: true, pollMs: 50, signal: ac.signal });
    const it = reader[Symbol.asyncIterator]();
    const first = it.next();
    await sleep(30);
    const w = await openWriter();
    const latencies: number[] = [];
    const got: JournalFrame[] = [];
    for (let i = 1; i <= 60; i++) {
      const t0 = performance.now();
      await w.append(payloadFor(i, 200), i % 3 === 0);
      const r = i === 1 ? await first : await it.next();
      latencies.push(performance.now() - t0);
      if (!r.done) got.push(r.value);
    }
    expect(got.map((f) => f.lsn)).toEqual(Array.from({ length: 60 }, (_, i) => BigInt(i + 1)));
    expect(got.every((f, i) => f.payload.length === payloadFor(i + 1, 200).length)).toBe(true);
    expect((await listSegments(dir)).length).toBeGreaterThan(3);
    latencies.sort((a, b) => a - b);
    // Median well below the poll interval: fs.watch wakes the reader.
    expect(latencies[30]).toBeLessThan(40);
    ac.abort();
    expect((await it.next()).done).toBe(true);
    await w.close();
  });

  it('a reader in a child process sees every frame in order while the writer appends', async () => {
    const total = 600;
    const w = await openWriter(16 * 1024);
    await w.append(payloadFor(1), true);
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, '..', 'test', 'fixtures', 'journal-child-reader.ts'), dir, String(total)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let errOut = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      errOut += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 2; i <= total; i++) {
      const p = w.append(payloadFor(i), i % 5 === 0);
      if (i % 5 === 0) await p;
      if (i % 100 === 0) await sleep(5);
    }
    await w.flush();
    expect(await exited, errOut).toBe(0);
    const res = JSON.parse(out) as { lsns: string[]; sums: number[]; ends: boolean[] };
    expect(res.lsns).toEqual(Array.from({ length: total }, (_, i) => String(i + 1)));
    expect(res.sums).toEqual(Array.from({ length: total }, (_, i) => payloadFor(i + 1).reduce((a, b) => a + b, 0)));
    expect(res.ends[0]).toBe(true);
    expect(res.ends[4]).toBe(true);
    expect(res.ends[5]).toBe(false);
    expect((await listSegments(dir)).length).toBeGreaterThan(3);
    await w.close();
  });

  it('waits for a partially written last frame', async () => {
    const w = await openWriter();
    await w.append(payloadFor(1), true);
    await w.close();
    const ac = new AbortController();
    const it = new JournalReader({ dir, fromLsn: 1n, follow: true, pollMs: 5, signal: ac.signal })[
      Symbol.asyncIterator
    ]();
    expect((await it.next()).value?.lsn).toBe(1n);
    const frame = encodeFrame(2n, true, payloadFor(77, 500));
    const seg = join(dir, segmentFileName(1n));
    const pending = it.next();
    for (const cut of [3, 20, 28, 100, frame.length]) {
      const from = [0, 3, 20, 28, 100][[3, 20, 28, 100, frame.length].indexOf(cut)] as number;
      await appendFile(seg, frame.subarray(from, cut));
      await sleep(15);
    }
    const r = await pending;
    expect(r.value?.lsn).toBe(2n);
    expect(r.value?.payload.length).toBe(payloadFor(77, 500).length);
    ac.abort();
    await it.return?.();
  });

  it('reopens an empty segment file that was replaced while it waited in it', async () => {
    const w = await openWriter(1000);
    await w.append(new Uint8Array(400), true);
    await w.append(new Uint8Array(400), true);
    await w.append(new Uint8Array(400), false); // rotates: segment 3
    await w.close();
    const seg3 = join(dir, segmentFileName(3n));
    await writeFile(seg3, new Uint8Array(0));
    const ac = new AbortController();
    const it = new JournalReader({ dir, fromLsn: 1n, follow: true, pollMs: 5, signal: ac.signal })[
      Symbol.asyncIterator
    ]();
    expect((await take(it, 2)).map((f) => f.lsn)).toEqual([1n, 2n]);
    const pending = it.next();
    await sleep(30);
    await unlink(seg3);
    await writeFile(seg3, encodeFrame(3n, true, new Uint8Array([7, 7])));
    const r = await pending;
    expect(r.value?.lsn).toBe(3n);
    expect([...(r.value?.payload ?? [])]).toEqual([7, 7]);
    ac.abort();
    await it.return?.();
  });

  it('does not wait forever inside a partly written frame of a segment that recovery removed', async () => {
    const w = await openWriter(1000);
    await w.append(new Uint8Array(900), true); // segment 1
    await w.append(new Uint8Array(900), false); // segment 2: a unit that will never end
    await w.close();
    // A crashed writer had started frame 3 in segment 3: half of it is on disk.
    await writeFile(join(dir, segmentFileName(3n)), encodeFrame(3n, false, new Uint8Array(900)).subarray(0, 500));
    const it = new JournalReader({ dir, fromLsn: 1n, follow: true, pollMs: 5 })[Symbol.asyncIterator]();
    expect((await take(it, 2)).map((f) => f.lsn)).toEqual([1n, 2n]);
    const next = it.next().catch((e: unknown) => e); // now waiting inside frame 3
    await sleep(50);
    // Recovery: segment 2 is emptied and kept, segment 3 deleted; the new writer continues with other frames.
    const w2 = await openWriter(1000);
    expect(await listSegments(dir)).toEqual([1n, 2n]);
    for (let i = 2; i <= 6; i++) await w2.append(new Uint8Array(100).fill(i), i % 2 === 0);
    const err = await next;
    expect(err).toBeInstanceOf(JournalTruncatedError);
    expect((err as Error).message).toMatch(/truncated to LSN 1 but this reader had delivered up to 2/);
    await w2.close();
  });

  it('ends at the head when not following, and starts at fromLsn', async () => {
    const w = await openWriter(1024);
    for (let i = 1; i <= 50; i++) await w.append(payloadFor(i, 100), true);
    expect((await readAll(dir)).length).toBe(50);
    expect((await readAll(dir, 41n)).map((f) => f.lsn)).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(41 + i)));
    expect(await readAll(dir, 51n)).toEqual([]);
    const err = await readAll(dir, 60n).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('JOURNAL_BEHIND');
    await w.close();
  });

  it('detects that the writer truncated frames it had delivered (file shrank)', async () => {
    const w = await openWriter(1 << 20);
    await w.append(payloadFor(1), true);
    await w.append(payloadFor(2), false);
    await w.append(payloadFor(3), false);
    await w.close();
    const it = new JournalReader({ dir, fromLsn: 1n, follow: true, pollMs: 5 })[Symbol.asyncIterator]();
    expect((await take(it, 3)).map((f) => f.lsn)).toEqual([1n, 2n, 3n]);
    const next = it.next().catch((e: unknown) => e);
    const w2 = await openWriter(1 << 20);
    expect(w2.headLsn).toBe(1n);
    const err = await next;
    expect(err).toBeInstanceOf(JournalTruncatedError);
    expect((err as JournalTruncatedError).retriable).toBe(true);
    expect((err as JournalTruncatedError).code).toBe('JOURNAL_TRUNCATED');
    await w2.close();
  });

  it('detects a truncation even when the writer regrew the file before the reader looked', async () => {
    const w = await openWriter(1 << 20);
    await w.append(payloadFor(1), true);
    for (let i = 2; i <= 5; i++) await w.append(payloadFor(i), false);
    await w.close();
    const it = new JournalReader({ dir, fromLsn: 1n, follow: true, pollMs: 5 })[Symbol.asyncIterator]();
    expect((await take(it, 5)).length).toBe(5);
    // The reader is paused (not pulled) while the writer recovers and appends far past the old end.
    const w2 = await openWriter(1 << 20);
    for (let i = 2; i <= 40; i++) await w2.append(payloadFor(i + 1000), i % 2 === 0);
    const err = await it.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JournalTruncatedError);
    expect((err as Error).message).toMatch(/truncated to LSN 1/);
    await w2.close();
    // A fresh reader from the acknowledged cursor sees the new frames.
    expect((await readAll(dir, 2n)).length).toBe(39);
  });

  it('refuses an LSN that retention removed, and starts at the oldest for LSN 1', async () => {
    const w = await openWriter(512);
    for (let i = 1; i <= 30; i++) await w.append(payloadFor(i, 100), true);
    await w.close();
    const segs = await listSegments(dir);
    await unlink(join(dir, segmentFileName(segs[0] as bigint)));
    const oldest = segs[1] as bigint;
    expect((await readAll(dir, 1n))[0]?.lsn).toBe(oldest);
    const err = await readAll(dir, oldest - 1n).catch((e: unknown) => e);
    expect((err as TidemarkError).code).toBe('JOURNAL_GONE');
  });

  it('reports damage in the middle of a segment as corruption', async () => {
    const w = await openWriter(1 << 20);
    for (let i = 1; i <= 5; i++) await w.append(payloadFor(i, 100), true);
    await w.close();
    const { readFile } = await import('node:fs/promises');
    const seg = join(dir, segmentFileName(1n));
    const b = await readFile(seg);
    b[40] = (b[40] as number) ^ 0xff;
    await writeFile(seg, b);
    const err = await readAll(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as Error).message).toContain(segmentFileName(1n));
  });
});
