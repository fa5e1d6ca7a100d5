/**
 * Byte-level helpers of the ship protocol (protocol.ts): a body writer and a bounds-checked body reader.
 * Pure: no I/O. Integers are little-endian; str = u16 byte length + UTF-8.
 */
import { TidemarkError } from '../../core/errors.ts';

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export function protocolError(message: string, offset: number): TidemarkError {
  return new TidemarkError(`ship stream: ${message} (message at byte offset ${offset})`, {
    code: 'PROTOCOL',
    context: { offset },
  });
}

export function strBytes(s: string, what: string): Uint8Array {
  const b = utf8.encode(s);
  if (b.length > 0xffff) throw new RangeError(`ship protocol: ${what} is ${b.length} bytes, more than 65535`);
  return b;
}

export function checkU64(v: bigint, what: string): bigint {
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`ship protocol: ${what} ${v} is not a u64`);
  return v;
}

export class BodyWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private at: number;

  /** `headerBytes` are left free at the start for the caller's header. */
  constructor(headerBytes: number, bodyLength: number) {
    this.bytes = new Uint8Array(headerBytes + bodyLength);
    this.view = new DataView(this.bytes.buffer);
    this.at = headerBytes;
  }
  u8(v: number): void {
    this.view.setUint8(this.at, v);
    this.at += 1;
  }
  u16(v: number): void {
    this.view.setUint16(this.at, v, true);
    this.at += 2;
  }
  u32(v: number): void {
    this.view.setUint32(this.at, v, true);
    this.at += 4;
  }
  u64(v: bigint): void {
    this.view.setBigUint64(this.at, v, true);
    this.at += 8;
  }
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.at);
    this.at += b.length;
  }
  str(b: Uint8Array): void {
    this.u16(b.length);
    this.raw(b);
  }
}

export class BodyReader {
  private readonly view: DataView;
  private at = 0;
  private readonly body: Uint8Array;
  private readonly offset: number;

  constructor(body: Uint8Array, offset: number) {
    this.body = body;
    this.view = new DataView(body.buffer, body.byteOffset, body.length);
    this.offset = offset;
  }
  /** Bytes not read yet. */
  get left(): number {
    return this.body.length - this.at;
  }
  private need(n: number, what: string): void {
    if (this.at + n > this.body.length) throw protocolError(`body ends inside ${what}`, this.offset);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.at++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.at, true);
    this.at += 8;
    return v;
  }
  raw(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.body.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
  str(what: string): string {
    const b = this.raw(this.u16(what), what);
    try {
      return utf8Strict.decode(b);
    } catch {
      throw protocolError(`${what} is not valid UTF-8`, this.offset);
    }
  }
  end(type: string): void {
    if (this.at !== this.body.length) {
      throw protocolError(`${this.body.length - this.at} unexpected bytes after the ${type} body`, this.offset);
    }
  }
}
