import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../core/errors.ts';
import { encodeFrame, FrameScanner, HEADER_BYTES, type ScanEnd, type ScannedFrame } from './frame.ts';
import { prng } from '../test/fixtures/prng.ts';
import { concat } from '../test/fixtures/wire.ts';

function payloadOf(n: number, seed: number): Uint8Array {
  const p = new Uint8Array(n);
  for (let i = 0; i < n; i++) p[i] = (i * 31 + seed) & 0xff;
  return p;
}

/** Five frames of assorted sizes, LSN 10..14, end of unit on 11 and 14. */
function sample(): { bytes: Uint8Array; payloads: Uint8Array[] } {
  const sizes = [0, 5, 100, 1, 37];
  const payloads = sizes.map((n, i) => payloadOf(n, i));
  const bytes = concat(payloads.map((p, i) => encodeFrame(10n + BigInt(i), i === 1 || i === 4, p)));
  return { bytes, payloads };
}

function scan(chunks: Uint8Array[], expectLsn?: bigint): { frames: ScannedFrame[]; end: ScanEnd } {
  const s = new FrameScanner({ segment: 'seg.tmj', ...(expectLsn !== undefined ? { expectLsn } : {}) });
  const frames: ScannedFrame[] = [];
  for (const c of chunks) frames.push(...s.push(c).map((f) => ({ ...f, payload: f.payload.slice() })));
  return { frames, end: s.end() };
}

function flip(b: Uint8Array, i: number, mask: number): void {
  b[i] = (b[i] as number) ^ mask;
}

function expectAll(frames: ScannedFrame[], payloads: Uint8Array[]): void {
  expect(frames.map((f) => f.lsn)).toEqual([10n, 11n, 12n, 13n, 14n]);
  expect(frames.map((f) => f.endOfUnit)).toEqual([false, true, false, false, true]);
  frames.forEach((f, i) => {
    expect(f.payload).toEqual(payloads[i]);
  });
}

describe('frame scanner', () => {
  it('scans a whole buffer and ends clean', () => {
    const { bytes, payloads } = sample();
    const { frames, end } = scan([bytes], 10n);
    expectAll(frames, payloads);
    expect(end).toEqual({ kind: 'clean', offset: bytes.length });
    expect(frames[2]?.offset).toBe(2 * HEADER_BYTES + 5);
  });

  it('gives the same frames for every split point into two chunks', () => {
    const { bytes, payloads } = sample();
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { frames, end } = scan([bytes.subarray(0, cut), bytes.subarray(cut)], 10n);
      expectAll(frames, payloads);
      expect(end.kind).toBe('clean');
    }
  });

  it('gives the same frames for random multi-chunk splits', () => {
    const { bytes, payloads } = sample();
    const rnd = prng(99);
    for (let iter = 0; iter < 500; iter++) {
      const chunks: Uint8Array[] = [];
      let at = 0;
      while (at < bytes.length) {
        const n = Math.min(bytes.length - at, Math.floor(rnd() * 40));
        chunks.push(bytes.subarray(at, at + n));
        at += n;
      }
      const { frames, end } = scan(chunks, 10n);
      expectAll(frames, payloads);
      expect(end.kind).toBe('clean');
    }
  });

  it('classifies every cut inside the last frame as a torn tail, at any chunking', () => {
    const { bytes } = sample();
    const lastStart = bytes.length - (HEADER_BYTES + 37);
    for (let cut = lastStart + 1; cut < bytes.length; cut++) {
      const data = bytes.subarray(0, cut);
      for (const split of [0, lastStart, lastStart + 3, cut - 1]) {
        const { frames, end } = scan([data.subarray(0, split), data.subarray(split)], 10n);
        expect(frames.length).toBe(4);
        expect(end.kind).toBe('torn');
        expect(end.offset).toBe(lastStart);
        if (end.kind === 'torn') expect(end.bytes).toBe(cut - lastStart);
      }
    }
  });

  it('treats a final frame with a bad CRC, or a zero-filled tail, as torn', () => {
    const { bytes } = sample();
    const lastStart = bytes.length - (HEADER_BYTES + 37);
    const badLast = bytes.slice();
    flip(badLast, bytes.length - 3, 0x40);
    expect(scan([badLast]).end).toMatchObject({ kind: 'torn', offset: lastStart, reason: 'frame checksum mismatch' });
    const zeros = concat([bytes, new Uint8Array(4096)]);
    for (let split = 0; split <= zeros.length; split += 97) {
      expect(scan([zeros.subarray(0, split), zeros.subarray(split)]).end).toMatchObject({
        kind: 'torn',
        offset: bytes.length,
        bytes: 4096,
      });
    }
    // Last frame's payload partly zeroed (a write that reached the disk only in part), then zeros.
    const partial = concat([bytes, new Uint8Array(100)]);
    partial.fill(0, lastStart + HEADER_BYTES + 10, bytes.length);
    expect(scan([partial]).end).toMatchObject({ kind: 'torn', offset: lastStart });
    // Header partly zeroed.
    const hdr = bytes.slice();
    hdr.fill(0, lastStart + 6, bytes.length);
    expect(scan([hdr]).end).toMatchObject({ kind: 'torn', offset: lastStart });
  });

  it('reports a damaged frame followed by valid frames as corruption naming segment and offset', () => {
    const { bytes } = sample();
    const thirdStart = 2 * HEADER_BYTES + 5;
    for (const pos of [thirdStart + 1, thirdStart + 9, thirdStart + 21, thirdStart + 40]) {
      const bad = bytes.slice();
      flip(bad, pos, 0x01);
      for (const split of [0, thirdStart + 2, pos, pos + 30, bytes.length - 5]) {
        let err: unknown;
        try {
          scan([bad.subarray(0, split), bad.subarray(split)]);
        } catch (e) {
          err = e;
        }
        expect(err, `flip at ${pos}, split ${split}`).toBeInstanceOf(CorruptionError);
        expect((err as Error).message).toContain('seg.tmj');
        expect((err as Error).message).toContain(`offset ${thirdStart}`);
      }
    }
    // Bad magic in the middle.
    const magic = bytes.slice();
    magic[thirdStart] = 0x77;
    expect(() => scan([magic])).toThrow(/seg.tmj: bad frame magic at byte offset 61 \(a valid frame follows/);
  });

  it('refuses an LSN out of sequence', () => {
    const a = encodeFrame(1n, false, payloadOf(3, 1));
    const b = encodeFrame(3n, true, payloadOf(3, 2));
    expect(() => scan([concat([a, b])])).toThrow(/frame LSN 3 where 2 was expected/);
    expect(() => scan([a], 2n)).toThrow(/frame LSN 1 where 2 was expected/);
  });

  it('handles a large payload split across many chunks', () => {
    const big = payloadOf(300_000, 5);
    const bytes = concat([encodeFrame(1n, false, big), encodeFrame(2n, true, payloadOf(10, 1))]);
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += 4096) chunks.push(bytes.subarray(at, at + 4096));
    const { frames, end } = scan(chunks, 1n);
    expect(frames.length).toBe(2);
    expect(Buffer.compare(frames[0]?.payload ?? new Uint8Array(0), big)).toBe(0);
    expect(end.kind).toBe('clean');
  });
});
