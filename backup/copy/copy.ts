/**
 * Copies the sealed backups of one store into another (issue #13, scope 7), verified without the key: every
 * piece's SHA-256 and size are recomputed while it streams from the source into the destination and compared
 * with the manifest (the manifest's hashes are of the stored — sealed — bytes, so no key is needed). Per backup,
 * oldest first (a parent before its children):
 *
 *   1. pieces: streamed source.get → check → destination.put, one at a time, never buffered whole; a piece
 *      already in the destination with the manifest's size and SHA-256 is skipped (a resumed copy), one of
 *      another size or hash is copied again;
 *   2. the star, if the source has one (before the manifest: the copy is never an unstarred backup);
 *   3. the manifest LAST, with putIfAbsent and the source's exact bytes — from then on the copy exists.
 *
 * A mismatch fails the piece's put (the destination store never shows an object whose check failed) and the copy
 * with BACKUP_COPY_MISMATCH naming the backup and the piece; earlier pieces of that backup stay as orphans the
 * next copy reuses. A backup already sealed in the destination is skipped; only its star is copied if missing
 * (an unstar in the source is not propagated). An undecodable source manifest is reported and skipped.
 */
import { createHash } from 'node:crypto';
import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { readAll } from '../catalog.ts';
import { decodeManifest, manifestKey, type Piece, parseBackupId, starKey } from '../manifest.ts';
import type { BackupStore } from '../store.ts';

export interface CopyOptions {
  readonly from: BackupStore;
  readonly to: BackupStore;
  /** Only these jobs' backups; absent: all. */
  readonly jobs?: readonly string[] | undefined;
  /** Say what would be copied (pieces missing by size); write nothing. */
  readonly dryRun: boolean;
  readonly signal?: AbortSignal | undefined;
  readonly log?: Logger | undefined;
}

export interface CopiedBackup {
  readonly id: string;
  readonly job: string;
  readonly pieces: number;
  /** Pieces streamed (the others were already in the destination, verified). */
  readonly copiedPieces: number;
  readonly bytes: bigint;
}

export interface CopyReport {
  readonly dryRun: boolean;
  readonly copied: readonly CopiedBackup[];
  /** Sealed in both stores already. */
  readonly present: readonly string[];
  /** Stars copied (with their backup, or onto a backup already there). */
  readonly stars: readonly string[];
  /** Source manifests that could not be read: not copied. */
  readonly damaged: readonly { readonly id: string; readonly error: string }[];
}

function mismatch(id: string, piece: Piece, what: string): TidemarkError {
  return new TidemarkError(
    `backup '${id}' piece '${piece.key}' in the copy's source store does not match its manifest (${what}): ` +
      `not copied. Check the source store; 'tidemark restore' of it would refuse it too`,
    { code: 'BACKUP_COPY_MISMATCH', context: { id, piece: piece.key } },
  );
}

/** Passes bytes through, hashing and counting; fails (before the end reaches the store) on a mismatch. */
class PieceCheck extends Transform {
  readonly #hash = createHash('sha256');
  readonly #id: string;
  readonly #piece: Piece;
  #n = 0n;
  failure: TidemarkError | null = null;

  constructor(id: string, piece: Piece) {
    super();
    this.#id = id;
    this.#piece = piece;
  }

  #fail(what: string): TidemarkError {
    this.failure = mismatch(this.#id, this.#piece, what);
    return this.failure;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#n += BigInt(chunk.length);
    if (this.#n > this.#piece.size) cb(this.#fail(`longer than its ${this.#piece.size} bytes`));
    else {
      this.#hash.update(chunk);
      cb(null, chunk);
    }
  }

  override _flush(cb: TransformCallback): void {
    const got = this.#hash.digest('hex');
    if (this.#n !== this.#piece.size) cb(this.#fail(`${this.#n} bytes, the manifest says ${this.#piece.size}`));
    else if (got !== this.#piece.sha256) cb(this.#fail(`SHA-256 ${got}, the manifest says ${this.#piece.sha256}`));
    else cb();
  }
}

/** The SHA-256 of a stored object (to decide whether a piece already in the destination is the right one). */
async function sha256Of(store: BackupStore, key: string): Promise<string> {
  const h = createHash('sha256');
  for await (const b of await store.get(key)) h.update(b as Buffer);
  return h.digest('hex');
}

async function copyPiece(o: CopyOptions, id: string, piece: Piece): Promise<void> {
  const check = new PieceCheck(id, piece);
  const src = await o.from.get(piece.key);
  const body = pipeline(src, check, () => undefined) as Readable;
  try {
    await o.to.put(piece.key, body, o.signal === undefined ? {} : { signal: o.signal });
  } catch (err) {
    throw check.failure ?? err;
  }
}

export async function copyBackups(o: CopyOptions): Promise<CopyReport> {
  const log = (o.log ?? silentLogger).child({ component: 'backup-copy', from: o.from.name, to: o.to.name });
  const sealed: string[] = [];
  const starred = new Set<string>();
  for await (const x of o.from.list('')) {
    const [id, rest] = x.key.split('/', 2);
    if (id === undefined || parseBackupId(id) === null) continue;
    const job = parseBackupId(id)?.job as string;
    if (o.jobs !== undefined && !o.jobs.includes(job)) continue;
    if (rest === 'manifest.json' && x.key === manifestKey(id)) sealed.push(id);
    if (x.key === starKey(id)) starred.add(id);
  }
  const there = new Map<string, bigint>();
  for await (const x of o.to.list('')) there.set(x.key, x.size);
  sealed.sort(); // ids sort by start time: parents first

  const copied: CopiedBackup[] = [];
  const present: string[] = [];
  const stars: string[] = [];
  const damaged: { id: string; error: string }[] = [];
  const copyStar = async (id: string) => {
    if (!o.dryRun) await o.to.put(starKey(id), await o.from.get(starKey(id)));
    stars.push(id);
  };
  for (const id of sealed) {
    o.signal?.throwIfAborted();
    if (there.has(manifestKey(id))) {
      present.push(id);
      if (starred.has(id) && !there.has(starKey(id))) await copyStar(id);
      continue;
    }
    const bytes = await readAll(o.from, manifestKey(id));
    let pieces: readonly Piece[];
    try {
      pieces = decodeManifest(bytes, manifestKey(id)).pieces;
    } catch (err) {
      log.warn({ id, err }, 'source manifest unreadable: not copied');
      damaged.push({ id, error: (err as Error).message });
      continue;
    }
    let streamed = 0;
    for (const p of pieces) {
      o.signal?.throwIfAborted();
      if (there.get(p.key) === p.size && (o.dryRun || (await sha256Of(o.to, p.key)) === p.sha256)) continue;
      if (!o.dryRun) await copyPiece(o, id, p);
      streamed++;
    }
    if (starred.has(id)) await copyStar(id);
    if (!o.dryRun && !(await o.to.putIfAbsent(manifestKey(id), bytes))) {
      present.push(id); // sealed meanwhile by another copy: same id, same pieces
      continue;
    }
    const size = pieces.reduce((n, p) => n + p.size, 0n);
    copied.push({
      id,
      job: parseBackupId(id)?.job as string,
      pieces: pieces.length,
      copiedPieces: streamed,
      bytes: size,
    });
    log.info({ id, pieces: pieces.length, streamed, bytes: String(size) }, o.dryRun ? 'would copy' : 'backup copied');
  }
  return { dryRun: o.dryRun, copied, present, stars, damaged };
}
