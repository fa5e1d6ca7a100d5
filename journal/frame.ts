/**
 * Journal frame codec and incremental scanner. Pure: no I/O.
 *
 * Frame layout (little-endian), HEADER_BYTES = 28:
 *
 *   0  u32 magic        0x4A4D5454 ("TTMJ" on disk)
 *   4  u8  version      1
 *   5  u8  flags        bit 0 END_OF_UNIT; other bits must be 0
 *   6  u16 reserved     0
 *   8  u32 length       payload bytes
 *   12 u64 lsn
 *   20 u32 headerCrc    crc32 of bytes 0..20
 *   24 u32 frameCrc     crc32 of bytes 0..20 followed by the payload (computed as crc32(payload, headerCrc))
 *   28 payload
 *
 * The header has its own CRC so a damaged length field is recognised before it is trusted: the scanner never
 * mistakes a bit flip in a length for "the file ends inside this frame". Checksums use zlib.crc32, built into
 * Node >= 22.2.
 *
 * How the scanner classifies the end of a segment:
 *   clean       the data ends exactly after a valid frame
 *   torn        the data ends inside a header or inside a payload; or a frame is damaged (bad magic, header CRC,
 *               frame CRC) and no valid frame header appears anywhere after it (this covers a final frame whose
 *               CRC fails and a zero-filled tail)
 *   corruption  a damaged frame followed by a valid frame header, an LSN out of sequence, or an unknown version
 *               with a valid header CRC → CorruptionError naming the segment and byte offset
 */
import { crc32 } from 'node:zlib';
import { CorruptionError } from '../core/errors.ts';

export const FRAME_MAGIC = 0x4a4d5454;
export const FRAME_VERSION = 1;
export const HEADER_BYTES = 28;
export const FLAG_END_OF_UNIT = 1;
/** Largest payload a frame may carry (a sanity bound for damaged length fields and memory). */
export const MAX_PAYLOAD = 256 << 20;

export interface ScannedFrame {
  readonly lsn: bigint;
  readonly endOfUnit: boolean;
  /** May share memory with the chunk passed to push(); copy it to keep it beyond the chunk's life. */
  readonly payload: Uint8Array;
  /** Byte offset of the frame's first header byte in the segment. */
  readonly offset: number;
  /** Header + payload bytes. */
  readonly size: number;
}

export type ScanEnd =
  | { readonly kind: 'clean'; readonly offset: number }
  /** `offset`: end of the last valid frame; `bytes`: how many bytes follow it; `reason`: what was found there. */
  | { readonly kind: 'torn'; readonly offset: number; readonly bytes: number; readonly reason: string };

/** Writes the 28-byte header for a frame into `out` at `at`. */
export function writeFrameHeader(
  out: Uint8Array,
  at: number,
  lsn: bigint,
  endOfUnit: boolean,
  payload: Uint8Array,
): void {
  if (payload.length > MAX_PAYLOAD) {
    throw new RangeError(`journal frame payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD}`);
  }
  const v = new DataView(out.buffer, out.byteOffset + at, HEADER_BYTES);
  v.setUint32(0, FRAME_MAGIC, true);
  v.setUint8(4, FRAME_VERSION);
  v.setUint8(5, endOfUnit ? FLAG_END_OF_UNIT : 0);
  v.setUint16(6, 0, true);
  v.setUint32(8, payload.length, true);
  v.setBigUint64(12, lsn, true);
  const hcrc = crc32(out.subarray(at, at + 20));
  v.setUint32(20, hcrc, true);
  v.setUint32(24, crc32(payload, hcrc), true);
}

/** A complete frame as one buffer (header + payload). */
export function encodeFrame(lsn: bigint, endOfUnit: boolean, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  out.set(payload, HEADER_BYTES);
  writeFrameHeader(out, 0, lsn, endOfUnit, payload);
  return out;
}

interface Header {
  version: number;
  flags: number;
  reserved: number;
  length: number;
  lsn: bigint;
  hcrc: number;
  fcrc: number;
}

/** Parses a header whose magic and header CRC are correct; null otherwise. */
function validHeader(b: Uint8Array, at: number): Header | null {
  if (at + HEADER_BYTES > b.length) return null;
  const v = new DataView(b.buffer, b.byteOffset + at, HEADER_BYTES);
  if (v.getUint32(0, true) !== FRAME_MAGIC) return null;
  const hcrc = v.getUint32(20, true);
  if (crc32(b.subarray(at, at + 20)) !== hcrc) return null;
  return {
    version: v.getUint8(4),
    flags: v.getUint8(5),
    reserved: v.getUint16(6, true),
    length: v.getUint32(8, true),
    lsn: v.getBigUint64(12, true),
    hcrc,
    fcrc: v.getUint32(24, true),
  };
}

/** First magic byte as stored (little-endian). */
const MAGIC0 = FRAME_MAGIC & 0xff;

export interface FrameScannerOptions {
  /** Segment file name, for error messages. */
  segment: string;
  /** Byte offset in the segment of the first byte that will be pushed. */
  startOffset?: number;
  /** LSN the first frame must carry; later frames must follow by one. Omit to accept any first LSN. */
  expectLsn?: bigint;
}

/**
 * Incremental frame scanner. Feed the bytes of one segment in order through push(), in chunks split anywhere;
 * each call returns the frames completed by that chunk. Call end() when the data ends. A scanner that has met a
 * damaged frame keeps looking for valid frame headers in later bytes: finding one throws CorruptionError.
 */
export class FrameScanner {
  readonly segment: string;
  /** Segment offset just past the last complete valid frame. */
  offset: number;
  /** LSN the next frame must carry (undefined until known). */
  nextLsn: bigint | undefined;

  /** Bytes of an incomplete frame carried between chunks (header bytes, then header + payload). */
  private carry: Uint8Array | null = null;
  private carryLen = 0;
  private carryHeader: Header | null = null;
  /** Set once a damaged frame was seen: where and why. */
  private bad: { offset: number; reason: string } | null = null;
  /** While damaged: the segment offset from which valid headers count as "data after the damage". */
  private searchFrom = 0;
  /** While damaged: total bytes seen so far (segment offset of the end of the data). */
  private seen: number;
  /** While damaged: up to HEADER_BYTES-1 trailing bytes of the previous chunk, for headers split across chunks. */
  private tail: Uint8Array = new Uint8Array(0);

  constructor(opts: FrameScannerOptions) {
    this.segment = opts.segment;
    this.offset = opts.startOffset ?? 0;
    this.seen = this.offset;
    this.nextLsn = opts.expectLsn;
  }

  /** Bytes after the last complete frame that the scanner holds or has skipped (0 at a frame boundary). */
  get pendingBytes(): number {
    return this.seen - this.offset;
  }

  /** True once a damaged frame was seen (everything after `offset` is either a torn tail or corruption). */
  get damaged(): boolean {
    return this.bad !== null;
  }

  push(chunk: Uint8Array): ScannedFrame[] {
    const out: ScannedFrame[] = [];
    if (chunk.length === 0) return out;
    const chunkStart = this.seen;
    this.seen += chunk.length;
    if (this.bad) {
      this.searchDamaged(chunk, chunkStart);
      return out;
    }
    let p = 0;
    if (this.carryLen > 0 || this.carry) p = this.fillCarry(chunk, out);
    while (p < chunk.length && !this.bad) {
      const left = chunk.length - p;
      if (left < HEADER_BYTES) {
        this.startCarry(chunk.subarray(p), HEADER_BYTES);
        return out;
      }
      const h = this.checkHeader(chunk, p, chunkStart + p);
      if (!h) {
        this.searchDamaged(chunk.subarray(p + 1), chunkStart + p + 1);
        return out;
      }
      const size = HEADER_BYTES + h.length;
      if (size > left) {
        this.carryHeader = h;
        this.startCarry(chunk.subarray(p), size);
        return out;
      }
      const payload = chunk.subarray(p + HEADER_BYTES, p + size);
      this.finishFrame(h, payload, chunk, chunkStart, p + size, out);
      p += size;
    }
    return out;
  }

  /** Classifies the end of the data. Throws CorruptionError if damage was followed by valid frames. */
  end(): ScanEnd {
    if (this.bad) {
      return { kind: 'torn', offset: this.offset, bytes: this.seen - this.offset, reason: this.bad.reason };
    }
    if (this.seen > this.offset) {
      const reason = this.carryHeader ? 'incomplete payload' : 'incomplete header';
      return { kind: 'torn', offset: this.offset, bytes: this.seen - this.offset, reason };
    }
    return { kind: 'clean', offset: this.offset };
  }

  private corruption(offset: number, what: string, more = ''): never {
    throw new CorruptionError(`journal segment ${this.segment}: ${what} at byte offset ${offset}${more}`, {
      segment: this.segment,
      offset,
    });
  }

  /**
   * Validates the header at chunk[p]. Returns null (and records damage) for a header that is not valid;
   * throws for a valid header that breaks the rules.
   */
  private checkHeader(b: Uint8Array, p: number, segOffset: number): Header | null {
    const h = validHeader(b, p);
    if (!h) {
      this.markBad(segOffset, b[p] === MAGIC0 || b[p] === 0 ? 'damaged frame header' : 'bad frame magic');
      return null;
    }
    if (h.version !== FRAME_VERSION) this.corruption(segOffset, `unknown frame version ${h.version}`);
    if (h.flags & ~FLAG_END_OF_UNIT || h.reserved !== 0) this.corruption(segOffset, `unknown frame flags`);
    if (h.length > MAX_PAYLOAD) this.corruption(segOffset, `frame length ${h.length} exceeds ${MAX_PAYLOAD}`);
    if (this.nextLsn !== undefined && h.lsn !== this.nextLsn) {
      this.corruption(segOffset, `frame LSN ${h.lsn} where ${this.nextLsn} was expected`);
    }
    return h;
  }

  private finishFrame(
    h: Header,
    payload: Uint8Array,
    chunk: Uint8Array,
    chunkStart: number,
    endInChunk: number,
    out: ScannedFrame[],
  ): void {
    const frameOffset = this.offset;
    if (crc32(payload, h.hcrc) !== h.fcrc) {
      this.markBad(frameOffset, 'frame checksum mismatch');
      // The header is valid, so its length is trusted: look for valid data after the frame's extent only.
      this.searchFrom = frameOffset + HEADER_BYTES + h.length;
      const rest = chunk.subarray(endInChunk);
      this.tail = new Uint8Array(0);
      this.searchDamaged(rest, chunkStart + endInChunk);
      return;
    }
    const size = HEADER_BYTES + h.length;
    out.push({ lsn: h.lsn, endOfUnit: (h.flags & FLAG_END_OF_UNIT) !== 0, payload, offset: frameOffset, size });
    this.offset = frameOffset + size;
    this.nextLsn = h.lsn + 1n;
  }

  private startCarry(bytes: Uint8Array, need: number): void {
    this.carry = new Uint8Array(need);
    this.carry.set(bytes);
    this.carryLen = bytes.length;
  }

  /** Continues an incomplete frame with the start of `chunk`; returns how many chunk bytes were used. */
  private fillCarry(chunk: Uint8Array, out: ScannedFrame[]): number {
    let p = 0;
    const carry = this.carry as Uint8Array;
    const take = Math.min(carry.length - this.carryLen, chunk.length);
    carry.set(chunk.subarray(0, take), this.carryLen);
    this.carryLen += take;
    p = take;
    if (this.carryLen < carry.length) return p;
    const chunkStart = this.seen - chunk.length;
    if (!this.carryHeader) {
      // The header is complete.
      const h = this.checkHeader(carry, 0, this.offset);
      if (!h) {
        this.carry = null;
        this.carryLen = 0;
        // Damage: search the carried bytes after the first, then the rest of this chunk.
        this.tail = carry.subarray(1);
        this.searchDamaged(chunk.subarray(p), chunkStart + p);
        return chunk.length;
      }
      const size = HEADER_BYTES + h.length;
      if (size - HEADER_BYTES <= chunk.length - p) {
        // Payload is inside this chunk: no copy.
        this.carry = null;
        this.carryLen = 0;
        this.finishFrame(h, chunk.subarray(p, p + h.length), chunk, chunkStart, p + h.length, out);
        return this.bad ? chunk.length : p + h.length;
      }
      this.carryHeader = h;
      const grown = new Uint8Array(size);
      grown.set(carry);
      this.carry = grown;
      return p + this.fillCarry(chunk.subarray(p), out);
    }
    const h = this.carryHeader;
    this.carry = null;
    this.carryLen = 0;
    this.carryHeader = null;
    this.finishFrame(h, carry.subarray(HEADER_BYTES), chunk, chunkStart, p, out);
    return this.bad ? chunk.length : p;
  }

  private markBad(offset: number, reason: string): void {
    this.bad = { offset, reason };
    this.searchFrom = offset + 1;
    this.carry = null;
    this.carryLen = 0;
    this.carryHeader = null;
  }

  /**
   * After damage: looks for a valid frame header in `bytes` (which start at segment offset `at`), joined with
   * the tail kept from the previous call. Finding one means valid data follows the damage → corruption.
   */
  private searchDamaged(bytes: Uint8Array, at: number): void {
    const bad = this.bad as { offset: number; reason: string };
    let buf = bytes;
    let base = at;
    if (this.tail.length > 0) {
      buf = new Uint8Array(this.tail.length + bytes.length);
      buf.set(this.tail);
      buf.set(bytes, this.tail.length);
      base = at - this.tail.length;
    }
    for (let i = buf.indexOf(MAGIC0); i >= 0 && i + HEADER_BYTES <= buf.length; i = buf.indexOf(MAGIC0, i + 1)) {
      if (base + i < this.searchFrom) continue;
      if (validHeader(buf, i)) {
        this.corruption(bad.offset, bad.reason, ` (a valid frame follows at byte offset ${base + i})`);
      }
    }
    const keep = Math.min(buf.length, HEADER_BYTES - 1);
    this.tail = buf.slice(buf.length - keep);
  }
}
