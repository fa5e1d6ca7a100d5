/**
 * The truncation log: a small file `TRUNCATIONS` in the journal directory through which the writer tells readers
 * in other processes that recovery removed frames. Each event has an epoch (1, 2, …) and `toLsn`, the last LSN
 * kept; frames above it were removed (and their LSNs will be reused by new frames).
 *
 * The writer records an event durably (temp file, fsync, rename, fsync dir) BEFORE it removes anything. A reader
 * notes the epoch before it reads any frame and checks the file after every read and before delivering what it
 * read; an event newer than its epoch with toLsn below the last LSN it delivered means its frames are gone.
 * Only the last MAX_EVENTS events are kept; a reader whose epoch is older than the oldest kept event treats
 * the gap as a truncation.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptionError } from '../core/errors.ts';
import { writeFileDurable } from '../core/durable-file.ts';

export const TRUNCATIONS_FILE = 'TRUNCATIONS';
const MAX_EVENTS = 64;

export interface TruncationEvent {
  readonly epoch: number;
  readonly toLsn: bigint;
  readonly at: string;
}

export function formatTruncations(events: readonly TruncationEvent[]): string {
  return `${JSON.stringify({ events: events.map((e) => ({ epoch: e.epoch, toLsn: e.toLsn.toString(), at: e.at })) })}\n`;
}

export function parseTruncations(text: string, file: string): TruncationEvent[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CorruptionError(`${file}: not valid JSON`, { file }, err);
  }
  const events = (raw as { events?: unknown } | null)?.events;
  if (!Array.isArray(events)) throw new CorruptionError(`${file}: expected {"events": [...]}`, { file });
  return events.map((e: { epoch?: unknown; toLsn?: unknown; at?: unknown }, i) => {
    if (typeof e?.epoch !== 'number' || typeof e.toLsn !== 'string' || !/^\d+$/.test(e.toLsn)) {
      throw new CorruptionError(`${file}: event ${i} is malformed`, { file });
    }
    return { epoch: e.epoch, toLsn: BigInt(e.toLsn), at: typeof e.at === 'string' ? e.at : '' };
  });
}

/**
 * The events on record. Synchronous, as is truncationsStamp: readers call them after every read of a followed
 * journal, and a small file's stat or read costs microseconds where the promise API's round trip through the thread
 * pool cost two context switches per call on a 2-core machine.
 */
export function readTruncations(dir: string): TruncationEvent[] {
  const file = join(dir, TRUNCATIONS_FILE);
  try {
    return parseTruncations(readFileSync(file, 'utf8'), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** A cheap identity of the file's current version (changes on every rewrite, which renames a new inode in). */
export function truncationsStamp(dir: string): string {
  const s = statSync(join(dir, TRUNCATIONS_FILE), { bigint: true, throwIfNoEntry: false });
  return s === undefined ? 'none' : `${s.ino}:${s.mtimeNs}:${s.size}`;
}

export function latestEpoch(events: readonly { readonly epoch: number }[]): number {
  return events.reduce((m, e) => Math.max(m, e.epoch), 0);
}

/**
 * The lowest `toLsn` among events newer than `sinceEpoch`, or null when there are none. When events between
 * `sinceEpoch` and the oldest kept one were dropped, returns 0n (assume everything may be gone).
 */
export function truncatedSince(
  events: readonly { readonly epoch: number; readonly toLsn: bigint }[],
  sinceEpoch: number,
): bigint | null {
  let min: bigint | null = null;
  let oldest = Number.POSITIVE_INFINITY;
  for (const e of events) {
    oldest = Math.min(oldest, e.epoch);
    if (e.epoch > sinceEpoch && (min === null || e.toLsn < min)) min = e.toLsn;
  }
  if (min !== null && oldest > sinceEpoch + 1) return 0n;
  return min;
}

/** Appends an event durably and returns it. Only the journal writer (holding the lock) calls this. */
export async function recordTruncation(dir: string, toLsn: bigint): Promise<TruncationEvent> {
  const events = readTruncations(dir);
  const ev: TruncationEvent = { epoch: latestEpoch(events) + 1, toLsn, at: new Date().toISOString() };
  await writeFileDurable(join(dir, TRUNCATIONS_FILE), formatTruncations([...events, ev].slice(-MAX_EVENTS)));
  return ev;
}
