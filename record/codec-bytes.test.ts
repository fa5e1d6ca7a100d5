import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from './codec-bytes.ts';
import type { Value } from './record.ts';

/** Bytes of one tagged value. */
function bytesOf(v: Value): number[] {
  const w = new ByteWriter();
  w.value(v);
  return [...w.buf.subarray(0, w.pos)];
}

describe('ByteWriter.value integer tags (the on-disk choice between small, int64, uint64, big)', () => {
  it('picks the small zigzag varint exactly inside [-2^31, 2^31)', () => {
    expect(bytesOf(0n)).toEqual([1, 0]);
    expect(bytesOf(-1n)).toEqual([1, 1]);
    expect(bytesOf(1n)).toEqual([1, 2]);
    expect(bytesOf(2n ** 31n - 1n)).toEqual([1, 0xfe, 0xff, 0xff, 0xff, 0x0f]);
    expect(bytesOf(-(2n ** 31n))).toEqual([1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
  });

  it('switches to 8-byte forms just outside it, also where a double would round (2^53 + 1)', () => {
    expect(bytesOf(2n ** 31n)[0]).toBe(2);
    expect(bytesOf(-(2n ** 31n) - 1n)[0]).toBe(2);
    expect(bytesOf(2n ** 53n + 1n)).toEqual([2, 1, 0, 0, 0, 0, 0, 0x20, 0]);
    expect(bytesOf(2n ** 63n - 1n)[0]).toBe(2);
    expect(bytesOf(2n ** 63n)[0]).toBe(3);
    expect(bytesOf(2n ** 64n)[0]).toBe(4);
    expect(bytesOf(-(2n ** 64n))[0]).toBe(4);
    expect(bytesOf(10n ** 400n)[0]).toBe(4); // beyond a double's range: Number() is Infinity
  });

  it('round-trips every kind, strings of both lengths and unicode included', () => {
    const values: Value[] = [
      null,
      'ascii',
      'é€日🎉',
      'x'.repeat(43),
      'ü'.repeat(100),
      1.5,
      -0,
      new Uint8Array([1, 2, 3]),
      -(2n ** 31n),
      2n ** 53n + 1n,
    ];
    const w = new ByteWriter();
    for (const v of values) w.value(v);
    const r = new ByteReader(w.buf.slice(0, w.pos));
    for (const v of values) expect(r.value()).toEqual(v);
    expect(r.pos).toBe(w.pos);
  });
});
