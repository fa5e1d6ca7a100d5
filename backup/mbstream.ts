/**
 * A pure, incremental parser of mariadb-backup's `--stream=mbstream` output (the xbstream format): feed it the
 * bytes of the stream as they arrive, get back the chunks after each one's CRC32 is checked. It never buffers more
 * than one chunk (mariadb-backup writes payload chunks of at most ~10 MiB; `maxChunkBytes` caps what it accepts),
 * never a whole file, and does no I/O.
 *
 * The format, as MariaDB 10.11 writes and reads it (extra/mariabackup/xbstream.h, xbstream_write.cc,
 * xbstream_read.cc, xbstream.cc; checked against the installed `mbstream -x`). Integers little-endian.
 *
 *   every chunk   magic "XBSTCK01" (8) · flags (1) · type (1) · path length (4, < 512) · path
 *   'P' payload   · payload length (8) · file offset (8) · CRC32 of the payload (4, ISO 3309 = zlib) · payload
 *   'E' eof       (nothing more): the file is complete; an 'E' for a path never opened makes an empty file
 *   'S' seek      · new file offset (8): the next payload of the file starts there (holes, rewinds)
 *   'R' rename    · new path length (4) · new path: rename a closed file (DDL seen during the backup)
 *   'D' remove    (nothing more): delete a closed file
 *   unknown type  refused, unless flag 0x01 (IGNORABLE) is set: then it has the 'P' layout, is CRC-checked and
 *                 reported as 'ignored'
 *   flag 0x02     REWRITE: the payload (re)creates the file from scratch — the only way a closed path opens again
 *
 * Besides the CRC the parser keeps what `mbstream -x` checks per file: payloads arrive in order (offset equals the
 * file's next offset, or the last seek), a closed file is not written again without REWRITE, rename and remove
 * never touch an open file, and at the end no file is left open (a stream cut short). It also refuses paths that
 * would escape the extraction directory (absolute, `..`). Any violation is a TidemarkError 'MBSTREAM_CORRUPT'
 * naming the path and the stream offset of the chunk.
 */
import { crc32 } from 'node:zlib';
import { TidemarkError } from '../core/errors.ts';

export const MBSTREAM_MAGIC = Buffer.from('XBSTCK01', 'latin1');
export const FLAG_IGNORABLE = 0x01;
export const FLAG_REWRITE = 0x02;
/** FN_REFLEN: a path must be shorter than this. */
export const MAX_PATH_BYTES = 512;
/** magic + flags + type + path length. */
const FIXED_HEADER = 14;
const DEFAULT_MAX_CHUNK = 64 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

interface ChunkBase {
  /** The file the chunk belongs to, as written in the stream ('/'-separated, relative). */
  readonly path: string;
  readonly flags: number;
  /** Where the chunk starts in the stream (its magic). */
  readonly streamOffset: bigint;
}

export type MbstreamChunk =
  | (ChunkBase & {
      readonly type: 'payload';
      readonly offset: bigint;
      /** Empty when the parser was told not to keep this file's payloads (keepPayload). */
      readonly payload: Buffer;
      /** The payload's length in the stream. */
      readonly length: number;
      readonly rewrite: boolean;
    })
  | (ChunkBase & { readonly type: 'eof' })
  | (ChunkBase & { readonly type: 'seek'; readonly offset: bigint })
  | (ChunkBase & { readonly type: 'rename'; readonly newPath: string })
  | (ChunkBase & { readonly type: 'remove' })
  | (ChunkBase & {
      readonly type: 'ignored';
      readonly typeCode: number;
      readonly offset: bigint;
      readonly payload: Buffer;
      readonly length: number;
    });

export interface MbstreamParserOptions {
  /** Largest payload accepted in one chunk (default 64 MiB); a larger length is taken as corruption. */
  readonly maxChunkBytes?: number;
  /**
   * Which files' payloads the caller reads (default: all). For the others the CRC32 is checked over the received
   * buffers in place and the chunk's `payload` is empty (`length` still says how long it was): a backup run
   * needs only the two metadata files, and copying every payload (up to 10 MiB each) is garbage for nothing.
   */
  readonly keepPayload?: (path: string) => boolean;
}

export interface MbstreamStats {
  readonly chunks: number;
  readonly payloadBytes: bigint;
  /** Files that reached their EOF chunk. */
  readonly filesClosed: number;
}

function corrupt(what: string, path: string | null, streamOffset: bigint): TidemarkError {
  const where = path === null ? '' : ` for '${path}'`;
  return new TidemarkError(
    `mbstream chunk${where} at stream offset ${streamOffset}: ${what}; the backup stream is damaged or not ` +
      'mariadb-backup --stream=mbstream output — take the backup again',
    {
      code: 'MBSTREAM_CORRUPT',
      retriable: false,
      context: { path: path ?? undefined, streamOffset: String(streamOffset) },
    },
  );
}

/**
 * A FIFO of received buffers. Only headers are ever copied out piecewise (a few hundred bytes); a payload is
 * copied once, when the whole chunk has arrived.
 */
class ByteQueue {
  #bufs: Buffer[] = [];
  #head = 0; // bytes already consumed of #bufs[0]
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(buf: Buffer): void {
    if (buf.length === 0) return;
    this.#bufs.push(buf);
    this.#size += buf.length;
  }

  /** A copy of bytes [at, at + n) from the front, without consuming them. Caller checks `size`. */
  peek(at: number, n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    let skip = at + this.#head;
    for (const b of this.#bufs) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      const copied = b.copy(out, written, skip, Math.min(b.length, skip + n - written));
      written += copied;
      skip = 0;
      if (written === n) break;
    }
    return out;
  }

  /** CRC32 of the first n bytes, computed over the buffers in place, then consumes them (no copy). */
  crcAndSkip(n: number): number {
    let crc = 0;
    let left = n;
    let skip = this.#head;
    for (const b of this.#bufs) {
      if (left === 0) break;
      const part = b.subarray(skip, Math.min(b.length, skip + left));
      crc = crc32(part, crc);
      left -= part.length;
      skip = 0;
    }
    this.#advance(n);
    return crc;
  }

  /** Consumes n bytes and returns them (one copy when they span buffers). */
  take(n: number): Buffer {
    const first = this.#bufs[0];
    if (first !== undefined && first.length - this.#head >= n) {
      const out = first.subarray(this.#head, this.#head + n);
      this.#advance(n);
      return out;
    }
    const out = this.peek(0, n);
    this.#advance(n);
    return out;
  }

  #advance(n: number): void {
    this.#size -= n;
    let left = n;
    while (left > 0) {
      const b = this.#bufs[0] as Buffer;
      const avail = b.length - this.#head;
      if (avail > left) {
        this.#head += left;
        return;
      }
      left -= avail;
      this.#bufs.shift();
      this.#head = 0;
    }
  }
}

function checkPath(path: string, streamOffset: bigint): void {
  if (path.length === 0) throw corrupt('empty path', path, streamOffset);
  if (path.startsWith('/') || path.includes('\0') || path.split('/').some((p) => p === '..')) {
    throw corrupt('path escapes the extraction directory', path, streamOffset);
  }
}

export class MbstreamParser {
  readonly #queue = new ByteQueue();
  readonly #maxChunk: number;
  /** Open files → the offset their next payload must start at. */
  readonly #open = new Map<string, bigint>();
  /** Files that got their EOF chunk (and were not renamed away or removed since). */
  readonly #closed = new Set<string>();
  #streamOffset = 0n;
  #chunks = 0;
  #payloadBytes = 0n;
  #filesClosed = 0;
  #ended = false;
  #failed: unknown = null;
  readonly #keep: (path: string) => boolean;

  constructor(opts: MbstreamParserOptions = {}) {
    this.#maxChunk = opts.maxChunkBytes ?? DEFAULT_MAX_CHUNK;
    this.#keep = opts.keepPayload ?? (() => true);
  }

  /** Stream offset of the next unparsed byte. */
  get streamOffset(): bigint {
    return this.#streamOffset;
  }

  get stats(): MbstreamStats {
    return { chunks: this.#chunks, payloadBytes: this.#payloadBytes, filesClosed: this.#filesClosed };
  }

  /** Files opened and not yet closed by an EOF chunk. */
  openFiles(): string[] {
    return [...this.#open.keys()];
  }

  /**
   * Feeds bytes; returns every chunk completed by them, in stream order. Throws MBSTREAM_CORRUPT, after which the
   * parser refuses more input (the stream is lost). A payload may share memory with the pushed buffer: do not
   * reuse a buffer after pushing it (Node's streams never do).
   */
  push(bytes: Buffer): MbstreamChunk[] {
    if (this.#failed !== null) throw this.#failed;
    if (this.#ended) throw new TidemarkError('MbstreamParser.push after end()', { code: 'INTERNAL' });
    this.#queue.push(bytes);
    const out: MbstreamChunk[] = [];
    try {
      for (;;) {
        const chunk = this.#next();
        if (chunk === null) return out;
        out.push(chunk);
      }
    } catch (err) {
      this.#failed = err;
      throw err;
    }
  }

  /** The stream ended: refuses a partial chunk or a file left without its EOF chunk. */
  end(): void {
    this.#ended = true;
    if (this.#queue.size > 0) {
      throw corrupt(`stream ends inside a chunk (${this.#queue.size} bytes left over)`, null, this.#streamOffset);
    }
    const open = this.openFiles();
    if (open.length > 0) {
      throw corrupt(
        `stream ends with ${open.length} file(s) still open (no EOF chunk)`,
        open[0] ?? null,
        this.#streamOffset,
      );
    }
  }

  /** Parses one chunk if all its bytes are here; null otherwise (nothing consumed). */
  #next(): MbstreamChunk | null {
    const q = this.#queue;
    const at = this.#streamOffset;
    if (q.size < FIXED_HEADER) return null;
    const fixed = q.peek(0, FIXED_HEADER);
    if (!fixed.subarray(0, 8).equals(MBSTREAM_MAGIC)) throw corrupt('wrong chunk magic', null, at);
    const flags = fixed[8] as number;
    const typeCode = fixed[9] as number;
    const pathLen = fixed.readUInt32LE(10);
    if (pathLen >= MAX_PATH_BYTES) throw corrupt(`path length ${pathLen} is too large`, null, at);
    if (q.size < FIXED_HEADER + pathLen) return null;
    const path = q.peek(FIXED_HEADER, pathLen).toString('utf8');
    checkPath(path, at);
    const head = FIXED_HEADER + pathLen;
    const type = String.fromCharCode(typeCode);
    switch (type) {
      case 'E':
      case 'D': {
        this.#consume(head);
        return type === 'E' ? this.#onEof(path, flags, at) : this.#onRemove(path, flags, at);
      }
      case 'S': {
        if (q.size < head + 8) return null;
        const offset = q.peek(head, 8).readBigUInt64LE(0);
        this.#consume(head + 8);
        return this.#onSeek(path, flags, offset, at);
      }
      case 'R': {
        if (q.size < head + 4) return null;
        const newLen = q.peek(head, 4).readUInt32LE(0);
        if (newLen >= MAX_PATH_BYTES) throw corrupt(`new path length ${newLen} of a rename is too large`, path, at);
        if (q.size < head + 4 + newLen) return null;
        const newPath = q.peek(head + 4, newLen).toString('utf8');
        checkPath(newPath, at);
        this.#consume(head + 4 + newLen);
        return this.#onRename(path, flags, newPath, at);
      }
      default: {
        if (type !== 'P' && (flags & FLAG_IGNORABLE) === 0) {
          throw corrupt(`unknown chunk type 0x${typeCode.toString(16)} without the ignorable flag`, path, at);
        }
        return this.#payloadChunk(path, flags, typeCode, head, at);
      }
    }
  }

  #payloadChunk(path: string, flags: number, typeCode: number, head: number, at: bigint): MbstreamChunk | null {
    const q = this.#queue;
    if (q.size < head + 20) return null;
    const fields = q.peek(head, 20);
    const length = fields.readBigUInt64LE(0);
    const offset = fields.readBigUInt64LE(8);
    const expectedCrc = fields.readUInt32LE(16);
    if (length > BigInt(this.#maxChunk)) {
      throw corrupt(`payload length ${length} exceeds the ${this.#maxChunk}-byte limit`, path, at);
    }
    const n = Number(length);
    if (q.size < head + 20 + n) return null;
    this.#consume(head + 20);
    const keep = this.#keep(path);
    const payload = n === 0 || !keep ? EMPTY : q.take(n);
    const actual = keep ? crc32(payload) : q.crcAndSkip(n);
    this.#streamOffset += BigInt(n);
    if (actual !== expectedCrc) {
      throw corrupt(
        `CRC32 mismatch (stored 0x${expectedCrc.toString(16)}, computed 0x${actual.toString(16)}) ` +
          `over ${n} payload bytes at file offset ${offset}`,
        path,
        at,
      );
    }
    this.#chunks++;
    if (typeCode !== 0x50)
      return { type: 'ignored', path, flags, streamOffset: at, typeCode, offset, payload, length: n };
    const rewrite = (flags & FLAG_REWRITE) !== 0;
    let next = this.#open.get(path);
    if (next === undefined) {
      if (this.#closed.has(path) && !rewrite)
        throw corrupt('payload for a file already closed (no REWRITE flag)', path, at);
      this.#closed.delete(path);
      next = 0n;
    }
    if (offset !== next) throw corrupt(`out-of-order payload: file offset ${offset}, expected ${next}`, path, at);
    this.#open.set(path, offset + length);
    this.#payloadBytes += length;
    return { type: 'payload', path, flags, streamOffset: at, offset, payload, length: n, rewrite };
  }

  #onEof(path: string, flags: number, at: bigint): MbstreamChunk {
    if (!this.#open.has(path) && this.#closed.has(path)) throw corrupt('second EOF chunk for a closed file', path, at);
    this.#open.delete(path);
    this.#closed.add(path);
    this.#filesClosed++;
    this.#chunks++;
    return { type: 'eof', path, flags, streamOffset: at };
  }

  #onSeek(path: string, flags: number, offset: bigint, at: bigint): MbstreamChunk {
    if (!this.#open.has(path) && this.#closed.has(path)) throw corrupt('seek in a closed file', path, at);
    this.#closed.delete(path);
    this.#open.set(path, offset);
    this.#chunks++;
    return { type: 'seek', path, flags, streamOffset: at, offset };
  }

  #onRename(path: string, flags: number, newPath: string, at: bigint): MbstreamChunk {
    if (this.#open.has(path) || this.#open.has(newPath))
      throw corrupt(`rename to '${newPath}' of an open file`, path, at);
    if (this.#closed.delete(path)) this.#closed.add(newPath);
    this.#chunks++;
    return { type: 'rename', path, flags, streamOffset: at, newPath };
  }

  #onRemove(path: string, flags: number, at: bigint): MbstreamChunk {
    if (this.#open.has(path)) throw corrupt('remove of an open file', path, at);
    this.#closed.delete(path);
    this.#chunks++;
    return { type: 'remove', path, flags, streamOffset: at };
  }

  #consume(n: number): void {
    this.#queue.take(n);
    this.#streamOffset += BigInt(n);
  }
}
