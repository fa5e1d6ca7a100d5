import { describe, expect, it } from 'vitest';
import { Batch } from './batch.ts';
import { HEADER_BYTES } from './frame.ts';

const payload = (n: number, fill: number) => new Uint8Array(n).fill(fill);
/** The distinct slabs behind a batch's parts (parts of one slab share its buffer). */
const slabs = (b: Batch) => [...new Set(b.parts.map((p) => p.buffer))] as ArrayBuffer[];

describe('Batch', () => {
  it('gives a batch of a few small frames a small slab (issue #15: not 256 KiB per batch)', () => {
    const b = new Batch(null);
    for (let i = 1; i <= 5; i++) b.add(BigInt(i), i === 5, payload(200, i));
    b.seal();
    expect(b.bytes).toBe(5 * (HEADER_BYTES + 200));
    expect(slabs(b).map((s) => s.byteLength)).toEqual([8 << 10]);
    expect(b.lastLsn).toBe(5n);
    expect(b.lastUnitEnd).toBe(5n);
  });

  it('doubles the slab per slab up to 256 KiB, and keeps every frame in order', () => {
    const b = new Batch(null);
    const n = 4000;
    for (let i = 1; i <= n; i++) b.add(BigInt(i), false, payload(300, i % 251));
    b.seal();
    const sizes = slabs(b).map((s) => s.byteLength);
    expect(sizes.slice(0, 6)).toEqual([8, 16, 32, 64, 128, 256].map((k) => k << 10));
    expect(sizes.slice(6).every((s) => s === 256 << 10)).toBe(true);
    const all = Buffer.concat(b.parts);
    expect(all.length).toBe(n * (HEADER_BYTES + 300));
    for (const i of [1, 2, 1000, n]) {
      const at = (i - 1) * (HEADER_BYTES + 300) + HEADER_BYTES;
      expect(all[at]).toBe(i % 251);
      expect(all[at + 299]).toBe(i % 251);
    }
  });

  it('references a large payload instead of copying it', () => {
    const b = new Batch(null);
    const big = payload(40 << 10, 7);
    b.add(1n, true, payload(10, 1));
    b.add(2n, true, big);
    b.seal();
    expect(b.parts.includes(big)).toBe(true);
    expect(b.bytes).toBe(2 * HEADER_BYTES + 10 + (40 << 10));
  });
});
