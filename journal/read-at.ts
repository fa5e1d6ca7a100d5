/**
 * Random access to the journal: reads back one frame from the place JournalReader reported for it (the first LSN
 * of its segment and the byte offset of its header), with the same checks as a sequential scan — header magic and
 * CRC, version, flags, length bound, LSN, frame CRC — by feeding the frame's bytes through a FrameScanner.
 *
 * Errors:
 *   JOURNAL_GONE     the segment file no longer exists because retention removed it (not retriable)
 *   CorruptionError  the bytes there are not a valid frame of the expected LSN (names segment and offset)
 */
import { type FileHandle, open } from 'node:fs/promises';
import { decodeEntry } from '../record/codec.ts';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import type { Entry } from '../record/record.ts';
import type { JournalFrame } from './api.ts';
import { FrameScanner, HEADER_BYTES, writeFrameHeader } from './frame.ts';
import { listSegments, segmentFileName, segmentPath } from './segments.ts';

function corrupt(name: string, offset: number, expectLsn: bigint, what: string): CorruptionError {
  return new CorruptionError(
    `journal segment ${name}: ${what} at byte offset ${offset} (where the frame of LSN ${expectLsn} should be)`,
    { segment: name, offset, lsn: expectLsn },
  );
}

async function gone(dir: string, segment: bigint, offset: number, expectLsn: bigint): Promise<TidemarkError> {
  const name = segmentFileName(segment);
  const segs = await listSegments(dir);
  if (segs.some((s) => s < segment)) {
    // Older segments are still there: retention did not remove this one.
    return new CorruptionError(`journal ${dir}: segment ${name} is missing while older segments exist`, {
      dir,
      segment: name,
      offset,
      lsn: expectLsn,
    });
  }
  const oldest = segs[0];
  const from = oldest ?? expectLsn + 1n;
  return new TidemarkError(
    `journal segment ${name} was removed by retention: history before LSN ${from} is gone` +
      (oldest === undefined ? ' (the journal holds no segments)' : ''),
    { code: 'JOURNAL_GONE', retriable: false, context: { dir, segment: name, lsn: expectLsn, oldest: oldest ?? null } },
  );
}

async function readExactly(fh: FileHandle, buf: Uint8Array, position: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * Open segment files kept for a series of readFrameAt calls (a rewind reads thousands of entries, mostly from the
 * same few segments: one open per segment instead of one per frame). Close it when done.
 */
export class SegmentFiles {
  readonly #open = new Map<string, Promise<FileHandle>>();

  get(dir: string, segment: bigint): Promise<FileHandle> {
    const path = segmentPath(dir, segment);
    let fh = this.#open.get(path);
    if (!fh) {
      fh = open(path, 'r');
      this.#open.set(path, fh);
      // A failed open is not kept: the caller reports it, and a later call tries again.
      fh.catch(() => this.#open.delete(path));
    }
    return fh;
  }

  async close(): Promise<void> {
    const all = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => null))?.close()));
  }
}

/** Reads the frame of LSN `expectLsn` whose header starts at byte `offset` of the segment starting at `segment`. */
export async function readFrameAt(
  dir: string,
  segment: bigint,
  offset: number,
  expectLsn: bigint,
  files?: SegmentFiles,
): Promise<JournalFrame> {
  const name = segmentFileName(segment);
  let fh: FileHandle;
  try {
    fh = files ? await files.get(dir, segment) : await open(segmentPath(dir, segment), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw await gone(dir, segment, offset, expectLsn);
    throw err;
  }
  try {
    const header = new Uint8Array(HEADER_BYTES);
    if ((await readExactly(fh, header, offset)) < HEADER_BYTES) {
      throw corrupt(name, offset, expectLsn, 'the segment ends before the frame header');
    }
    // The scanner checks magic, header CRC, version, flags, length bound and LSN (throwing CorruptionError for
    // a valid header that breaks a rule); a header that is not valid leaves it "damaged".
    const scanner = new FrameScanner({ segment: name, startOffset: offset, expectLsn });
    let frames = scanner.push(header);
    if (frames.length === 0 && !scanner.damaged) {
      const length = new DataView(header.buffer).getUint32(8, true);
      const payload = new Uint8Array(length);
      if ((await readExactly(fh, payload, offset + HEADER_BYTES)) < length) {
        throw corrupt(name, offset, expectLsn, `the segment ends inside the frame's ${length}-byte payload`);
      }
      frames = scanner.push(payload);
    }
    const f = frames[0];
    if (!f) {
      const end = scanner.end();
      throw corrupt(name, offset, expectLsn, end.kind === 'torn' ? end.reason : 'no frame');
    }
    // The payload views buffers allocated here: the caller owns it.
    return { lsn: f.lsn, payload: f.payload, endOfUnit: f.endOfUnit, segment, offset };
  } finally {
    if (!files) await fh.close();
  }
}

/** readFrameAt, decoded into its entry; checks, as readEntries does, that exactly commits end their unit. */
export async function readEntryAt(
  dir: string,
  segment: bigint,
  offset: number,
  expectLsn: bigint,
  files?: SegmentFiles,
): Promise<Entry> {
  const f = await readFrameAt(dir, segment, offset, expectLsn, files);
  const name = segmentFileName(segment);
  let entry: Entry;
  try {
    entry = decodeEntry(f.payload);
  } catch (err) {
    throw new CorruptionError(
      `journal segment ${name}: frame LSN ${f.lsn} at byte offset ${offset}: ${(err as Error).message}`,
      { segment: name, offset, lsn: f.lsn },
      err,
    );
  }
  if ((entry.kind === 'commit') !== f.endOfUnit) {
    throw corrupt(name, offset, expectLsn, `a ${entry.kind} entry ${f.endOfUnit ? 'ends' : 'does not end'} its unit`);
  }
  return entry;
}

/**
 * Whether the segment file now at the path of segment `segment` holds `f` at its offset: compares the frame
 * header there (which carries the frame's CRC) with the header `f` encodes to. False when the file is gone.
 */
export async function frameOnDisk(
  dir: string,
  segment: bigint,
  f: { lsn: bigint; endOfUnit: boolean; payload: Uint8Array; offset: number },
): Promise<boolean> {
  const want = new Uint8Array(HEADER_BYTES);
  writeFrameHeader(want, 0, f.lsn, f.endOfUnit, f.payload);
  const got = new Uint8Array(HEADER_BYTES);
  let fh: FileHandle;
  try {
    fh = await open(segmentPath(dir, segment), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    return (await readExactly(fh, got, f.offset)) === HEADER_BYTES && Buffer.compare(got, want) === 0;
  } finally {
    await fh.close();
  }
}
