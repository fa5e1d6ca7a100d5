/**
 * Random access to the journal: reads back one frame from the place JournalReader reported for it (the first LSN
 * of its segment and the byte offset of its header), with the same checks as a sequential scan — header magic and
 * CRC, version, flags, length bound, LSN, frame CRC — by feeding the frame's bytes through a FrameScanner.
 *
 * Errors:
 *   JOURNAL_GONE     the segment file no longer exists because retention removed it (not retriable)
 *   CorruptionError  the bytes there are not a valid frame of the expected LSN (names segment and offset)
 */
import { closeSync, openSync, readSync } from 'node:fs';
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

/** Bytes read per block by SegmentFiles, and how many blocks it keeps. */
const BLOCK_BYTES = 1 << 20;
const BLOCKS_KEPT = 8;

interface Block {
  readonly path: string;
  readonly start: number;
  /** The bytes the file held there when the block was read (shorter at the end of a segment being written). */
  readonly bytes: Uint8Array;
}

/**
 * Segment files kept open for a series of readFrameAt calls, read through a few cached 1 MiB blocks. A rewind or
 * undo reads thousands of entries, mostly neighbours in the same few segments, forwards (planning) or backwards
 * (undo goes newest first): one open per segment instead of one per frame, and one read per MiB instead of two
 * per frame (measured: 4,000 frame reads of an undo of 100k rows took 0.39 s through fs/promises, one read each).
 * Reads are synchronous: rewind's commands are the only users and have nothing else for the event loop to do
 * meanwhile but wait for the server, which works on its own. Close it when done.
 */
export class SegmentFiles {
  readonly #fds = new Map<string, number>();
  /** Most recently used last. */
  #blocks: Block[] = [];

  /**
   * `length` bytes of the segment starting at `segment`, from byte `position` (fewer at the end of the file); a
   * copy the caller owns. Throws ENOENT like open() when the segment does not exist.
   */
  read(dir: string, segment: bigint, position: number, length: number): Uint8Array {
    const path = segmentPath(dir, segment);
    const hit = this.#blocks.findLastIndex(
      (b) => b.path === path && b.start <= position && position + length <= b.start + b.bytes.length,
    );
    if (hit >= 0) {
      const b = this.#blocks[hit]!;
      if (hit !== this.#blocks.length - 1) this.#blocks.push(...this.#blocks.splice(hit, 1));
      return b.bytes.slice(position - b.start, position - b.start + length);
    }
    const fd = this.#fd(path);
    if (length > BLOCK_BYTES / 2) return readSyncAt(fd, length, position);
    // Aligned blocks serve forward and backward neighbours alike; a read across a boundary takes the block at it.
    let start = position - (position % BLOCK_BYTES);
    if (position + length > start + BLOCK_BYTES) start = position;
    const bytes = readSyncAt(fd, BLOCK_BYTES, start);
    this.#blocks.push({ path, start, bytes });
    if (this.#blocks.length > BLOCKS_KEPT) this.#blocks.shift();
    const from = position - start;
    return bytes.slice(from, Math.min(bytes.length, from + length));
  }

  #fd(path: string): number {
    let fd = this.#fds.get(path);
    if (fd === undefined) {
      fd = openSync(path, 'r');
      this.#fds.set(path, fd);
    }
    return fd;
  }

  async close(): Promise<void> {
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
    this.#blocks = [];
  }
}

function readSyncAt(fd: number, length: number, position: number): Uint8Array {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
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
  const missing = async (err: unknown): Promise<never> => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw await gone(dir, segment, offset, expectLsn);
    throw err;
  };
  let fh: FileHandle | null = null;
  let readAt: (position: number, length: number) => Promise<Uint8Array>;
  if (files) {
    readAt = async (position, length) => {
      try {
        return files.read(dir, segment, position, length);
      } catch (err) {
        return missing(err);
      }
    };
  } else {
    try {
      fh = await open(segmentPath(dir, segment), 'r');
    } catch (err) {
      await missing(err);
    }
    const h = fh!;
    readAt = async (position, length) => {
      const buf = new Uint8Array(length);
      const got = await readExactly(h, buf, position);
      return got === length ? buf : buf.subarray(0, got);
    };
  }
  try {
    const header = await readAt(offset, HEADER_BYTES);
    if (header.length < HEADER_BYTES) {
      throw corrupt(name, offset, expectLsn, 'the segment ends before the frame header');
    }
    // The scanner checks magic, header CRC, version, flags, length bound and LSN (throwing CorruptionError for
    // a valid header that breaks a rule); a header that is not valid leaves it "damaged".
    const scanner = new FrameScanner({ segment: name, startOffset: offset, expectLsn });
    let frames = scanner.push(header);
    if (frames.length === 0 && !scanner.damaged) {
      const length = new DataView(header.buffer, header.byteOffset, header.byteLength).getUint32(8, true);
      const payload = await readAt(offset + HEADER_BYTES, length);
      if (payload.length < length) {
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
    await fh?.close();
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
  return (await readEntryBytesAt(dir, segment, offset, expectLsn, files)).entry;
}

/** readEntryAt, with the frame's payload (the caller's copy: decodeEntry of it gives the same entry again). */
export async function readEntryBytesAt(
  dir: string,
  segment: bigint,
  offset: number,
  expectLsn: bigint,
  files?: SegmentFiles,
): Promise<{ entry: Entry; payload: Uint8Array }> {
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
  return { entry, payload: f.payload };
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
