/**
 * zstd off the main thread: Node's async zlib calls run on the libuv thread pool, so several blocks compress (or
 * decompress) at once while the main thread parses, seals, hashes and uploads — what `zstd -T2` does for the
 * shell pipeline. One-shot per block with 1 MiB output chunks (not 16 KiB pieces to join), and
 * never zstd's own `nbWorkers` (it loses output in Node 24). The results equal packBlock's (seal.ts).
 */
import { promisify } from 'node:util';
import { constants, zstdCompress, zstdDecompress } from 'node:zlib';

const compress = promisify(zstdCompress);
const decompress = promisify(zstdDecompress);

export interface PackedBlock {
  readonly raw: number;
  readonly body: Buffer;
  readonly zstd: boolean;
}

/**
 * zstd one block, or keep a copy of it when that is not smaller. The caller may reuse `block` once this resolved
 * (the result never refers to it).
 */
export async function packBlockAsync(block: Buffer, level: number): Promise<PackedBlock> {
  if (block.length === 0) return { raw: 0, body: Buffer.alloc(0), zstd: false };
  const z = await compress(block, {
    // One output chunk per MiB: zstd -1 output is mostly far smaller than the block, and a chunk as large as the
    // block would be allocated (and held until the sealed chunk is uploaded) for every block in flight.
    chunkSize: 1 << 20,
    params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 0 },
  });
  return z.length < block.length
    ? { raw: block.length, body: z, zstd: true }
    : { raw: block.length, body: Buffer.from(block), zstd: false };
}

/** Decompresses one block of `rawLength` bytes (more output is an error, as for the sync call). */
export function unpackAsync(body: Buffer, rawLength: number): Promise<Buffer> {
  const max = Math.max(rawLength, 1);
  return decompress(body, { maxOutputLength: max, chunkSize: Math.max(max, 64 << 10) });
}
