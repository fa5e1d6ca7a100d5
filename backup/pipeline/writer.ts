/**
 * The backup writer (I/O): a plaintext source (mariadb-backup's stdout, a binlog segment) → blocks → sealed
 * chunks (seal.ts) → pieces of at most `pieceSize` bytes, each streamed into store.put() as it is sealed, its
 * SHA-256 computed in flight. Nothing is staged on disk and at most ~two blocks plus the store's upload buffers
 * are in memory: the source is read only as fast as the store takes the pieces (a full piece body pauses the
 * loop, and a paused loop stops reading the source, which pauses the producer behind its pipe).
 *
 * On any failure (source error, store error, abort) the piece being written is destroyed, so the store discards
 * it (never a short object under the key); pieces already stored stay as orphans until the catalog collects
 * them — a backup exists only once its manifest is written, after this returns.
 */
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { addAbortSignal, PassThrough, Readable } from 'node:stream';
import { TidemarkError } from '../../core/errors.ts';
import type { BackupStore, StoredObject } from '../store.ts';
import { MIN_BLOCK } from './format.ts';
import { type EncryptionHeader, type MasterKey, newDataKey, wrapDataKey } from './keys.ts';
import { type Progress, ProgressMeter } from './progress.ts';
import { type Packed, type SealedChunk, Sealer } from './seal.ts';
import { packBlockAsync } from './zstd-async.ts';

/** One stored piece, as the manifest lists it. */
export interface PieceInfo {
  readonly key: string;
  readonly size: bigint;
  /** Hex SHA-256 of the piece's bytes as stored. */
  readonly sha256: string;
  readonly chunks: number;
}

export const DEFAULT_BLOCK_SIZE = 2 << 20;
/** Blocks compressing at once on the libuv thread pool (4 threads by default). */
const COMPRESS_DEPTH = 3;
export const DEFAULT_PIECE_SIZE = 1 << 30;
/**
 * What a piece body buffers before the writer waits for the store to take it. Small on purpose: a sealed chunk
 * (a whole block) is written at once anyway, and the store has its own buffers (S3: queue × part size).
 */
const BODY_HIGH_WATER = 64 << 10;

export interface WriteOptions {
  readonly store: BackupStore;
  readonly source: Readable | AsyncIterable<Buffer>;
  readonly backupId: string;
  readonly dataKey: Buffer;
  /** Piece keys are `<keyPrefix>piece-000001`, …; default `<backupId>/`. */
  readonly keyPrefix?: string;
  /** Plaintext block size (≥ 1 MiB), default 2 MiB. */
  readonly blockSize?: number;
  /** Largest piece, default 1 GiB. */
  readonly pieceSize?: number;
  /** zstd level, default 1. */
  readonly level?: number;
  readonly signal?: AbortSignal;
  /** Expected plaintext bytes, when known: progress gets percent and ETA. */
  readonly expectedBytes?: number;
  /** Called after every chunk and once at the end (progress.ts progressReporter throttles it). */
  readonly onProgress?: (p: Progress) => void;
}

export function pieceKey(prefix: string, piece: number): string {
  return `${prefix}piece-${String(piece).padStart(6, '0')}`;
}

/** One piece being streamed into the store. */
class PieceUpload {
  readonly key: string;
  readonly #body: PassThrough;
  readonly #hash: Hash = createHash('sha256');
  readonly #put: Promise<StoredObject>;
  /** Rejects as soon as the put settles while the body is still being written (a failure, or a bug). */
  readonly #settled: Promise<never>;
  readonly #ac = new AbortController();
  #size = 0;
  #chunks = 0;

  constructor(store: BackupStore, key: string, highWaterMark: number, signal: AbortSignal | undefined) {
    this.key = key;
    this.#body = new PassThrough({ highWaterMark });
    const s = signal === undefined ? this.#ac.signal : AbortSignal.any([signal, this.#ac.signal]);
    this.#put = store.put(key, this.#body, { signal: s });
    this.#put.catch(() => undefined); // awaited in finish()/abort()
    this.#settled = this.#put.then(() => this.#early());
    this.#settled.catch(() => undefined); // raced in write()
  }

  async write(c: SealedChunk): Promise<void> {
    for (const p of c.parts) {
      this.#hash.update(p);
      this.#size += p.length;
      if (!this.#body.write(p)) {
        try {
          await Promise.race([once(this.#body, 'drain'), this.#settled]);
        } catch (err) {
          // A store whose upload failed stops reading, and closing its reader destroys the body with a bare
          // AbortError: the put's own error (typed, retriable or not) is the one that says what happened.
          throw (
            (await this.#put.then(
              () => undefined,
              (e: unknown) => e,
            )) ?? err
          );
        }
      }
    }
    this.#chunks++;
  }

  #early(): never {
    throw new TidemarkError(`store put of '${this.key}' ended before its body was written`, {
      code: 'INTERNAL',
      context: { key: this.key },
    });
  }

  async finish(): Promise<PieceInfo> {
    this.#body.end();
    const stored = await this.#put;
    if (stored.size !== BigInt(this.#size)) {
      throw new TidemarkError(`store kept ${stored.size} bytes of piece '${this.key}', ${this.#size} were written`, {
        code: 'BACKUP_STORE',
        context: { key: this.key },
      });
    }
    return { key: this.key, size: stored.size, sha256: this.#hash.digest('hex'), chunks: this.#chunks };
  }

  /** Destroys the body and aborts the put; the store keeps nothing under the key. Never throws. */
  async abort(reason: unknown): Promise<void> {
    this.#ac.abort(reason);
    this.#body.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    await this.#put.catch(() => undefined);
  }
}

/** Streams `source` into the store as sealed pieces; returns them in order (see the module comment). */
export async function writeBackup(o: WriteOptions): Promise<PieceInfo[]> {
  const blockSize = o.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (blockSize < MIN_BLOCK) throw new RangeError(`block size ${blockSize} is below ${MIN_BLOCK}`);
  const sealer = new Sealer({
    backupId: o.backupId,
    dataKey: o.dataKey,
    blockSize,
    pieceSize: o.pieceSize ?? DEFAULT_PIECE_SIZE,
    level: o.level ?? 1,
  });
  const prefix = o.keyPrefix ?? `${o.backupId}/`;
  const meter = new ProgressMeter(o.expectedBytes);
  const pieces: PieceInfo[] = [];
  let current: PieceUpload | undefined;
  let bytes = 0;
  let stored = 0;

  const emit = async (chunks: SealedChunk[]) => {
    for (const c of chunks) {
      current ??= new PieceUpload(o.store, pieceKey(prefix, c.piece), BODY_HIGH_WATER, o.signal);
      await current.write(c);
      stored += c.size;
      if (c.lastInPiece) {
        pieces.push(await current.finish());
        current = undefined;
      }
      o.onProgress?.(meter.at(bytes, stored));
    }
  };

  // A source that stalls must not outlive an abort: the signal destroys it.
  if (o.signal !== undefined && o.source instanceof Readable) addAbortSignal(o.signal, o.source);
  // Blocks compress on the thread pool, COMPRESS_DEPTH at a time, and are sealed in order. A block buffer is free
  // again as soon as its compression resolved (the packed body never refers to it), so COMPRESS_DEPTH + 1
  // buffers in turn are enough; reusing them keeps the garbage (and so RSS) down.
  const free: Buffer[] = Array.from({ length: COMPRESS_DEPTH + 1 }, () => Buffer.allocUnsafe(blockSize));
  const inflight: Promise<Packed>[] = [];
  const level = o.level ?? 1;
  const compress = (buf: Buffer, n: number): void => {
    const p = packBlockAsync(buf.subarray(0, n), level).finally(() => free.push(buf));
    p.catch(() => undefined); // awaited in order below
    inflight.push(p);
  };
  const sealNext = async (): Promise<void> => emit(sealer.pushPacked(await (inflight.shift() as Promise<Packed>)));
  let block = free.pop() as Buffer;
  let fill = 0;
  try {
    for await (const data of o.source as AsyncIterable<Buffer>) {
      if (o.signal?.aborted) throw aborted(o.backupId, o.signal.reason);
      let at = 0;
      while (at < data.length) {
        const n = Math.min(blockSize - fill, data.length - at);
        data.copy(block, fill, at, at + n);
        fill += n;
        at += n;
        bytes += n;
        if (fill === blockSize) {
          compress(block, fill);
          if (inflight.length >= COMPRESS_DEPTH) await sealNext();
          block = free.pop() as Buffer;
          fill = 0;
        }
      }
    }
    if (o.signal?.aborted) throw aborted(o.backupId, o.signal.reason);
    if (fill > 0) compress(block, fill);
    while (inflight.length > 0) await sealNext();
    await emit(sealer.end());
  } catch (err) {
    await current?.abort(err);
    throw o.signal?.aborted ? aborted(o.backupId, o.signal.reason) : err;
  }
  o.onProgress?.(meter.at(bytes, stored, true));
  return pieces;
}

function aborted(backupId: string, reason: unknown): TidemarkError {
  return new TidemarkError(`backup '${backupId}' was aborted before its last piece was stored`, {
    code: 'ABORTED',
    cause: reason,
    context: { backupId },
  });
}

export interface WriteSealedOptions extends Omit<WriteOptions, 'dataKey'> {
  readonly master: MasterKey;
}

/** A new data key for the backup, wrapped under the master key; the header goes into the manifest with the pieces. */
export async function writeSealedBackup(
  o: WriteSealedOptions,
): Promise<{ encryption: EncryptionHeader; pieces: PieceInfo[] }> {
  const dataKey = newDataKey();
  const encryption = wrapDataKey(o.master, dataKey, o.backupId);
  const pieces = await writeBackup({ ...o, dataKey });
  return { encryption, pieces };
}
