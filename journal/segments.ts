/**
 * Segment files: names, listing, and the directory fsync that makes creating or deleting one durable.
 *
 * A segment is named by the LSN of its first frame, zero-padded to 20 digits (the width of 2^64-1), so that
 * lexical order is LSN order: `00000000000000000001.tmj`. A segment may be empty (created, nothing written yet).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const SEGMENT_SUFFIX = '.tmj';
const SEGMENT_RE = /^(\d{20})\.tmj$/;

export function segmentFileName(firstLsn: bigint): string {
  return `${firstLsn.toString().padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

/** The first LSN a segment file name stands for, or null when the name is not a segment's. */
export function parseSegmentFileName(name: string): bigint | null {
  const m = SEGMENT_RE.exec(name);
  return m?.[1] ? BigInt(m[1]) : null;
}

export function segmentPath(dir: string, firstLsn: bigint): string {
  return join(dir, segmentFileName(firstLsn));
}

/** First LSNs of the segments in `dir`, ascending; [] when the directory does not exist. */
export async function listSegments(dir: string): Promise<bigint[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: bigint[] = [];
  for (const n of names) {
    const lsn = parseSegmentFileName(n);
    if (lsn !== null) out.push(lsn);
  }
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
