/**
 * How a journal frame travels as Kafka messages. Pure: no I/O.
 *
 * A frame becomes one message, or several when its payload is larger than the chunk size (a journal frame may be
 * 256 MiB; a Kafka message is best kept well under the topic's max.message.bytes). The value is the chunk's bytes;
 * the headers carry the rest, as ASCII text so that `kafka-console-consumer --property print.headers=true`
 * shows them readably:
 *
 *   tm-v       "1"                      format version
 *   tm-source  source name              a receiver refuses messages of another source (a misrouted topic)
 *   tm-lsn     LSN, decimal
 *   tm-eou     "1" | "0"                end of unit (the frame ends a source transaction)
 *   tm-part    "i/n"                    chunk i (0-based) of n; "0/1" for an unsplit frame
 *   tm-crc     CRC-32, decimal          over u64 LSN ‖ u8 flags ‖ u32 i ‖ u32 n (big-endian) ‖ chunk bytes
 *
 * The key is the source name (the partition is chosen explicitly; see shipper.ts). Kafka checks its own record
 * batch CRC on the broker; ours is end to end, from the source journal's bytes to the receiver.
 */
import { crc32 } from 'node:zlib';
import { CorruptionError } from '../../core/errors.ts';
import type { WireFrame } from '../frame.ts';

export const KAFKA_FORMAT_VERSION = '1';
/** Default largest chunk carried by one message: far below Kafka's default max.message.bytes (1 MiB). */
export const DEFAULT_CHUNK_BYTES = 512 << 10;

export type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;

export interface OutgoingMessage {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

/** One decoded message: a chunk of a frame. */
export interface Chunk {
  readonly offset: bigint;
  readonly lsn: bigint;
  readonly endOfUnit: boolean;
  readonly part: number;
  readonly parts: number;
  readonly data: Uint8Array;
}

export function chunkCrc(lsn: bigint, endOfUnit: boolean, part: number, parts: number, data: Uint8Array): number {
  const prefix = new Uint8Array(17);
  const v = new DataView(prefix.buffer);
  v.setBigUint64(0, lsn, false);
  v.setUint8(8, endOfUnit ? 1 : 0);
  v.setUint32(9, part, false);
  v.setUint32(13, parts, false);
  return crc32(data, crc32(prefix));
}

/** The messages for one frame, in order (at least one, even for an empty payload). */
export function encodeFrame(source: string, frame: WireFrame, chunkBytes = DEFAULT_CHUNK_BYTES): OutgoingMessage[] {
  if (!(chunkBytes > 0)) throw new RangeError(`chunkBytes must be positive, got ${chunkBytes}`);
  const p = frame.payload;
  const parts = Math.max(1, Math.ceil(p.length / chunkBytes));
  const out: OutgoingMessage[] = [];
  for (let i = 0; i < parts; i++) {
    const data = p.subarray(i * chunkBytes, Math.min(p.length, (i + 1) * chunkBytes));
    out.push({
      key: source,
      value: Buffer.from(data.buffer, data.byteOffset, data.length),
      headers: {
        'tm-v': KAFKA_FORMAT_VERSION,
        'tm-source': source,
        'tm-lsn': frame.lsn.toString(),
        'tm-eou': frame.endOfUnit ? '1' : '0',
        'tm-part': `${i}/${parts}`,
        'tm-crc': String(chunkCrc(frame.lsn, frame.endOfUnit, i, parts, data)),
      },
    });
  }
  return out;
}

function header(headers: Record<string, HeaderValue> | undefined, name: string, where: string): string {
  const h = headers?.[name];
  const v = Array.isArray(h) ? h[h.length - 1] : h;
  if (v === undefined) throw new CorruptionError(`${where}: header ${name} is missing`, { header: name });
  return typeof v === 'string' ? v : v.toString('latin1');
}

function decimal(s: string, name: string, where: string): bigint {
  if (!/^\d{1,20}$/.test(s)) throw new CorruptionError(`${where}: header ${name} is not a number: "${s}"`);
  return BigInt(s);
}

export interface IncomingMessage {
  offset: string;
  value: Buffer | null;
  headers?: Record<string, HeaderValue>;
}

/**
 * Decodes and checks one message of `source`. Damage, a foreign source or an unknown version is a
 * CorruptionError (never retriable: a message in Kafka does not heal).
 */
export function decodeMessage(m: IncomingMessage, source: string, topic: string): Chunk {
  const where = `kafka topic ${topic} offset ${m.offset}`;
  const version = header(m.headers, 'tm-v', where);
  if (version !== KAFKA_FORMAT_VERSION) {
    throw new CorruptionError(`${where}: message format version "${version}" is unknown (this build reads 1)`);
  }
  const from = header(m.headers, 'tm-source', where);
  if (from !== source) {
    throw new CorruptionError(`${where}: message of source "${from}" in the topic of source "${source}"`);
  }
  const lsn = decimal(header(m.headers, 'tm-lsn', where), 'tm-lsn', where);
  const eou = header(m.headers, 'tm-eou', where);
  if (eou !== '0' && eou !== '1') throw new CorruptionError(`${where}: header tm-eou is "${eou}"`);
  const partText = header(m.headers, 'tm-part', where);
  const pm = /^(\d{1,9})\/(\d{1,9})$/.exec(partText);
  const part = Number(pm?.[1]);
  const parts = Number(pm?.[2]);
  if (!pm || parts < 1 || part >= parts) throw new CorruptionError(`${where}: header tm-part is "${partText}"`);
  const crc = decimal(header(m.headers, 'tm-crc', where), 'tm-crc', where);
  const data: Uint8Array = m.value ?? new Uint8Array(0);
  const endOfUnit = eou === '1';
  const actual = chunkCrc(lsn, endOfUnit, part, parts, data);
  if (BigInt(actual) !== crc) {
    throw new CorruptionError(`${where}: checksum mismatch for LSN ${lsn} part ${partText}`, {
      lsn,
      expected: Number(crc),
      actual,
    });
  }
  return { offset: BigInt(m.offset), lsn, endOfUnit, part, parts, data };
}

/** Joins the chunks of one frame (already checked to be parts 0..n-1 of one LSN). */
export function joinChunks(chunks: readonly Chunk[]): WireFrame {
  const first = chunks[0] as Chunk;
  if (chunks.length === 1) return { lsn: first.lsn, endOfUnit: first.endOfUnit, payload: first.data };
  let n = 0;
  for (const c of chunks) n += c.data.length;
  const payload = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    payload.set(c.data, at);
    at += c.data.length;
  }
  return { lsn: first.lsn, endOfUnit: first.endOfUnit, payload };
}
