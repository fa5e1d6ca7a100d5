/**
 * The ship wire protocol: messages between a shipper (primary site) and a receiver (standby site). Pure: no I/O.
 *
 * Every message is a 16-byte header followed by a body (little-endian, like the journal's frames):
 *
 *   0  u16 magic        0x4D54 ("TM" on the wire)
 *   2  u8  version      WIRE_VERSION (the framing; HELLO carries the protocol version)
 *   3  u8  type         1 HELLO, 2 WELCOME, 3 FRAMES, 4 ACK, 5 HEARTBEAT, 6 ERROR
 *   4  u32 bodyLength
 *   8  u32 headerCrc    crc32 of bytes 0..8
 *   12 u32 messageCrc   crc32 of bytes 0..8 followed by the body (computed as crc32(body, headerCrc))
 *   16 body
 *
 * The header has its own CRC so that a damaged length is caught as soon as the 16 header bytes are in, instead
 * of waiting for (or buffering up to the limit) a body that will never come. Checksums are CRC-32 (IEEE) from
 * zlib.crc32, native in Node ≥ 22.2, as in the journal; CRC-32C would need a JavaScript table implementation.
 * Either detects every single-bit error and every burst up to 32 bits.
 *
 * Bodies (str = u16 byte length + UTF-8; u64 values are bigint LSNs or milliseconds since the epoch):
 *
 *   HELLO      shipper → receiver   u16 protocolVersion, str source, str site, str journalId, u16 count,
 *                                   count × (u32 epoch, u64 toLsn): the source journal's truncation events,
 *                                   then, for a promoted mirror's journal only, its branch (protocol-hello.ts)
 *   WELCOME    receiver → shipper   u8 accepted (1/0), u64 durableLsn (0 when refused), str reason ('' if accepted)
 *   FRAMES     shipper → receiver   u32 count ≥ 1, then count × (u64 lsn, u8 flags (bit 0 END_OF_UNIT), u32 length,
 *                                   payload); the LSNs are consecutive
 *   ACK        receiver → shipper   u64 lsn: every frame up to it is durable at the receiver
 *   HEARTBEAT  both ways            u64 sentAtMs
 *   ERROR      both ways            str code, str message (the sender closes the connection after it)
 *
 * Damage (wrong magic, a CRC mismatch) is a CorruptionError naming the stream offset of the message; a message
 * whose checksums hold but whose content breaks the rules (unknown type, bad body, too large) is a TidemarkError
 * with code PROTOCOL. Either way the decoder has failed: it never returns data after it.
 */
import { crc32 } from 'node:zlib';
import { CorruptionError } from '../../core/errors.ts';
import type { WireFrame } from '../frame.ts';
import { BodyReader, BodyWriter, checkU64, protocolError, strBytes } from './protocol-bytes.ts';
import { type HelloMessage, readHello, writeHello } from './protocol-hello.ts';

export { type HelloMessage, MAX_HELLO_TRUNCATIONS } from './protocol-hello.ts';

export const WIRE_MAGIC = 0x4d54;
export const WIRE_VERSION = 1;
/** Protocol version a HELLO carries; a receiver refuses versions it does not speak. 2: truncations in HELLO. */
export const PROTOCOL_VERSION = 2;
export const MESSAGE_HEADER_BYTES = 16;
/** Default bound on a message body: one journal frame may hold up to 256 MiB (journal/ MAX_PAYLOAD). */
export const DEFAULT_MAX_BODY_BYTES = (256 << 20) + (64 << 10);
/** Bytes a FRAMES body spends per frame besides its payload. */
export const FRAME_OVERHEAD = 13;

export const MESSAGE_TYPES = { hello: 1, welcome: 2, frames: 3, ack: 4, heartbeat: 5, error: 6, blob: 7 } as const;
export type MessageType = keyof typeof MESSAGE_TYPES;
const TYPE_NAMES = new Map<number, MessageType>(
  Object.entries(MESSAGE_TYPES).map(([k, v]) => [v, k as MessageType] as const),
);

/** durableLsn null = refused, with the reason. */
export type WelcomeMessage =
  | { readonly type: 'welcome'; readonly durableLsn: bigint; readonly reason?: undefined }
  | { readonly type: 'welcome'; readonly durableLsn: null; readonly reason: string };

export interface FramesMessage {
  readonly type: 'frames';
  readonly frames: readonly WireFrame[];
}

export interface AckMessage {
  readonly type: 'ack';
  readonly lsn: bigint;
}

export interface HeartbeatMessage {
  readonly type: 'heartbeat';
  readonly sentAtMs: number;
}

export interface ErrorMessage {
  readonly type: 'error';
  /** AUTH, REFUSED, CORRUPT, PROTOCOL, INTERNAL… (see README.md beside this file for how each is handled). */
  readonly code: string;
  readonly message: string;
}

/**
 * A head (UTF-8 text, JSON by convention, ≤ 64 KiB) and opaque bytes: not part of the journal link. Other
 * services that ride the same mutual-TLS connections use it (the remote-site backup store, backup/store/site.ts).
 */
export interface BlobMessage {
  readonly type: 'blob';
  readonly head: string;
  readonly data: Uint8Array;
}

export type Message =
  | HelloMessage
  | WelcomeMessage
  | FramesMessage
  | AckMessage
  | HeartbeatMessage
  | ErrorMessage
  | BlobMessage;

// ---------------------------------------------------------------------------------------------------- encoding

/** Body size of a FRAMES message holding `frames`. */
export function framesBodyBytes(frames: readonly WireFrame[]): number {
  let n = 4;
  for (const f of frames) n += FRAME_OVERHEAD + f.payload.length;
  return n;
}

/** Encodes one message, header included, into a new buffer. */
export function encodeMessage(msg: Message): Uint8Array {
  let w: BodyWriter;
  switch (msg.type) {
    case 'hello':
      w = writeHello(msg, MESSAGE_HEADER_BYTES);
      break;
    case 'welcome': {
      const reason = strBytes(msg.durableLsn === null ? msg.reason : '', 'reason');
      w = new BodyWriter(MESSAGE_HEADER_BYTES, 1 + 8 + 2 + reason.length);
      w.u8(msg.durableLsn === null ? 0 : 1);
      w.u64(msg.durableLsn === null ? 0n : checkU64(msg.durableLsn, 'durableLsn'));
      w.str(reason);
      break;
    }
    case 'frames': {
      if (msg.frames.length === 0) throw new RangeError('ship protocol: a FRAMES message needs at least one frame');
      w = new BodyWriter(MESSAGE_HEADER_BYTES, framesBodyBytes(msg.frames));
      w.u32(msg.frames.length);
      let prev: bigint | null = null;
      for (const f of msg.frames) {
        if (f.lsn < 1n || (prev !== null && f.lsn !== prev + 1n)) {
          throw new RangeError(`ship protocol: FRAMES LSNs must be consecutive and ≥ 1 (got ${f.lsn} after ${prev})`);
        }
        prev = f.lsn;
        w.u64(checkU64(f.lsn, 'lsn'));
        w.u8(f.endOfUnit ? 1 : 0);
        w.u32(f.payload.length);
        w.raw(f.payload);
      }
      break;
    }
    case 'ack':
      w = new BodyWriter(MESSAGE_HEADER_BYTES, 8);
      w.u64(checkU64(msg.lsn, 'lsn'));
      break;
    case 'heartbeat':
      w = new BodyWriter(MESSAGE_HEADER_BYTES, 8);
      w.u64(checkU64(BigInt(Math.max(0, Math.floor(msg.sentAtMs))), 'sentAtMs'));
      break;
    case 'blob': {
      const head = strBytes(msg.head, 'head');
      w = new BodyWriter(MESSAGE_HEADER_BYTES, 2 + head.length + msg.data.length);
      w.str(head);
      w.raw(msg.data);
      break;
    }
    case 'error': {
      const [code, text] = [strBytes(msg.code, 'code'), strBytes(msg.message, 'message')];
      w = new BodyWriter(MESSAGE_HEADER_BYTES, 4 + code.length + text.length);
      w.str(code);
      w.str(text);
      break;
    }
  }
  const out = w.bytes;
  const v = new DataView(out.buffer);
  v.setUint16(0, WIRE_MAGIC, true);
  v.setUint8(2, WIRE_VERSION);
  v.setUint8(3, MESSAGE_TYPES[msg.type]);
  v.setUint32(4, out.length - MESSAGE_HEADER_BYTES, true);
  const hcrc = crc32(out.subarray(0, 8));
  v.setUint32(8, hcrc, true);
  v.setUint32(12, crc32(out.subarray(MESSAGE_HEADER_BYTES), hcrc), true);
  return out;
}

// ---------------------------------------------------------------------------------------------------- decoding

function decodeBody(type: MessageType, body: Uint8Array, offset: number): Message {
  const r = new BodyReader(body, offset);
  let msg: Message;
  switch (type) {
    case 'hello':
      msg = readHello(r, offset);
      break;
    case 'welcome': {
      const accepted = r.u8('accepted');
      const lsn = r.u64('durableLsn');
      const reason = r.str('reason');
      if (accepted > 1) throw protocolError(`WELCOME accepted flag ${accepted} is not 0 or 1`, offset);
      msg = accepted === 1 ? { type, durableLsn: lsn } : { type, durableLsn: null, reason };
      break;
    }
    case 'frames': {
      const count = r.u32('frame count');
      if (count === 0) throw protocolError('FRAMES message without frames', offset);
      if (count > (body.length - 4) / FRAME_OVERHEAD) throw protocolError(`FRAMES count ${count} is too large`, offset);
      const frames: WireFrame[] = new Array(count);
      let prev = 0n;
      for (let i = 0; i < count; i++) {
        const lsn = r.u64('frame LSN');
        const flags = r.u8('frame flags');
        const length = r.u32('frame length');
        if (flags > 1) throw protocolError(`frame LSN ${lsn} has unknown flags ${flags}`, offset);
        if (lsn === 0n || (i > 0 && lsn !== prev + 1n)) {
          throw protocolError(`frame LSN ${lsn} does not follow ${prev} in one FRAMES message`, offset);
        }
        frames[i] = { lsn, endOfUnit: flags === 1, payload: r.raw(length, `payload of frame LSN ${lsn}`) };
        prev = lsn;
      }
      msg = { type, frames };
      break;
    }
    case 'ack':
      msg = { type, lsn: r.u64('lsn') };
      break;
    case 'heartbeat':
      msg = { type, sentAtMs: Number(r.u64('sentAtMs')) };
      break;
    case 'error':
      msg = { type, code: r.str('code'), message: r.str('message') };
      break;
    case 'blob': {
      const head = r.str('head');
      msg = { type, head, data: r.raw(r.left, 'blob data') };
      break;
    }
  }
  r.end(type);
  return msg;
}

export interface MessageDecoderOptions {
  /** Largest body accepted; a larger declared length is a PROTOCOL error. Default DEFAULT_MAX_BODY_BYTES. */
  maxBodyBytes?: number;
  /** Stream offset of the first byte pushed (for error messages). Default 0. */
  startOffset?: number;
}

/**
 * Incremental decoder: push() the bytes of a stream as they arrive, split anywhere, and take complete messages
 * with next(). next() throws at the first damaged or malformed message (messages before it are returned
 * first); after that the decoder stays failed. Memory: the buffered bytes of at most one message (bounded by
 * maxBodyBytes) plus whatever complete messages were pushed and not yet taken.
 */
export class MessageDecoder {
  private readonly maxBody: number;
  private chunks: Uint8Array[] = [];
  /** Read position inside chunks[0]. */
  private head = 0;
  private buffered = 0;
  /** Stream offset of the next message's first byte. */
  private at: number;
  /** Header of the message being assembled, once its 16 bytes were checked. */
  private header: { type: MessageType; length: number; hcrc: number; mcrc: number } | null = null;
  private failure: Error | null = null;

  constructor(opts: MessageDecoderOptions = {}) {
    this.maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.at = opts.startOffset ?? 0;
  }

  /** Stream offset just past the last message returned by next(). */
  get offset(): number {
    return this.at;
  }

  /** Bytes pushed and not yet returned as messages. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete message, or null until more bytes arrive. */
  next(): Message | null {
    if (this.failure) throw this.failure;
    try {
      return this.step();
    } catch (err) {
      this.failure = err as Error;
      this.chunks = [];
      this.buffered = 0;
      throw err;
    }
  }

  private step(): Message | null {
    if (!this.header) {
      if (this.buffered < MESSAGE_HEADER_BYTES) return null;
      this.header = this.checkHeader(this.peek(MESSAGE_HEADER_BYTES));
    }
    const h = this.header;
    if (this.buffered < MESSAGE_HEADER_BYTES + h.length) return null;
    const offset = this.at;
    this.take(MESSAGE_HEADER_BYTES);
    const body = this.take(h.length);
    if (crc32(body, h.hcrc) !== h.mcrc) {
      throw new CorruptionError(
        `ship stream: ${h.type.toUpperCase()} message at byte offset ${offset} (${h.length}-byte body) failed its CRC check`,
        { offset, type: h.type, bodyLength: h.length },
      );
    }
    this.header = null;
    this.at = offset + MESSAGE_HEADER_BYTES + h.length;
    return decodeBody(h.type, body, offset);
  }

  private checkHeader(b: Uint8Array): { type: MessageType; length: number; hcrc: number; mcrc: number } {
    const v = new DataView(b.buffer, b.byteOffset, MESSAGE_HEADER_BYTES);
    const offset = this.at;
    const magic = v.getUint16(0, true);
    if (magic !== WIRE_MAGIC) {
      throw new CorruptionError(
        `ship stream: bad magic 0x${magic.toString(16).padStart(4, '0')} at byte offset ${offset} ` +
          '(damaged, or the peer does not speak the tidemark ship protocol)',
        { offset },
      );
    }
    const hcrc = v.getUint32(8, true);
    if (crc32(b.subarray(0, 8)) !== hcrc) {
      throw new CorruptionError(`ship stream: message header at byte offset ${offset} failed its CRC check`, {
        offset,
      });
    }
    const version = v.getUint8(2);
    if (version !== WIRE_VERSION) {
      throw protocolError(`wire version ${version} is not supported (this side speaks ${WIRE_VERSION})`, offset);
    }
    const code = v.getUint8(3);
    const type = TYPE_NAMES.get(code);
    if (type === undefined) throw protocolError(`unknown message type ${code}`, offset);
    const length = v.getUint32(4, true);
    if (length > this.maxBody) {
      throw protocolError(`${type.toUpperCase()} body of ${length} bytes exceeds the limit of ${this.maxBody}`, offset);
    }
    return { type, length, hcrc, mcrc: v.getUint32(12, true) };
  }

  /** The first n buffered bytes (n ≤ buffered), without consuming them. */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = new Uint8Array(n);
    let got = 0;
    let pos = this.head;
    for (const c of this.chunks) {
      const part = c.subarray(pos, Math.min(c.length, pos + n - got));
      out.set(part, got);
      got += part.length;
      pos = 0;
      if (got === n) break;
    }
    return out;
  }

  /** Consumes and returns the first n buffered bytes (a view when they lie in one chunk, else a copy). */
  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const out = this.peek(n);
    let left = n;
    while (left > 0) {
      const c = this.chunks[0] as Uint8Array;
      const avail = c.length - this.head;
      if (avail > left) {
        this.head += left;
        left = 0;
      } else {
        left -= avail;
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.buffered -= n;
    return out;
  }
}
