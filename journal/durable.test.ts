import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JournalFrame } from './api.ts';
import { DURABLE_FILE, decodeDurable, encodeDurable, readDurableLsn } from './durable.ts';
import { JournalTruncatedError } from './errors.ts';
import { payloadFor, removeDir, tempDir } from '../test/fixtures/journal-files.ts';
import { JournalReader } from './reader.ts';
import { segmentFileName } from './segments.ts';
import { readTruncations, recordTruncation } from './truncations.ts';
import { JournalWriter } from './writer.ts';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function open(groupCommitMs = 2) {
  return JournalWriter.open({ dir, fsync: 'group', groupCommitMs, segmentBytes: 1 << 20 });
}

/** Starts a following reader and collects what it delivers. */
function follow(opts: { durableOnly?: boolean; sinceEpoch?: number; fromLsn?: bigint } = {}) {
  const ac = new AbortController();
  const got: JournalFrame[] = [];
  const done = (async () => {
    for await (const f of new JournalReader({
      dir,
      fromLsn: opts.fromLsn ?? 1n,
      follow: true,
      pollMs: 10,
      signal: ac.signal,
      durableOnly: opts.durableOnly ?? true,
      ...(opts.sinceEpoch === undefined ? {} : { sinceEpoch: opts.sinceEpoch }),
    })) {
      got.push({ lsn: f.lsn, endOfUnit: f.endOfUnit, payload: f.payload.slice() });
    }
  })();
  done.catch(() => undefined);
  return { got, done, stop: () => ac.abort() };
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('durable mark', () => {
  it('encodes with a CRC; a torn or damaged record reads as unknown', () => {
    const b = encodeDurable({ lsn: 123456789n, incarnation: 77 });
    expect(decodeDurable(b)).toEqual({ lsn: 123456789n, incarnation: 77 });
    for (let i = 0; i < b.length; i++) {
      const d = b.slice();
      d[i] = (d[i] as number) ^ 0x10;
      expect(decodeDurable(d)).toBeNull();
    }
    expect(decodeDurable(b.subarray(0, 23))).toBeNull();
  });

  it('durableLsn moves only at synced unit ends, and DURABLE follows it for other processes', async () => {
    expect(await readDurableLsn(dir)).toBe(0n);
    const w = await open();
    expect(await readDurableLsn(dir)).toBe(0n);
    await w.append(payloadFor(1), false);
    await w.append(payloadFor(2), false);
    await w.flush(); // synced, but no unit ended
    expect([w.syncedLsn, w.durableLsn, await readDurableLsn(dir)]).toEqual([2n, 0n, 0n]);
    await w.append(payloadFor(3), true);
    expect([w.durableLsn, await readDurableLsn(dir)]).toEqual([3n, 3n]);
    await w.append(payloadFor(4), false);
    await w.flush();
    expect([w.syncedLsn, w.durableLsn, await readDurableLsn(dir)]).toEqual([4n, 3n, 3n]);
    await w.close();
    expect((await readFile(join(dir, DURABLE_FILE))).length).toBe(24);
  });

  it('on open after a crash the mark is the recovered head (an unfinished unit is not durable)', async () => {
    const w = await open();
    for (let i = 1; i <= 6; i++) await w.append(payloadFor(i), i % 3 === 0);
    await w.append(payloadFor(7), false);
    await w.close();
    // A stale or damaged mark is rewritten on open.
    await writeFile(join(dir, DURABLE_FILE), new Uint8Array(24));
    expect(await readDurableLsn(dir)).toBe(0n);
    const w2 = await open();
    expect([w2.headLsn, w2.durableLsn, await readDurableLsn(dir)]).toEqual([6n, 6n, 6n]);
    await w2.close();
  });
});

describe('JournalReader durableOnly', () => {
  it('holds frames above the durable mark until the writer syncs a unit end; a plain reader does not', async () => {
    const w = await open(150);
    await w.append(payloadFor(1), true); // durable (LSN 1)
    const durable = follow();
    const plain = follow({ durableOnly: false });
    await w.append(payloadFor(2), false);
    await w.append(payloadFor(3), false);
    await until(() => plain.got.length === 3, 'the plain reader');
    await sleep(100);
    expect(durable.got.map((f) => f.lsn)).toEqual([1n]);
    const t0 = performance.now();
    const commit = w.append(payloadFor(4), true); // the group sync comes within ~150 ms
    await until(() => durable.got.length === 4, 'the durable reader');
    expect(await commit).toBe(4n);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(durable.got.map((f) => f.lsn)).toEqual([1n, 2n, 3n, 4n]);
    durable.stop();
    plain.stop();
    await Promise.all([durable.done, plain.done]);
    // Not following: it ends at the mark.
    await w.append(payloadFor(5), false);
    await w.flush();
    const once: bigint[] = [];
    for await (const f of new JournalReader({ dir, fromLsn: 1n, follow: false, durableOnly: true })) once.push(f.lsn);
    expect(once).toEqual([1n, 2n, 3n, 4n]);
    await w.close();
  });

  it('a truncation that removes a held frame ends the iteration before the next writer can rewrite it', async () => {
    const w = await open(5);
    for (let i = 1; i <= 3; i++) await w.append(payloadFor(i), i === 3);
    await w.append(payloadFor(4), false); // unfinished unit: 4, 5
    await w.append(payloadFor(5), false);
    const r = follow();
    const plain = follow({ durableOnly: false });
    await until(() => plain.got.length === 5, 'frames 4 and 5 to be read');
    await w.close(); // the writer "crashed" with its unit unfinished
    const w2 = await open(5); // recovery: truncates to 3 (event) and continues at 4
    for (let i = 4; i <= 6; i++) await w2.append(payloadFor(i), i === 6);
    await expect(r.done).rejects.toThrow(/truncated to LSN 3 removing LSN 4, read and held until durable/);
    expect(r.got.map((f) => f.lsn)).toEqual([1n, 2n, 3n]);
    plain.stop();
    await plain.done.catch(() => undefined);
    await w2.close();
  });

  /**
   * The race the incarnation closes: a reader that starts after the next writer recorded its truncation event
   * (so the event is not news to it) but before that writer cut the file, reads the frames about to be cut.
   */
  for (const same of [false, true]) {
    it(`frames read before the next writer recovered are ${same ? 'delivered when rewritten identically' : 'checked on disk and refused when rewritten differently'}`, async () => {
      const w = await open(5);
      for (let i = 1; i <= 3; i++) await w.append(payloadFor(i), i === 3);
      const cutAt = (await stat(join(dir, segmentFileName(1n)))).size;
      await w.append(payloadFor(4), false);
      await w.append(payloadFor(5), false);
      await w.close();
      await recordTruncation(dir, 3n); // the next writer's recovery, step 1
      const r = follow();
      await until(() => r.got.length === 3, 'frames 1..3 (4 and 5 read and held)');
      await truncate(join(dir, segmentFileName(1n)), cutAt); // step 2
      const w2 = await open(5); // nothing left to recover: a new incarnation, no new event
      expect(readTruncations(dir)).toHaveLength(1);
      for (let i = 4; i <= 6; i++) await w2.append(payloadFor(same || i === 6 ? i : i + 100), i === 6);
      if (same) {
        await until(() => r.got.length === 6, 'the rewritten unit');
        expect(r.got.map((f) => f.lsn)).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
        expect(r.got.every((f) => Buffer.compare(f.payload, payloadFor(Number(f.lsn))) === 0)).toBe(true);
        r.stop();
        await r.done;
      } else {
        await expect(r.done).rejects.toThrow(/frame LSN 4, read before the writer recovered, is no longer on disk/);
        expect(r.got.map((f) => f.lsn)).toEqual([1n, 2n, 3n]);
      }
      await w2.close();
    });
  }
});

describe('JournalReader sinceEpoch', () => {
  it('ends at once with JournalTruncatedError when a truncation after the epoch exists or comes', async () => {
    const w = await open();
    for (let i = 1; i <= 4; i++) await w.append(payloadFor(i), i % 2 === 0);
    await w.append(payloadFor(5), false);
    await w.close();
    const w2 = await open(); // epoch 1, to 4
    await w2.append(payloadFor(6), true);
    // The caller's view predates epoch 1: the reader fails before delivering anything.
    const stale = follow({ sinceEpoch: 0, fromLsn: 2n });
    await expect(stale.done).rejects.toBeInstanceOf(JournalTruncatedError);
    expect(stale.got).toEqual([]);
    // Up to date: it reads, until the next truncation (even one that removes nothing it delivered).
    const cur = follow({ sinceEpoch: 1 });
    await until(() => cur.got.length === 5, 'frames 1..5');
    await w2.append(payloadFor(7), false);
    await w2.close();
    const w3 = await open(); // epoch 2, to 5
    await expect(cur.done).rejects.toThrow(/truncated to LSN 5 after epoch 1/);
    await w3.close();
  });
});
