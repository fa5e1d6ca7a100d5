/**
 * Sealing (pure: no I/O): plaintext blocks in, sealed chunks out, already cut into pieces (format.ts has the
 * layout). The caller cuts the plaintext into blocks (the writer: `block_size`, ≥ 1 MiB); each block becomes one
 * chunk: zstd at the configured level (Node's built-in zstd, one-shot per block — no `nbWorkers`), or stored when
 * zstd does not shrink it (already compressed or encrypted data stays within +32 bytes per block), then
 * AES-256-GCM.
 *
 * One block is held back: whether a chunk is the last of its piece (the next one would not fit in `pieceSize`)
 * or the last of the backup (the source ended) is known only when the next block or the end arrives, and both
 * flags are sealed into the chunk's AAD.
 */
import { createCipheriv } from 'node:crypto';
import { constants, zstdCompressSync } from 'node:zlib';
import {
  aadOf,
  CHUNK_OVERHEAD,
  checkBackupId,
  encodeHeader,
  FLAG_LAST,
  FLAG_LAST_IN_PIECE,
  FLAG_ZSTD,
  MAX_BLOCK,
  nonceOf,
} from './format.ts';

export interface SealerOptions {
  readonly backupId: string;
  /** The backup's 32-byte data key (keys.ts). */
  readonly dataKey: Buffer;
  /** Largest piece in bytes; must hold at least one chunk of the largest block. */
  readonly pieceSize: number;
  /** Largest block the caller will push (the piece size is checked against it). */
  readonly blockSize: number;
  /** zstd level, default 1. */
  readonly level?: number;
}

export interface SealedChunk {
  /** Piece number, from 1 (the writer stores it as `piece-000001`, …). */
  readonly piece: number;
  /** Chunk number within its piece, from 0. */
  readonly chunk: number;
  /** Header, ciphertext, tag: written in this order. */
  readonly parts: readonly Buffer[];
  readonly size: number;
  readonly rawLength: number;
  readonly lastInPiece: boolean;
  readonly last: boolean;
}

export interface Packed {
  readonly raw: number;
  readonly body: Buffer;
  readonly zstd: boolean;
}

/** zstd one block, or keep it as it is when that is not smaller. */
export function packBlock(block: Buffer, level: number): Packed {
  if (block.length === 0) return { raw: 0, body: block, zstd: false };
  const z = zstdCompressSync(block, {
    params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 0 },
  });
  return z.length < block.length
    ? { raw: block.length, body: z, zstd: true }
    : { raw: block.length, body: block, zstd: false };
}

export class Sealer {
  readonly #o: SealerOptions;
  readonly #level: number;
  #pending: Packed | undefined;
  #piece = 1;
  #chunk = 0;
  #pieceBytes = 0;
  #ended = false;

  constructor(o: SealerOptions) {
    checkBackupId(o.backupId);
    if (o.dataKey.length !== 32) throw new RangeError('the data key must be 32 bytes');
    if (o.blockSize < 1 || o.blockSize > MAX_BLOCK) throw new RangeError(`block size must be 1..${MAX_BLOCK}`);
    if (o.pieceSize < o.blockSize + CHUNK_OVERHEAD) {
      throw new RangeError(`piece size ${o.pieceSize} cannot hold one block of ${o.blockSize} (+${CHUNK_OVERHEAD})`);
    }
    this.#o = o;
    this.#level = o.level ?? 1;
  }

  /**
   * Seals the block held back (if any) and holds this one: the caller must not change `block` until the next
   * push() or end() has returned (then it is free: sealed chunks never refer to it).
   */
  push(block: Buffer): SealedChunk[] {
    if (block.length > this.#o.blockSize) throw new RangeError(`block of ${block.length} exceeds ${this.#o.blockSize}`);
    return this.pushPacked(packBlock(block, this.#level));
  }

  /**
   * push() for a block already packed (zstd-async.ts packBlockAsync: compressed off the main thread); packed
   * blocks must come in plaintext order. The caller must not change `packed.body` afterwards.
   */
  pushPacked(next: Packed): SealedChunk[] {
    if (this.#ended) throw new Error('Sealer: push after end');
    if (next.raw > this.#o.blockSize) throw new RangeError(`block of ${next.raw} exceeds ${this.#o.blockSize}`);
    const prev = this.#pending;
    this.#pending = next;
    if (prev === undefined) return [];
    const fits = this.#pieceBytes + sealedSize(prev) + sealedSize(next) <= this.#o.pieceSize;
    return [this.#seal(prev, !fits, false)];
  }

  /** Seals the last chunk (an empty one when nothing was pushed: a backup always has a last chunk). */
  end(): SealedChunk[] {
    if (this.#ended) return [];
    this.#ended = true;
    const last = this.#pending ?? { raw: 0, body: Buffer.alloc(0), zstd: false };
    this.#pending = undefined;
    return [this.#seal(last, true, true)];
  }

  #seal(p: Packed, lastInPiece: boolean, last: boolean): SealedChunk {
    const flags = (lastInPiece ? FLAG_LAST_IN_PIECE : 0) | (last ? FLAG_LAST : 0) | (p.zstd ? FLAG_ZSTD : 0);
    const piece = this.#piece;
    const chunk = this.#chunk;
    const header = encodeHeader({ flags, chunk, rawLength: p.raw, bodyLength: p.body.length });
    const c = createCipheriv('aes-256-gcm', this.#o.dataKey, nonceOf(piece, chunk));
    c.setAAD(aadOf(header, piece, this.#o.backupId));
    const ct = c.update(p.body);
    const fin = c.final(); // empty for GCM, kept for form
    const parts = fin.length > 0 ? [header, ct, fin, c.getAuthTag()] : [header, ct, c.getAuthTag()];
    const size = sealedSize(p);
    if (lastInPiece) {
      this.#piece++;
      this.#chunk = 0;
      this.#pieceBytes = 0;
    } else {
      this.#chunk++;
      this.#pieceBytes += size;
    }
    return { piece, chunk, parts, size, rawLength: p.raw, lastInPiece, last };
  }
}

function sealedSize(p: Packed): number {
  return p.body.length + CHUNK_OVERHEAD;
}
