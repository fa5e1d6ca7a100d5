/**
 * The receiver's decisions, message by message: which frame comes next, what to skip, where to seek, and what is
 * a gap. Pure: no I/O. The receiver feeds decoded chunks in the order the consumer hands them out.
 *
 * The source of truth is the receiver's durable LSN, never a Kafka offset. Offsets are only a way to get there:
 *
 *   - The partition is written by one shipper with an idempotent producer, so offsets are dense and LSNs appear
 *     in order, each frame as its chunks 0..n-1 in consecutive offsets. Every LSN takes at least one offset, so
 *     for a message at offset o carrying LSN l, part p, the first chunk of LSN x < l lies at an offset
 *     ≤ o − p − (l − x). That bound is where the receiver seeks when it lands too far (and it is exact when no
 *     frame was split or duplicated). A bound below the partition's first retained offset means the frames
 *     were deleted (retention): an error, never a silent skip.
 *   - "Landing" is the first message after a seek, a (re)join or any offset jump: it may be anywhere. A message
 *     whose offset follows the previous one is "contiguous": in that stream an LSN above the expected one is a
 *     real gap (frames missing from Kafka) and an error.
 *   - LSNs at or below the last delivered one (duplicates: a re-read after a restart, a rare duplicate write by
 *     a shipper that died mid-request) are skipped. A frame is delivered exactly once, in LSN order.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { WireFrame } from '../frame.ts';
import { type Chunk, joinChunks } from './codec.ts';

export type Step =
  /** Below the next LSN (or a part already held): nothing to do. */
  | { readonly kind: 'skip' }
  /** A chunk of the next frame was kept; the frame is not complete yet. */
  | { readonly kind: 'part' }
  | { readonly kind: 'frame'; readonly frame: WireFrame }
  /** Landed past the next frame: seek to this offset (first check it against the partition's start). */
  | { readonly kind: 'seek'; readonly offset: bigint };

/** Frames missing from the partition: LSN `expected` should have come before what did. Not retriable. */
export class KafkaGapError extends TidemarkError {
  constructor(message: string, context: { expected: bigint; found: bigint; offset: bigint }) {
    super(message, { code: 'SHIP_GAP', retriable: false, context });
    this.name = 'KafkaGapError';
  }
}

export class FrameSequencer {
  /** LSN of the next frame to deliver (the durable LSN + 1 at the start). */
  next: bigint;
  private held: Chunk[] = [];
  private lastOffset: bigint | null = null;
  private landing = true;

  constructor(durableLsn: bigint) {
    this.next = durableLsn + 1n;
  }

  /** LSN of the last frame delivered (or the durable LSN the sequencer started from). */
  get deliveredLsn(): bigint {
    return this.next - 1n;
  }

  /** Chunks of the next frame held so far. */
  get heldParts(): number {
    return this.held.length;
  }

  /** The next message may be anywhere (after a seek or a group rejoin). */
  land(): void {
    this.landing = true;
  }

  push(c: Chunk): Step {
    const contiguous = !this.landing && this.lastOffset !== null && c.offset === this.lastOffset + 1n;
    this.landing = false;
    this.lastOffset = c.offset;
    const expectPart = this.held.length;
    if (c.lsn < this.next) return { kind: 'skip' };
    if (c.lsn > this.next) {
      if (contiguous) throw this.gap(c, `LSN ${c.lsn} follows LSN ${this.next - 1n}`);
      return this.seek(c.offset - BigInt(c.part) - (c.lsn - this.next));
    }
    // c.lsn === next
    if (c.part === expectPart) return this.keep(c);
    if (c.part === 0) {
      // The frame starts over (a duplicate copy of it): keep the new copy.
      this.held = [];
      return this.keep(c);
    }
    if (c.part < expectPart) return { kind: 'skip' };
    if (contiguous) {
      throw this.gap(c, `LSN ${c.lsn} part ${c.part}/${c.parts} follows part ${expectPart - 1} (or none)`);
    }
    this.held = [];
    return this.seek(c.offset - BigInt(c.part));
  }

  private keep(c: Chunk): Step {
    const first = this.held[0];
    if (first && (first.parts !== c.parts || first.endOfUnit !== c.endOfUnit)) {
      throw new KafkaGapError(
        `kafka offset ${c.offset}: LSN ${c.lsn} part ${c.part}/${c.parts} does not match the parts before it ` +
          `(${first.parts} parts, end of unit ${first.endOfUnit})`,
        { expected: this.next, found: c.lsn, offset: c.offset },
      );
    }
    this.held.push(c);
    if (this.held.length < c.parts) return { kind: 'part' };
    const frame = joinChunks(this.held);
    this.held = [];
    this.next += 1n;
    return { kind: 'frame', frame };
  }

  private seek(offset: bigint): Step {
    this.landing = true;
    return { kind: 'seek', offset };
  }

  private gap(c: Chunk, what: string): KafkaGapError {
    return new KafkaGapError(
      `kafka offset ${c.offset}: frames are missing: ${what}; expected LSN ${this.next}. Nothing after it is ` +
        `delivered: a human must look (was the topic written by something else, or did the cluster lose data?)`,
      { expected: this.next, found: c.lsn, offset: c.offset },
    );
  }
}
