/**
 * The backup reader (I/O): a backup's pieces fetched from the store one after the other → opened (open.ts) →
 * one plaintext Readable. Only verified chunks are released; at the end of each piece its size and SHA-256 are
 * checked against the list the manifest gave, and at the end the backup's last chunk must have been seen. A
 * piece missing from the store, a short or long piece, a changed byte, a dropped last chunk: the stream fails
 * with 'BACKUP_INTEGRITY' naming the piece key and the chunk. The stream pulls from the store only as fast as its
 * consumer reads (a piece is fetched while it is being consumed, never staged).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { TidemarkError } from '../../core/errors.ts';
import type { BackupStore } from '../store.ts';
import { integrityError } from './format.ts';
import { type EncryptionHeader, type MasterKey, unwrapDataKey } from './keys.ts';
import { Opener } from './open.ts';
import { type Progress, ProgressMeter } from './progress.ts';
import type { PieceInfo } from './writer.ts';

export interface ReadOptions {
  readonly store: BackupStore;
  readonly backupId: string;
  /** The backup's data key (keys.ts unwrapDataKey: a wrong master key is refused there, before any fetch). */
  readonly dataKey: Buffer;
  /** The pieces in order, as the manifest lists them. */
  readonly pieces: readonly PieceInfo[];
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
  /** Plaintext total when known (progress ETA). */
  readonly expectedBytes?: number;
}

/** The backup's plaintext as a stream of verified blocks (see the module comment). */
export function readBackup(o: ReadOptions): Readable {
  return Readable.from(blocks(o), { objectMode: false, highWaterMark: 1 << 20, signal: o.signal });
}

async function* blocks(o: ReadOptions): AsyncGenerator<Buffer> {
  const opener = new Opener({ backupId: o.backupId, dataKey: o.dataKey });
  const meter = new ProgressMeter(o.expectedBytes);
  let bytes = 0;
  let stored = 0;
  if (o.pieces.length === 0) {
    throw integrityError({ backupId: o.backupId, pieceKey: '(none)', piece: 0, chunk: 0 }, 'the backup lists no piece');
  }
  for (const [i, p] of o.pieces.entries()) {
    const at = { backupId: o.backupId, pieceKey: p.key, piece: i + 1 };
    const po = opener.piece(p.key);
    const body = await fetch(o.store, p.key, at);
    const hash = createHash('sha256');
    let size = 0n;
    for await (const data of body as AsyncIterable<Buffer>) {
      size += BigInt(data.length);
      if (size > p.size) {
        body.destroy();
        throw integrityError({ ...at, chunk: po.chunks }, `the piece is longer than the ${p.size} bytes listed`);
      }
      hash.update(data);
      stored += data.length;
      for (const b of po.push(data)) {
        bytes += b.length;
        yield b;
      }
      o.onProgress?.(meter.at(bytes, stored));
    }
    po.end();
    if (size !== p.size) {
      throw integrityError({ ...at, chunk: po.chunks }, `the piece is ${size} bytes, ${p.size} are listed`);
    }
    const sha = hash.digest('hex');
    if (sha !== p.sha256) {
      throw integrityError({ ...at, chunk: po.chunks }, `the piece's SHA-256 is ${sha}, ${p.sha256} is listed`);
    }
    if (po.chunks !== p.chunks) {
      throw integrityError({ ...at, chunk: po.chunks }, `the piece has ${po.chunks} chunks, ${p.chunks} are listed`);
    }
  }
  opener.finish();
  o.onProgress?.(meter.at(bytes, stored, true));
}

async function fetch(
  store: BackupStore,
  key: string,
  at: { backupId: string; pieceKey: string; piece: number },
): Promise<Readable> {
  try {
    return await store.get(key);
  } catch (err) {
    if (err instanceof TidemarkError && err.code === 'IO') {
      const what = err.context['missing'] === true ? 'is missing from' : 'cannot be read from';
      throw integrityError({ ...at, chunk: 0 }, `the piece ${what} store ${store.name}`, err);
    }
    throw err;
  }
}

export interface ReadSealedOptions extends Omit<ReadOptions, 'dataKey'> {
  readonly master: MasterKey;
  /** The manifest's encryption header. */
  readonly encryption: EncryptionHeader;
}

/**
 * Unwraps the backup's data key first — a wrong master key throws 'BACKUP_KEY' here, before any piece is
 * fetched or any byte released — then reads it (readBackup).
 */
export function readSealedBackup(o: ReadSealedOptions): Readable {
  const dataKey = unwrapDataKey(o.master, o.encryption, o.backupId);
  return readBackup({ ...o, dataKey });
}
