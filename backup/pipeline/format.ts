/**
 * The sealed chunk format of a backup piece (pure: no I/O). A piece is a run of sealed chunks; each chunk is one
 * plaintext block, zstd-compressed (or stored when zstd would not shrink it), sealed with AES-256-GCM under the
 * backup's data key:
 *
 *   offset size  field
 *   0      2     magic 'TC'
 *   2      1     version (1)
 *   3      1     flags: 1 = last chunk of its piece, 2 = last chunk of the backup, 4 = body is zstd (else stored)
 *   4      4     chunk number within the piece, from 0 (u32 BE)
 *   8      4     plaintext (block) length (u32 BE)
 *   12     4     body length: the ciphertext that follows (u32 BE)
 *   16     n     ciphertext of the (compressed) block
 *   16+n   16    GCM tag
 *
 * Nonce (96 bits): piece number (u32) ‖ chunk number (u64), unique under one data key because every backup has
 * its own data key and a (piece, chunk) pair occurs once in it. AAD: the 16 header bytes ‖ piece number (u32) ‖
 * the backup id (u16 length + UTF-8): a chunk moved to another place, another piece or another backup, a changed
 * flag or length, fails its tag — so truncation at a chunk boundary (the last flag is missing), reordering and
 * splicing are caught, not only flipped bits.
 */
import { TidemarkError } from '../../core/errors.ts';

export const CHUNK_VERSION = 1;
export const HEADER_BYTES = 16;
export const TAG_BYTES = 16;
/** Header + tag: what sealing adds to a chunk's body. */
export const CHUNK_OVERHEAD = HEADER_BYTES + TAG_BYTES;
export const FLAG_LAST_IN_PIECE = 1;
export const FLAG_LAST = 2;
export const FLAG_ZSTD = 4;
const KNOWN_FLAGS = FLAG_LAST_IN_PIECE | FLAG_LAST | FLAG_ZSTD;
/** Smallest and largest plaintext block the pipeline accepts (config: `block_size`). */
export const MIN_BLOCK = 1 << 20;
export const MAX_BLOCK = 64 << 20;
const MAGIC0 = 0x54; // 'T'
const MAGIC1 = 0x43; // 'C'

export interface ChunkHeader {
  readonly version: number;
  readonly flags: number;
  readonly chunk: number;
  readonly rawLength: number;
  readonly bodyLength: number;
}

export function encodeHeader(h: Omit<ChunkHeader, 'version'>): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b[0] = MAGIC0;
  b[1] = MAGIC1;
  b[2] = CHUNK_VERSION;
  b[3] = h.flags;
  b.writeUInt32BE(h.chunk, 4);
  b.writeUInt32BE(h.rawLength, 8);
  b.writeUInt32BE(h.bodyLength, 12);
  return b;
}

/**
 * Reads a header that is not yet authenticated: it only decides how many bytes make the chunk, so everything
 * is bounded (a damaged length cannot make the reader buffer more than MAX_BLOCK) and the tag check decides.
 * Returns a reason when the header cannot be one tidemark wrote.
 */
export function decodeHeader(b: Buffer): ChunkHeader | string {
  if (b[0] !== MAGIC0 || b[1] !== MAGIC1) return 'no chunk header here (bad magic)';
  const version = b[2] ?? 0;
  if (version !== CHUNK_VERSION) return `chunk format version ${version} is not one this tidemark reads (1)`;
  const flags = b[3] ?? 0;
  if ((flags & ~KNOWN_FLAGS) !== 0) return `unknown chunk flags 0x${flags.toString(16)}`;
  const h = { version, flags, chunk: b.readUInt32BE(4), rawLength: b.readUInt32BE(8), bodyLength: b.readUInt32BE(12) };
  if (h.rawLength > MAX_BLOCK) return `block length ${h.rawLength} exceeds ${MAX_BLOCK}`;
  if (h.bodyLength > MAX_BLOCK) return `body length ${h.bodyLength} exceeds ${MAX_BLOCK}`;
  if ((flags & FLAG_ZSTD) === 0 && h.bodyLength !== h.rawLength) return 'a stored body differs from its block length';
  if ((flags & FLAG_LAST) !== 0 && (flags & FLAG_LAST_IN_PIECE) === 0) return 'last chunk not flagged last in piece';
  return h;
}

export function nonceOf(piece: number, chunk: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeUInt32BE(piece, 0);
  n.writeBigUInt64BE(BigInt(chunk), 4);
  return n;
}

export function aadOf(header: Buffer, piece: number, backupId: string): Buffer {
  const id = Buffer.from(backupId, 'utf8');
  const tail = Buffer.alloc(6);
  tail.writeUInt32BE(piece, 0);
  tail.writeUInt16BE(id.length, 4);
  return Buffer.concat([header, tail, id]);
}

/** Where a chunk sits, for messages: the piece's store key and number, the chunk number. */
export interface ChunkPlace {
  readonly backupId: string;
  readonly pieceKey: string;
  readonly piece: number;
  readonly chunk: number;
}

/** The one error of a failed check: names the piece key and the chunk, and says nothing of it was released. */
export function integrityError(at: ChunkPlace, what: string, cause?: unknown): TidemarkError {
  return new TidemarkError(
    `backup '${at.backupId}': piece '${at.pieceKey}' chunk ${at.chunk}: ${what}; nothing of this chunk was released ` +
      '(restore from a copy or take a new backup)',
    {
      code: 'BACKUP_INTEGRITY',
      cause,
      context: { backupId: at.backupId, pieceKey: at.pieceKey, piece: at.piece, chunk: at.chunk },
    },
  );
}

/** Checks a backup id: it goes into every chunk's AAD (u16 length) and into store keys. */
export function checkBackupId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(id)) {
    throw new TidemarkError(`backup id '${id}' must be 1-200 letters, digits, '.', '_' or '-'`, { code: 'USAGE' });
  }
}
