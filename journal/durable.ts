/**
 * The durable mark: a 20-byte file `DURABLE` in the journal directory through which the writer tells readers in
 * other processes the highest LSN that is fsynced AND ends a unit (JournalWriter.durableLsn), i.e. the highest
 * LSN no crash of the writer or the machine can take back. A shipper reads only up to it (JournalReader
 * `durableOnly`), so a standby never holds a frame the source could later truncate and rewrite.
 *
 *   0  u32 magic        "TMDU"
 *   4  u32 version      1
 *   8  u64 lsn
 *   16 u32 incarnation  random per writer open (and per truncateTo): changes only after recovery is complete
 *   20 u32 crc32 of bytes 0..20
 *
 * The writer rewrites it in place (one pwrite, no fsync) after every fdatasync that moved the mark, and on open
 * (after recovery and an fsync of the tail). It needs no fsync of its own: it is written only after the frames it
 * names are on stable storage, so a copy lost in a crash is an older, lower mark, and the next open rewrites it.
 * A read racing a rewrite may see a torn record; the CRC catches that and the read is retried. Cost: one pwrite of
 * 24 bytes per fsync that moved the mark (bench/journal.ts; see ship/tcp/README.md).
 *
 * The incarnation lets a reader tell that a new writer recovered the journal between its reading a frame and the
 * mark passing that frame: frames read under another incarnation are checked on disk before they are delivered.
 */
import { randomInt } from 'node:crypto';
import { constants, readSync, writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

export const DURABLE_FILE = 'DURABLE';
const MAGIC = 0x55444d54; // "TMDU" little-endian
const BYTES = 24;

export interface Durable {
  readonly lsn: bigint;
  readonly incarnation: number;
}

export function encodeDurable(d: Durable): Uint8Array {
  const b = new Uint8Array(BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, 1, true);
  v.setBigUint64(8, d.lsn, true);
  v.setUint32(16, d.incarnation, true);
  v.setUint32(20, crc32(b.subarray(0, 20)), true);
  return b;
}

/** The record, or null when it is torn, damaged or not a durable mark. */
export function decodeDurable(b: Uint8Array): Durable | null {
  if (b.length < BYTES) return null;
  const v = new DataView(b.buffer, b.byteOffset, BYTES);
  if (v.getUint32(0, true) !== MAGIC || v.getUint32(4, true) !== 1) return null;
  if (crc32(b.subarray(0, 20)) !== v.getUint32(20, true)) return null;
  return { lsn: v.getBigUint64(8, true), incarnation: v.getUint32(16, true) };
}

/** The writer's side: keeps the file open and rewrites it in place. */
export class DurableMark {
  private readonly fh: FileHandle;
  private incarnation = 0;
  private last: bigint | null = null;

  private constructor(fh: FileHandle) {
    this.fh = fh;
  }

  static async open(dir: string): Promise<DurableMark> {
    return new DurableMark(await open(join(dir, DURABLE_FILE), constants.O_RDWR | constants.O_CREAT, 0o644));
  }

  /** A new incarnation (the writer recovered the journal): the next write publishes it. */
  renew(): void {
    let n = this.incarnation;
    while (n === this.incarnation) n = randomInt(1, 0xffffffff);
    this.incarnation = n;
    this.last = null;
  }

  async write(lsn: bigint): Promise<void> {
    if (lsn === this.last) return;
    const b = encodeDurable({ lsn, incarnation: this.incarnation });
    // Synchronous: a 24-byte pwrite into the page cache takes a few µs, a round trip through the thread pool ~40.
    const bytesWritten = writeSync(this.fh.fd, b, 0, BYTES, 0);
    if (bytesWritten !== BYTES) throw new Error(`journal: wrote ${bytesWritten} of ${BYTES} bytes of ${DURABLE_FILE}`);
    this.last = lsn;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/**
 * The readers' side: an open handle, read with one pread per call. Returns LSN 0n while the file does not exist
 * (a journal whose writer has not opened it since the mark was introduced) and the last good value when a record
 * stays unreadable.
 */
export class DurableMarkReader {
  readonly dir: string;
  private fh: FileHandle | null = null;
  private last: Durable = { lsn: 0n, incarnation: 0 };
  private readonly buf = new Uint8Array(BYTES);

  constructor(dir: string) {
    this.dir = dir;
  }

  async read(): Promise<Durable> {
    if (!this.fh) {
      try {
        this.fh = await open(join(this.dir, DURABLE_FILE), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.last;
        throw err;
      }
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const bytesRead = readSync(this.fh.fd, this.buf, 0, BYTES, 0);
      const d = bytesRead === BYTES ? decodeDurable(this.buf) : null;
      if (d !== null) {
        this.last = d;
        break;
      }
    }
    return this.last;
  }

  async close(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    this.fh = null;
  }
}

/** The journal's durable mark, read once (0n when the journal has none yet). */
export async function readDurableLsn(dir: string): Promise<bigint> {
  const r = new DurableMarkReader(dir);
  try {
    return (await r.read()).lsn;
  } finally {
    await r.close();
  }
}
