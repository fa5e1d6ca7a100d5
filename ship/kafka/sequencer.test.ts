import { describe, expect, it } from 'vitest';
import type { Chunk } from './codec.ts';
import { FrameSequencer, KafkaGapError, type Step } from './sequencer.ts';

/** A chunk at `offset` of frame `lsn`, part `part` of `parts`. */
const c = (offset: number, lsn: number, part = 0, parts = 1): Chunk => ({
  offset: BigInt(offset),
  lsn: BigInt(lsn),
  endOfUnit: lsn % 3 === 0,
  part,
  parts,
  data: Uint8Array.of(lsn & 0xff, part),
});

const kinds = (seq: FrameSequencer, chunks: Chunk[]): string[] =>
  chunks.map((x) => {
    const s: Step = seq.push(x);
    return s.kind === 'frame' ? `frame ${s.frame.lsn}` : s.kind === 'seek' ? `seek ${s.offset}` : s.kind;
  });

describe('FrameSequencer', () => {
  it('delivers consecutive frames and joins split ones', () => {
    const seq = new FrameSequencer(0n);
    expect(kinds(seq, [c(0, 1), c(1, 2, 0, 3), c(2, 2, 1, 3), c(3, 2, 2, 3), c(4, 3)])).toEqual([
      'frame 1',
      'part',
      'part',
      'frame 2',
      'frame 3',
    ]);
    expect(seq.deliveredLsn).toBe(3n);
  });

  it('joins the parts of a split frame into its payload', () => {
    const seq = new FrameSequencer(4n);
    seq.push(c(10, 5, 0, 2));
    const s = seq.push(c(11, 5, 1, 2));
    expect(s.kind === 'frame' && Array.from(s.frame.payload)).toEqual([5, 0, 5, 1]);
  });

  it('skips what is already durable (a committed offset behind the durable LSN, duplicates)', () => {
    const seq = new FrameSequencer(10n);
    expect(kinds(seq, [c(7, 8), c(8, 9), c(9, 10), c(10, 11), c(11, 11), c(12, 12)])).toEqual([
      'skip',
      'skip',
      'skip',
      'frame 11',
      'skip',
      'frame 12',
    ]);
  });

  it('seeks back by the LSN distance when it lands past the next frame (a standby whose durable LSN went back)', () => {
    const seq = new FrameSequencer(90n);
    // Landed at offset 120 on LSN 100: LSN 91 lies at most 9 offsets earlier.
    expect(kinds(seq, [c(120, 100)])).toEqual(['seek 111']);
    // Duplicates made the distance larger: it lands on 95, seeks again, and then reads on.
    expect(kinds(seq, [c(111, 95), c(106, 91), c(107, 92)])).toEqual(['seek 107', 'frame 91', 'frame 92']);
  });

  it('seeks back to the first part when it lands inside a split frame', () => {
    const seq = new FrameSequencer(4n);
    expect(kinds(seq, [c(52, 5, 2, 4)])).toEqual(['seek 50']);
    expect(kinds(seq, [c(50, 5, 0, 4), c(51, 5, 1, 4), c(52, 5, 2, 4), c(53, 5, 3, 4)])).toEqual([
      'part',
      'part',
      'part',
      'frame 5',
    ]);
  });

  it('starts a frame over when its first part comes again (a shipper that died mid-frame resent it whole)', () => {
    const seq = new FrameSequencer(0n);
    expect(kinds(seq, [c(0, 1, 0, 3), c(1, 1, 1, 3), c(2, 1, 0, 3), c(3, 1, 1, 3), c(4, 1, 2, 3)])).toEqual([
      'part',
      'part',
      'part',
      'part',
      'frame 1',
    ]);
  });

  it('a contiguous jump over the next LSN is a gap: an error, never a skip', () => {
    const seq = new FrameSequencer(0n);
    expect(kinds(seq, [c(0, 1), c(1, 2)])).toEqual(['frame 1', 'frame 2']);
    expect(() => seq.push(c(2, 4))).toThrow(KafkaGapError);
    const seq2 = new FrameSequencer(0n);
    seq2.push(c(0, 1, 0, 3));
    expect(() => seq2.push(c(1, 1, 2, 3))).toThrow(/frames are missing: LSN 1 part 2\/3 follows part 0/);
    const seq3 = new FrameSequencer(0n);
    try {
      seq3.push(c(0, 1));
      seq3.push(c(1, 3));
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'SHIP_GAP', retriable: false });
    }
  });

  it('after land() (a seek or a group rejoin) the next message may be anywhere', () => {
    const seq = new FrameSequencer(0n);
    seq.push(c(0, 1));
    seq.land();
    // Below the partition's start: the receiver reports the frames as gone.
    expect(kinds(seq, [c(1, 5)])).toEqual(['seek -2']);
    // An offset jump without land() counts as landing too.
    const seq2 = new FrameSequencer(0n);
    seq2.push(c(0, 1));
    expect(kinds(seq2, [c(9, 4)])).toEqual(['seek 7']);
  });

  it('parts that disagree with the parts before them are refused', () => {
    const seq = new FrameSequencer(0n);
    seq.push(c(0, 1, 0, 3));
    expect(() => seq.push(c(1, 1, 1, 2))).toThrow(/does not match the parts before it/);
  });
});
