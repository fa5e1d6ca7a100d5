/**
 * The writer's write path: frames queued for one segment as buffers ready for writev (Batch), and the positional
 * writev loop that writes them. Small payloads are copied into slabs; large ones are referenced, not copied (do not
 * modify a payload after appending it).
 *
 * A batch's first slab is small (SLAB_MIN_BYTES) and each next one twice the last, up to SLAB_BYTES: a live stream
 * writes many batches of a few frames each, and a 256 KiB slab per batch (what every batch allocated before) made
 * ~1 GB of buffers a minute at 2k tx/s — V8 counts them as external memory and answered with a full garbage
 * collection several times a second (10–40 ms pauses, the tail of the ship lag, issue #15).
 */
import type { FileHandle } from 'node:fs/promises';
import { HEADER_BYTES, writeFrameHeader } from './frame.ts';

const SLAB_MIN_BYTES = 8 << 10;
const SLAB_BYTES = 256 << 10;
const COPY_MAX = 32 << 10;
const IOV_GROUP = 512;

export class Batch {
  readonly parts: Uint8Array[] = [];
  bytes = 0;
  lastLsn = 0n;
  /** Highest LSN in the batch that ends a unit (or the LSN before a restarted journal's first), else null. */
  lastUnitEnd: bigint | null = null;
  /** Set when this batch starts a new segment (its first LSN). */
  readonly newSegment: bigint | null;
  /** The new segment replaces the empty segment of an empty journal (JournalWriter.appendAt). */
  readonly replacesEmpty: boolean;
  private slab: Uint8Array | null = null;
  /** Size of the next slab (doubles per slab up to SLAB_BYTES). */
  private slabBytes = SLAB_MIN_BYTES;
  private slabStart = 0;
  private slabPos = 0;

  constructor(newSegment: bigint | null, replacesEmpty = false) {
    this.newSegment = newSegment;
    this.replacesEmpty = replacesEmpty;
    if (replacesEmpty && newSegment !== null) this.lastUnitEnd = newSegment - 1n;
  }

  add(lsn: bigint, endOfUnit: boolean, payload: Uint8Array): void {
    const copy = payload.length <= COPY_MAX;
    const need = HEADER_BYTES + (copy ? payload.length : 0);
    if (!this.slab || this.slabPos + need > this.slab.length) {
      this.seal();
      this.slab = new Uint8Array(Math.max(this.slabBytes, need));
      this.slabBytes = Math.min(SLAB_BYTES, this.slabBytes * 2);
      this.slabStart = 0;
      this.slabPos = 0;
    }
    writeFrameHeader(this.slab, this.slabPos, lsn, endOfUnit, payload);
    this.slabPos += HEADER_BYTES;
    if (copy) {
      this.slab.set(payload, this.slabPos);
      this.slabPos += payload.length;
    } else {
      this.seal();
      this.parts.push(payload);
    }
    this.bytes += HEADER_BYTES + payload.length;
    this.lastLsn = lsn;
    if (endOfUnit) this.lastUnitEnd = lsn;
  }

  seal(): void {
    if (this.slab && this.slabPos > this.slabStart) {
      this.parts.push(this.slab.subarray(this.slabStart, this.slabPos));
      this.slabStart = this.slabPos;
    }
  }
}

/** Writes `parts` (`total` bytes) at offset `at` of `fh`; returns the offset after them. */
export async function writeParts(
  fh: FileHandle,
  parts: Uint8Array[],
  at: number,
  total: number,
  counters: { writes: number; bytesWritten: number },
): Promise<number> {
  const start = at;
  for (let i = 0; i < parts.length; i += IOV_GROUP) {
    let group = parts.slice(i, i + IOV_GROUP);
    let want = group.reduce((n, p) => n + p.length, 0);
    while (want > 0) {
      const { bytesWritten } = await fh.writev(group, at);
      counters.writes++;
      counters.bytesWritten += bytesWritten;
      at += bytesWritten;
      want -= bytesWritten;
      if (want > 0) group = dropPrefix(group, bytesWritten);
    }
  }
  if (at - start !== total) throw new Error(`journal: wrote ${at - start} of ${total} bytes`);
  return at;
}

function dropPrefix(parts: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = n;
  for (const p of parts) {
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    out.push(skip > 0 ? p.subarray(skip) : p);
    skip = 0;
  }
  return out;
}
