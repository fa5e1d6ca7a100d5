import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { prng } from '../../test/fixtures/prng.ts';
import { CHUNK_OVERHEAD, FLAG_ZSTD } from './format.ts';
import { newDataKey } from './keys.ts';
import { Sealer } from './seal.ts';
import { mixedData, openInMemory, type SealedPiece, sealInMemory } from '../../test/fixtures/backup-seal.ts';

const BLOCK = 4096;
const PIECE = 3 * (BLOCK + CHUNK_OVERHEAD) + 100; // three full chunks a piece at most
const A = { backupId: 'full-20261206T0200', dataKey: newDataKey() };
const seal = (data: Buffer, o = A) => sealInMemory(data, { ...o, blockSize: BLOCK, pieceSize: PIECE });

function integrity(fn: () => unknown): TidemarkError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('BACKUP_INTEGRITY');
    return err as TidemarkError;
  }
  throw new Error('expected BACKUP_INTEGRITY, nothing was thrown');
}

const copy = (ps: SealedPiece[]) => ps.map((p) => ({ key: p.key, bytes: Buffer.from(p.bytes), chunks: p.chunks }));

describe('seal → open', () => {
  it('round-trips empty, 1 byte, exactly a block, many blocks and several pieces', () => {
    const r = prng(13);
    const sizes = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, 10 * BLOCK + 17];
    for (let i = 0; i < 8; i++) sizes.push(Math.floor(r() * 40 * BLOCK));
    let most = 0;
    for (const size of sizes) {
      const data = mixedData(size, size);
      const pieces = seal(data);
      expect(openInMemory(pieces, A).equals(data), `size ${size}`).toBe(true);
      for (const p of pieces) expect(p.bytes.length).toBeLessThanOrEqual(PIECE);
      const blocks = Math.max(1, Math.ceil(size / BLOCK));
      expect(pieces.reduce((n, p) => n + p.chunks.length, 0)).toBe(blocks);
      const sealed = pieces.reduce((n, p) => n + p.bytes.length, 0);
      // Pieces are filled: every piece but the last could not take the next chunk.
      expect(pieces.length).toBeLessThanOrEqual(Math.ceil(sealed / (PIECE - BLOCK - CHUNK_OVERHEAD)));
      most = Math.max(most, pieces.length);
    }
    expect(most).toBeGreaterThan(3);
  });

  it('property: any block size, piece size and slicing round-trips, pieces never exceed their size', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40_000 }),
        fc.integer({ min: 200, max: 9000 }),
        fc.integer({ min: 0, max: 40_000 }),
        fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 64, max: 70_000 })),
        fc.integer(),
        (size, blockSize, extra, feed, seed) => {
          const data = mixedData(size, seed);
          const pieceSize = blockSize + CHUNK_OVERHEAD + extra;
          const pieces = sealInMemory(data, { ...A, blockSize, pieceSize });
          for (const p of pieces) expect(p.bytes.length).toBeLessThanOrEqual(pieceSize);
          expect(openInMemory(pieces, A, [], feed).equals(data)).toBe(true);
        },
      ),
      { numRuns: 150, seed: 20261206 },
    );
  });

  it('opens the same bytes whatever the slices they arrive in', () => {
    const data = mixedData(7 * BLOCK + 5, 7);
    const pieces = seal(data);
    for (const feed of [1, 15, 16, 17, BLOCK + CHUNK_OVERHEAD, 1 << 20]) {
      expect(openInMemory(pieces, A, [], feed).equals(data), `feed ${feed}`).toBe(true);
    }
  });

  it('compresses what shrinks and stores what does not (random data grows by the overhead only)', () => {
    const text = Buffer.alloc(8 * BLOCK, 'SELECT 1; ');
    const z = seal(text);
    expect(z.reduce((n, p) => n + p.bytes.length, 0)).toBeLessThan(text.length / 10);
    expect((z[0]?.bytes[3] ?? 0) & FLAG_ZSTD).toBe(FLAG_ZSTD);
    const rnd = randomBytes(8 * BLOCK);
    const s = seal(rnd);
    expect(s.reduce((n, p) => n + p.bytes.length, 0)).toBe(rnd.length + 8 * CHUNK_OVERHEAD);
  });

  it('never reuses a nonce: the same block twice seals to different ciphertext', () => {
    const block = randomBytes(BLOCK);
    const s = new Sealer({ ...A, blockSize: BLOCK, pieceSize: PIECE });
    const cs = [...s.push(block), ...s.push(block), ...s.push(block), ...s.push(block), ...s.end()];
    const bodies = cs.map((c) => Buffer.concat(c.parts.slice(1)).toString('hex'));
    expect(new Set(bodies).size).toBe(cs.length);
    expect(cs.map((c) => [c.piece, c.chunk, c.lastInPiece, c.last])).toEqual([
      [1, 0, false, false],
      [1, 1, false, false],
      [1, 2, true, false],
      [2, 0, true, true],
    ]);
  });
});

describe('tampering', () => {
  const data = mixedData(11 * BLOCK + 999, 42);
  const pieces = seal(data);

  it('one flipped byte anywhere: refused naming the piece and chunk, and nothing of that chunk is released', () => {
    const r = prng(99);
    const tries: [number, number][] = [];
    // Every header byte of a few chunks, plus random positions in every piece.
    for (const [pi, p] of pieces.entries()) {
      for (const c of p.chunks) for (let k = 0; k < 16; k++) tries.push([pi, c.at + k]);
      for (let k = 0; k < 40; k++) tries.push([pi, Math.floor(r() * p.bytes.length)]);
    }
    for (const [pi, at] of tries) {
      const t = copy(pieces);
      const piece = t[pi] as SealedPiece;
      piece.bytes[at] = (piece.bytes[at] as number) ^ (1 << Math.floor(r() * 8));
      const chunkNo = piece.chunks.findLastIndex((c) => c.at <= at);
      const released: Buffer[] = [];
      const err = integrity(() => openInMemory(t, A, released, 1 + Math.floor(r() * 9000)));
      expect(err.context['pieceKey'], `byte ${at} of piece ${pi}`).toBe(piece.key);
      expect(err.context['chunk'], `byte ${at} of piece ${pi}`).toBe(chunkNo);
      expect(err.message).toContain(`piece '${piece.key}' chunk ${chunkNo}`);
      // Exactly the chunks before the damaged one were released.
      const plainAt = piece.chunks[chunkNo]?.plainAt ?? -1;
      expect(Buffer.concat(released).equals(data.subarray(0, plainAt))).toBe(true);
    }
  });

  it('a dropped last chunk, a dropped piece or a truncated piece is refused', () => {
    const last = pieces.length - 1;
    const lp = pieces[last] as SealedPiece;
    const lastChunkAt = lp.chunks.at(-1)?.at ?? 0;
    const dropLastChunk = copy(pieces);
    (dropLastChunk[last] as { bytes: Buffer }).bytes = lp.bytes.subarray(0, lastChunkAt);
    expect(integrity(() => openInMemory(dropLastChunk, A)).message).toMatch(/without its last chunk|lists no/);

    expect(integrity(() => openInMemory(pieces.slice(0, -1), A)).message).toContain('without its last chunk');
    const dropMiddle = pieces.filter((_, i) => i !== 1);
    const e = integrity(() => openInMemory(dropMiddle, A));
    expect(e.context['pieceKey']).toBe(pieces[2]?.key);
    expect(e.context['chunk']).toBe(0);

    const cut = copy(pieces);
    (cut[0] as { bytes: Buffer }).bytes = (pieces[0] as SealedPiece).bytes.subarray(0, 5000);
    expect(integrity(() => openInMemory(cut, A)).message).toContain('truncated');
    const extra = copy(pieces);
    (extra[0] as { bytes: Buffer }).bytes = Buffer.concat([(pieces[0] as SealedPiece).bytes, Buffer.from('x')]);
    expect(integrity(() => openInMemory(extra, A)).message).toContain('follow the piece');
  });

  it('reordered chunks and swapped pieces are refused', () => {
    const p0 = pieces[0] as SealedPiece;
    const [c0, c1, c2] = p0.chunks as [SealedPiece['chunks'][0], SealedPiece['chunks'][0], SealedPiece['chunks'][0]];
    const b = p0.bytes;
    const swapped = Buffer.concat([b.subarray(0, c1.at), b.subarray(c2.at), b.subarray(c1.at, c2.at)]);
    expect(c0.at).toBe(0);
    const t = copy(pieces);
    (t[0] as { bytes: Buffer }).bytes = swapped;
    const e = integrity(() => openInMemory(t, A));
    expect(e.context['chunk']).toBe(1);
    expect(e.message).toContain('reordered');

    const [s0, s1] = pieces as [SealedPiece, SealedPiece];
    const sw = [{ key: s0.key, bytes: s1.bytes }, { key: s1.key, bytes: s0.bytes }, ...pieces.slice(2)];
    const e2 = integrity(() => openInMemory(sw, A));
    expect([e2.context['pieceKey'], e2.context['chunk']]).toEqual([s0.key, 0]);
  });

  it('a chunk spliced in from another backup (other key, or the same key and another id) is refused', () => {
    const other = { backupId: 'full-20261207T0200', dataKey: newDataKey() };
    const sameKey = { backupId: 'incr-20261207T0200', dataKey: A.dataKey };
    for (const o of [other, sameKey]) {
      const theirs = seal(mixedData(11 * BLOCK + 999, 43), o);
      const tp = theirs[0] as SealedPiece;
      const mine = pieces[0] as SealedPiece;
      const [m1, m2] = [mine.chunks[1]?.at ?? 0, mine.chunks[2]?.at ?? 0];
      const [t1, t2] = [tp.chunks[1]?.at ?? 0, tp.chunks[2]?.at ?? 0];
      const t = copy(pieces);
      (t[0] as { bytes: Buffer }).bytes = Buffer.concat([
        mine.bytes.subarray(0, m1),
        tp.bytes.subarray(t1, t2),
        mine.bytes.subarray(m2),
      ]);
      const released: Buffer[] = [];
      const e = integrity(() => openInMemory(t, A, released));
      expect(e.context['chunk']).toBe(1);
      expect(Buffer.concat(released).equals(data.subarray(0, BLOCK))).toBe(true);
    }
  });

  it('the wrong data key opens nothing', () => {
    const released: Buffer[] = [];
    const e = integrity(() => openInMemory(pieces, { ...A, dataKey: newDataKey() }, released));
    expect(e.context['chunk']).toBe(0);
    expect(released).toEqual([]);
  });
});
