/**
 * Memory: a 256 MiB stream through writer → directory store → reader holds a few blocks, never a piece or the
 * stream. Every block allocates fresh buffers (zstd and cipher outputs), and V8 collects such external memory only
 * once ~64 MiB of it has piled up, so the test forces a GC as it samples. Two bounds:
 *   - live memory (V8 heap + external buffers) grows < 64 MiB: measured +40–45 MiB, so a buffered piece (64 MiB
 *     here) or the buffered stream breaks it;
 *   - RSS grows < 96 MiB: measured +55–65 MiB (the thread pool's zstd work keeps freed memory in glibc's per-thread
 *     arenas); a bound of 64 MiB on RSS failed on a busy machine at +65.4 MiB (2026-12-07).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import { DirStore } from '../store/dir.ts';
import { newDataKey } from './keys.ts';
import { readBackup } from './reader.ts';
import { writeBackup } from './writer.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1 << 20;
const TOTAL = 256 * MiB;

it('256 MiB through writer and reader with the dir store: live memory grows < 64 MiB, RSS < 96 MiB', {
  timeout: 120_000,
}, async () => {
  const root = await mkdtemp(join(tmpdir(), 'tm-pipe-mem-'));
  try {
    const store = await DirStore.open(root);
    // Half random (stored), half text (zstd): both paths of the sealer.
    const rnd = randomBytes(MiB);
    const txt = Buffer.alloc(MiB, 'INSERT INTO t VALUES (42, "some row text");\n');
    const ring = [0, 1, 2, 3].map(() => Buffer.alloc(MiB)); // the producer's own buffers, reused
    let made = 0;
    const sent = createHash('sha256');
    const source = new Readable({
      read() {
        if (made >= TOTAL) return void this.push(null);
        const b = ring[(made / MiB) % ring.length] as Buffer;
        (made % (2 * MiB) === 0 ? rnd : txt).copy(b);
        b.writeUInt32BE(made / MiB, 0); // no two blocks alike
        made += MiB;
        sent.update(b);
        this.push(b);
      },
    });
    gc();
    const live = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.external;
    };
    const base = process.memoryUsage.rss();
    const liveBase = live();
    let peak = base;
    let livePeak = liveBase;
    const sampler = setInterval(() => {
      gc();
      peak = Math.max(peak, process.memoryUsage.rss());
      livePeak = Math.max(livePeak, live());
    }, 20);
    const dataKey = newDataKey();
    const pieces = await writeBackup({ store, source, backupId: 'mem', dataKey, pieceSize: 64 * MiB });
    expect(pieces.length).toBeGreaterThan(2);
    const got = createHash('sha256');
    let n = 0;
    for await (const b of readBackup({ store, backupId: 'mem', dataKey, pieces }) as AsyncIterable<Buffer>) {
      got.update(b);
      n += b.length;
    }
    clearInterval(sampler);
    expect(n).toBe(TOTAL);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
    console.log(
      `memory: RSS base ${(base / MiB).toFixed(0)} MiB, peak +${((peak - base) / MiB).toFixed(1)} MiB; ` +
        `live (heap + external) base ${(liveBase / MiB).toFixed(0)} MiB, peak +${((livePeak - liveBase) / MiB).toFixed(1)} MiB`,
    );
    expect(livePeak - liveBase).toBeLessThan(64 * MiB);
    expect(peak - base).toBeLessThan(96 * MiB);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
