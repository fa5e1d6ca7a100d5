import { execFileSync } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TidemarkError } from '../core/errors.ts';
import { JournalLockedError } from './errors.ts';
import { payloadFor, readAll, removeDir, sameBytes, tempDir } from '../test/fixtures/journal-files.ts';
import { HEADER_BYTES } from './frame.ts';
import { LOCK_FILE } from './lock.ts';
import { listSegments } from './segments.ts';
import { JournalWriter } from './writer.ts';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  vi.restoreAllMocks();
  await removeDir(dir);
});

describe('JournalWriter', () => {
  it('round-trips many units across several segments and reopens at the head', async () => {
    const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 2, segmentBytes: 4096 });
    expect(w.headLsn).toBe(0n);
    const expected: { lsn: bigint; endOfUnit: boolean; payload: Uint8Array }[] = [];
    let key = 0;
    const commits: Promise<bigint>[] = [];
    for (let unit = 0; unit < 200; unit++) {
      const frames = 1 + (unit % 4);
      for (let i = 0; i < frames; i++) {
        const endOfUnit = i === frames - 1;
        const payload = payloadFor(++key);
        const p = w.append(payload, endOfUnit);
        expected.push({ lsn: BigInt(key), endOfUnit, payload });
        if (endOfUnit) commits.push(p);
        else expect(await p).toBe(BigInt(key));
      }
      // Await only some commits: several units share a group sync.
      if (unit % 10 === 9) await Promise.all(commits);
    }
    expect(await Promise.all(commits)).toEqual(expected.filter((f) => f.endOfUnit).map((f) => f.lsn));
    expect(w.durableLsn).toBe(BigInt(key));
    const last = w.lastUnitPayload();
    await w.close();

    const segs = await listSegments(dir);
    expect(segs.length).toBeGreaterThan(5);
    for (const s of segs.slice(0, -1)) {
      const size = (await stat(join(dir, `${s.toString().padStart(20, '0')}.tmj`))).size;
      expect(size).toBeLessThanOrEqual(4096);
    }
    const frames = await readAll(dir);
    expect(frames.length).toBe(expected.length);
    frames.forEach((f, i) => {
      const e = expected[i];
      expect(f.lsn).toBe(e?.lsn);
      expect(f.endOfUnit).toBe(e?.endOfUnit);
      expect(sameBytes(f.payload, e?.payload ?? new Uint8Array())).toBe(true);
    });
    const mid = await readAll(dir, 333n);
    expect(mid[0]?.lsn).toBe(333n);
    expect(mid.length).toBe(expected.length - 332);

    const w2 = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 2, segmentBytes: 4096 });
    expect(w2.headLsn).toBe(BigInt(key));
    expect(sameBytes(w2.lastUnitPayload() ?? new Uint8Array(), last ?? new Uint8Array([1]))).toBe(true);
    expect(await w2.append(new Uint8Array([1, 2, 3]), true)).toBe(BigInt(key) + 1n);
    await w2.close();
    expect((await readAll(dir, BigInt(key) + 1n)).map((f) => f.lsn)).toEqual([BigInt(key) + 1n]);
  });

  it('transaction policy: a unit resolves only after fdatasync', async () => {
    const w = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 10, segmentBytes: 1 << 20 });
    const proto = Object.getPrototypeOf((w as unknown as { fh: object }).fh);
    const spy = vi.spyOn(proto, 'datasync');
    for (let i = 1; i <= 20; i++) {
      await w.append(payloadFor(i), false);
      const lsn = await w.append(payloadFor(i + 100), true);
      expect(w.durableLsn).toBeGreaterThanOrEqual(lsn);
    }
    expect(spy.mock.calls.length).toBe(20);
    await w.close();
  });

  it('group commit: many concurrent units resolve with few syncs', async () => {
    const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 20, segmentBytes: 1 << 20 });
    const proto = Object.getPrototypeOf((w as unknown as { fh: object }).fh);
    const spy = vi.spyOn(proto, 'datasync');
    const t0 = performance.now();
    const units: Promise<bigint>[] = [];
    for (let i = 0; i < 300; i++) {
      units.push(w.append(payloadFor(i), true));
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 3));
    }
    const lsns = await Promise.all(units);
    expect(lsns).toEqual(Array.from({ length: 300 }, (_, i) => BigInt(i + 1)));
    expect(w.durableLsn).toBe(300n);
    expect(spy.mock.calls.length).toBeGreaterThan(0);
    expect(spy.mock.calls.length).toBeLessThan(20);
    expect(performance.now() - t0).toBeLessThan(2000);
    await w.close();
  });

  it('group commit syncs at once when many bytes are pending', async () => {
    const w = await JournalWriter.open({
      dir,
      fsync: 'group',
      groupCommitMs: 1000,
      segmentBytes: 64 << 20,
      groupSyncBytes: 64 << 10,
    });
    await w.append(new Uint8Array(10), true);
    const t0 = performance.now();
    // A small unit right after a sync waits for the group interval…
    const small = w.append(new Uint8Array(10), true);
    // …unless enough bytes pile up behind it.
    for (let i = 0; i < 10; i++) await w.append(new Uint8Array(10_000), false);
    const big = w.append(new Uint8Array(10), true);
    await Promise.all([small, big]);
    expect(performance.now() - t0).toBeLessThan(500);
    await w.close();
  });

  it('fails every waiting and later append after an I/O error', async () => {
    const w = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 5, segmentBytes: 1 << 20 });
    await w.append(new Uint8Array([1]), true);
    await (w as unknown as { fh: { close(): Promise<void> } }).fh.close();
    const err = await w.append(new Uint8Array([2]), true).catch((e: unknown) => e);
    expect((err as TidemarkError).code).toBe('JOURNAL_IO');
    await expect(w.append(new Uint8Array([3]), false)).rejects.toThrow(/write failed/);
    await w.close();
    // Reopening recovers: the unit that failed was never written.
    const w2 = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 5, segmentBytes: 1 << 20 });
    expect(w2.headLsn).toBe(1n);
    await w2.close();
  });

  it('applies backpressure when too much is unwritten, and buffers writes', async () => {
    const w = await JournalWriter.open({
      dir,
      fsync: 'group',
      groupCommitMs: 5,
      segmentBytes: 64 << 20,
      maxPendingBytes: 64 << 10,
    });
    const proto = Object.getPrototypeOf((w as unknown as { fh: object }).fh);
    const writev = vi.spyOn(proto, 'writev');
    const ps: Promise<bigint>[] = [];
    for (let i = 0; i < 100; i++) ps.push(w.append(new Uint8Array(10_000).fill(i), false));
    const states = await Promise.all(
      ps.map((p) => Promise.race([p.then(() => 'done'), new Promise((r) => setImmediate(() => r('pending')))])),
    );
    expect(states.filter((s) => s === 'pending').length).toBeGreaterThan(0);
    await Promise.all(ps);
    // Tiny frames queued together go out in few write calls.
    const before = writev.mock.calls.length;
    const small: Promise<bigint>[] = [];
    for (let i = 0; i < 1000; i++) small.push(w.append(new Uint8Array(20), i === 999));
    await Promise.all(small);
    expect(writev.mock.calls.length - before).toBeLessThan(10);
    await w.close();
    expect((await readAll(dir)).length).toBe(1100);
  });

  it('refuses a second writer and names the pid', async () => {
    const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 5, segmentBytes: 1 << 20 });
    const err = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 5, segmentBytes: 1 << 20 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JournalLockedError);
    expect((err as Error).message).toContain(String(process.pid));
    await w.close();
    // Released on close: can open again.
    await (await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 5, segmentBytes: 1 << 20 })).close();
  });

  it('refuses a lock held by another live process', async () => {
    await writeFile(join(dir, LOCK_FILE), `${process.ppid}\n`);
    const err = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 5, segmentBytes: 1 << 20 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JournalLockedError);
    expect((err as Error).message).toContain(`process ${process.ppid}`);
  });

  it('takes over a stale lock from a dead process', async () => {
    const deadPid = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']));
    await writeFile(join(dir, LOCK_FILE), `${deadPid}\n`);
    const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 5, segmentBytes: 1 << 20 });
    expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(process.pid));
    await w.append(new Uint8Array([9]), true);
    await w.close();
    expect((await readdir(dir)).includes(LOCK_FILE)).toBe(false);
    // Our own pid, but no writer here holds it: left by an earlier process with the same pid (container restart).
    await writeFile(join(dir, LOCK_FILE), `${process.pid}\n`);
    await (await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 5, segmentBytes: 1 << 20 })).close();
    await writeFile(join(dir, LOCK_FILE), 'garbage');
    await (await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 5, segmentBytes: 1 << 20 })).close();
  });

  it('rotates only at frame boundaries and keeps a frame larger than a segment whole', async () => {
    const w = await JournalWriter.open({ dir, fsync: 'transaction', groupCommitMs: 5, segmentBytes: 1000 });
    await w.append(new Uint8Array(300), false);
    await w.append(new Uint8Array(5000).fill(7), false);
    await w.append(new Uint8Array(10), true);
    await w.close();
    expect(await listSegments(dir)).toEqual([1n, 2n, 3n]);
    const frames = await readAll(dir);
    expect(frames.map((f) => f.payload.length)).toEqual([300, 5000, 10]);
    expect((await stat(join(dir, '00000000000000000002.tmj'))).size).toBe(5000 + HEADER_BYTES);
  });
});
