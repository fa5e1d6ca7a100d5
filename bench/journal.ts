/**
 * Journal append benchmark: `node bench/journal.ts`. Progress on stderr, one JSON line on stdout.
 *
 * For each fsync policy:
 *   pipelined  units of 4 row frames + 1 commit frame (256-byte payloads), commits not awaited one by one
 *              (a window of outstanding units), as a capture that pipelines its commits would drive it
 *   serial     the same units, each commit awaited before the next unit starts (latency-bound)
 * plus pipelined units of 64 KiB frames (group policy) for raw MB/s. Runs in a temp dir, about 10 s in all.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FsyncPolicy } from '../journal/api.ts';
import { HEADER_BYTES } from '../journal/frame.ts';
import { JournalWriter } from '../journal/writer.ts';

interface Rate {
  fsyncs?: number;
  writes?: number;
  units: number;
  frames: number;
  seconds: number;
  unitsPerSec: number;
  framesPerSec: number;
  mbPerSec: number;
}

const FRAMES_PER_UNIT = 5;

function rate(units: number, frames: number, bytes: number, ms: number): Rate {
  const s = ms / 1000;
  return {
    units,
    frames,
    seconds: Number(s.toFixed(3)),
    unitsPerSec: Math.round(units / s),
    framesPerSec: Math.round(frames / s),
    mbPerSec: Number((bytes / s / 1e6).toFixed(1)),
  };
}

async function withJournal<T>(policy: FsyncPolicy, fn: (w: JournalWriter) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-bench-journal-'));
  const w = await JournalWriter.open({ dir, fsync: policy, groupCommitMs: 10, segmentBytes: 64 << 20 });
  try {
    return await fn(w);
  } finally {
    await w.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Appends units for up to `maxMs` (or `maxUnits`), keeping at most `window` commits outstanding. */
async function units(w: JournalWriter, payloadBytes: number, window: number, maxMs: number, maxUnits: number) {
  const payload = new Uint8Array(payloadBytes).fill(0x5a);
  const pending: Promise<bigint>[] = [];
  const t0 = performance.now();
  let n = 0;
  while (n < maxUnits && performance.now() - t0 < maxMs) {
    for (let i = 1; i < FRAMES_PER_UNIT; i++) await w.append(payload, false);
    pending.push(w.append(payload, true));
    n++;
    if (pending.length >= window) await Promise.all(pending.splice(0, Math.max(1, window / 2)));
  }
  await Promise.all(pending);
  const ms = performance.now() - t0;
  const frames = n * FRAMES_PER_UNIT;
  const { fsyncs, writes } = w.stats;
  return { ...rate(n, frames, frames * (HEADER_BYTES + payloadBytes), ms), fsyncs, writes };
}

export async function benchJournal(log: (s: string) => void = () => undefined) {
  const out: Record<string, unknown> = { bench: 'journal', node: process.version };
  for (const policy of ['group', 'transaction'] as const) {
    log(`${policy}: pipelined`);
    const pipelined = await withJournal(policy, (w) => units(w, 256, 2000, 4000, 100_000));
    log(`${policy}: serial`);
    const serial = await withJournal(policy, (w) => units(w, 256, 1, 2000, 1_000_000));
    out[policy] = { pipelined, serial };
  }
  log('group: 64 KiB frames');
  out['largeFrames'] = await withJournal('group', (w) => units(w, 64 << 10, 64, 3000, 2000));
  return out;
}

if (import.meta.main) {
  const result = await benchJournal((s) => process.stderr.write(`bench journal: ${s}\n`));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
