/**
 * Opening (pure: no I/O): the bytes of a backup's pieces in, verified plaintext blocks out. A chunk is buffered
 * whole and its GCM tag checked BEFORE any of its plaintext is handed on (Node's decipher returns plaintext from
 * update() before final() has checked the tag: that plaintext is dropped on failure, never returned). Then the
 * order is checked — chunk numbers from 0 in each piece, the piece-last flag ending each piece, the backup-last
 * flag ending the last piece and nothing after it — so a truncated, reordered, spliced or dropped chunk or piece
 * is refused. Every failure is a TidemarkError 'BACKUP_INTEGRITY' naming the piece key and the chunk number.
 */
import { createDecipheriv } from 'node:crypto';
import { zstdDecompressSync } from 'node:zlib';
import {
  aadOf,
  type ChunkHeader,
  checkBackupId,
  decodeHeader,
  FLAG_LAST,
  FLAG_LAST_IN_PIECE,
  FLAG_ZSTD,
  HEADER_BYTES,
  integrityError,
  nonceOf,
  TAG_BYTES,
} from './format.ts';

export interface OpenerOptions {
  readonly backupId: string;
  /** The backup's data key (keys.ts unwrapDataKey). */
  readonly dataKey: Buffer;
}

/** Opens a whole backup: one PieceOpener per piece, in order, then finish(). */
export class Opener {
  readonly #o: OpenerOptions;
  #nextPiece = 1;
  #sawLast = false;
  #lastKey = '';
  #open: PieceOpener | undefined;

  constructor(o: OpenerOptions) {
    checkBackupId(o.backupId);
    if (o.dataKey.length !== 32) throw new RangeError('the data key must be 32 bytes');
    this.#o = o;
  }

  /** The opener of the next piece (number 1, 2, … in order), stored under `key`. */
  piece(key: string): PieceOpener {
    const n = this.#nextPiece;
    if (this.#open !== undefined && !this.#open.ended) throw new Error('Opener: previous piece not ended');
    if (this.#sawLast) {
      throw integrityError(
        { backupId: this.#o.backupId, pieceKey: key, piece: n, chunk: 0 },
        `the backup already ended in piece '${this.#lastKey}' but piece ${n} follows`,
      );
    }
    this.#nextPiece++;
    this.#lastKey = key;
    this.#open = new PieceOpener(this.#o, n, key, () => {
      this.#sawLast = true;
    });
    return this.#open;
  }

  /** After the last piece: the backup's last chunk must have been seen (else pieces or chunks were dropped). */
  finish(): void {
    if (this.#open !== undefined && !this.#open.ended) throw new Error('Opener: last piece not ended');
    if (!this.#sawLast) {
      throw integrityError(
        {
          backupId: this.#o.backupId,
          pieceKey: this.#lastKey,
          piece: this.#nextPiece - 1,
          chunk: this.#open?.chunks ?? 0,
        },
        'the backup ends without its last chunk (a piece or chunk at the end is missing)',
      );
    }
  }
}

export class PieceOpener {
  readonly #o: OpenerOptions;
  readonly #piece: number;
  readonly #key: string;
  readonly #onLast: () => void;
  readonly #head = Buffer.alloc(HEADER_BYTES);
  #headFill = 0;
  #h: ChunkHeader | undefined;
  #buf = Buffer.alloc(0);
  #body: Buffer | undefined;
  #bodyFill = 0;
  #chunk = 0;
  #done = false;
  #ended = false;

  constructor(o: OpenerOptions, piece: number, key: string, onLast: () => void) {
    this.#o = o;
    this.#piece = piece;
    this.#key = key;
    this.#onLast = onLast;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Chunks verified so far in this piece. */
  get chunks(): number {
    return this.#chunk;
  }

  #fail(what: string, cause?: unknown): Error {
    return integrityError(
      { backupId: this.#o.backupId, pieceKey: this.#key, piece: this.#piece, chunk: this.#chunk },
      what,
      cause,
    );
  }

  /**
   * Feeds bytes of the piece; yields the plaintext block of each chunk they complete, once verified (a failure
   * further on throws after the blocks before it were yielded).
   */
  *push(data: Buffer): Generator<Buffer, void, undefined> {
    let at = 0;
    while (at < data.length) {
      if (this.#done) throw this.#fail(`${data.length - at} bytes follow the piece's last chunk`);
      if (this.#h === undefined) {
        const n = Math.min(HEADER_BYTES - this.#headFill, data.length - at);
        data.copy(this.#head, this.#headFill, at, at + n);
        this.#headFill += n;
        at += n;
        if (this.#headFill < HEADER_BYTES) break;
        const h = decodeHeader(this.#head);
        if (typeof h === 'string') throw this.#fail(h);
        if (h.chunk !== this.#chunk)
          throw this.#fail(`chunk numbered ${h.chunk} where ${this.#chunk} belongs (reordered or spliced)`);
        this.#h = h;
        // One buffer for every chunk of the piece, grown as needed: a verified chunk's plaintext is a copy.
        if (this.#buf.length < h.bodyLength + TAG_BYTES) this.#buf = Buffer.allocUnsafe(h.bodyLength + TAG_BYTES);
        this.#body = this.#buf.subarray(0, h.bodyLength + TAG_BYTES);
        this.#bodyFill = 0;
      }
      const body = this.#body as Buffer;
      const n = Math.min(body.length - this.#bodyFill, data.length - at);
      data.copy(body, this.#bodyFill, at, at + n);
      this.#bodyFill += n;
      at += n;
      if (this.#bodyFill === body.length) yield this.#verify(this.#h, body);
    }
  }

  #verify(h: ChunkHeader, body: Buffer): Buffer {
    const d = createDecipheriv('aes-256-gcm', this.#o.dataKey, nonceOf(this.#piece, this.#chunk));
    d.setAAD(aadOf(this.#head, this.#piece, this.#o.backupId));
    d.setAuthTag(body.subarray(h.bodyLength));
    let plain: Buffer;
    try {
      // update() hands out plaintext before final() has checked the tag: it stays here until final() passes.
      const unchecked = d.update(body.subarray(0, h.bodyLength));
      d.final();
      plain = unchecked;
    } catch (err) {
      throw this.#fail('authentication tag does not match (the bytes were changed, moved or belong elsewhere)', err);
    }
    if ((h.flags & FLAG_ZSTD) !== 0) {
      try {
        plain = zstdDecompressSync(plain, { maxOutputLength: Math.max(h.rawLength, 1) });
      } catch (err) {
        throw this.#fail('authenticated body does not decompress', err);
      }
    }
    if (plain.length !== h.rawLength)
      throw this.#fail(`block is ${plain.length} bytes, its header says ${h.rawLength}`);
    this.#h = undefined;
    this.#body = undefined;
    this.#headFill = 0;
    if ((h.flags & FLAG_LAST_IN_PIECE) !== 0) this.#done = true;
    if ((h.flags & FLAG_LAST) !== 0) this.#onLast();
    this.#chunk++;
    return plain;
  }

  /** The piece's bytes ended: it must end on a chunk boundary, with its last chunk. */
  end(): void {
    if (this.#ended) return;
    if (this.#h !== undefined || this.#headFill > 0) throw this.#fail('the piece ends inside this chunk (truncated)');
    if (!this.#done) throw this.#fail('the piece ends without its last chunk (chunks at its end are missing)');
    this.#ended = true;
  }
}
