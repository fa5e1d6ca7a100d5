/**
 * Byte-level primitives of the entry codec (codec.ts): a growable writer and a bounds-checked reader for
 * varints, strings, bigints and tagged values. Pure: no I/O.
 *
 * Tagged values: 0 null | 1 small int (zigzag varint, fits in [-2^31, 2^31)) | 2 int64 (8 bytes signed) |
 * 3 uint64 (8 bytes unsigned, for values above 2^63-1) | 4 big integer (u8 sign, varint n, n magnitude bytes LE;
 * any size) | 5 float64 (8 bytes, exact bit pattern incl. NaN, -0) | 6 string (str) | 7 bytes (varint n, n bytes).
 * "varint" = unsigned LEB128 of at most 5 bytes, < 2^32; str = varint byteLength + UTF-8 bytes.
 */
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import type { Value } from './record.ts';

const T_NULL = 0;
const T_SMALL = 1;
const T_INT64 = 2;
const T_UINT64 = 3;
const T_BIG = 4;
const T_F64 = 5;
const T_STR = 6;
const T_BYTES = 7;

const MIN_I64 = -(2n ** 63n);
const MAX_I64 = 2n ** 63n - 1n;
const MAX_U64 = 2n ** 64n - 1n;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Node's native latin1 decoding of a byte range (exact for ASCII), usable on any Uint8Array. */
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;
/**
 * Node's native UTF-8 write into a byte range, usable on any Uint8Array: the same bytes as TextEncoder.encodeInto
 * (lone surrogates → U+FFFD) without a subarray view per string; ~4x faster on short strings (issue #15).
 */
const utf8Write = Buffer.prototype.utf8Write as (this: Uint8Array, s: string, offset: number, length: number) => number;

/** A growable output buffer. */
export class ByteWriter {
  buf = new Uint8Array(64 * 1024);
  view = new DataView(this.buf.buffer);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  /** Unsigned LEB128 of a non-negative integer below 2^32. */
  varint(v: number): void {
    this.ensure(5);
    const b = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      b[p++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    b[p++] = v;
    this.pos = p;
  }

  str(s: string): void {
    const n = s.length;
    if (n <= 42) {
      // At most 126 UTF-8 bytes: the length fits one varint byte. The native encoder, not a charCodeAt loop:
      // strings are often concatenations (cons strings), which it reads about twice as fast (measured in the
      // capture process, bench/capture-cpu.ts).
      this.ensure(1 + n * 3);
      const len = utf8Write.call(this.buf, s, this.pos + 1, n * 3);
      this.buf[this.pos] = len;
      this.pos += 1 + len;
      return;
    }
    // Reserve a length field wide enough for the worst case (3 bytes per UTF-16 unit) and write it padded
    // (LEB128 allows continuation bytes with zero payload), so the text is encoded in place without a copy.
    const max = n * 3;
    const width = max < 0x4000 ? 2 : max < 0x200000 ? 3 : max < 0x10000000 ? 4 : 5;
    this.ensure(width + max);
    const start = this.pos + width;
    const len = utf8Write.call(this.buf, s, start, max);
    let v = len;
    for (let k = 0; k < width - 1; k++) {
      this.buf[this.pos + k] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos + width - 1] = v;
    this.pos = start + len;
  }

  bytes(v: Uint8Array): void {
    this.varint(v.length);
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  int(v: bigint): void {
    // Number(v) is exact below 2^53 in magnitude and lands outside [-2^31, 2^31) above it, so the small range is
    // tested on the number (cheaper than BigInt comparisons).
    const n = Number(v);
    if (n >= -2147483648 && n <= 2147483647) {
      this.ensure(6);
      this.buf[this.pos++] = T_SMALL;
      this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
    } else if (v >= MIN_I64 && v <= MAX_I64) {
      this.u8(T_INT64);
      this.ensure(8);
      this.view.setBigInt64(this.pos, v, true);
      this.pos += 8;
    } else if (v > MAX_I64 && v <= MAX_U64) {
      this.u8(T_UINT64);
      this.ensure(8);
      this.view.setBigUint64(this.pos, v, true);
      this.pos += 8;
    } else {
      this.u8(T_BIG);
      this.u8(v < 0n ? 1 : 0);
      let m = v < 0n ? -v : v;
      const mag: number[] = [];
      while (m > 0n) {
        mag.push(Number(m & 0xffn));
        m >>= 8n;
      }
      this.varint(mag.length);
      this.ensure(mag.length);
      this.buf.set(mag, this.pos);
      this.pos += mag.length;
    }
  }

  value(v: Value): void {
    // Most frequent kinds first (text, integers, null); the tag byte is written without a separate bounds check
    // where the following write ensures room for it anyway.
    if (typeof v === 'string') {
      this.ensure(1);
      this.buf[this.pos++] = T_STR;
      this.str(v);
    } else if (typeof v === 'bigint') this.int(v);
    else if (v === null) this.u8(T_NULL);
    else if (typeof v === 'number') {
      this.u8(T_F64);
      this.f64(v);
    } else if (v instanceof Uint8Array) {
      this.u8(T_BYTES);
      this.bytes(v);
    } else {
      throw new TidemarkError(`codec: cannot encode a value of type ${typeof v}`, { code: 'CODEC_VALUE' });
    }
  }
}

/** Reads an encoding; every read checks bounds and throws CorruptionError on anything malformed. */
export class ByteReader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(what: string): never {
    throw new CorruptionError(`entry encoding: ${what} at byte ${this.pos} of ${this.buf.length}`, {
      offset: this.pos,
      length: this.buf.length,
    });
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) this.fail(`truncated ${what} (need ${n} bytes)`);
  }

  u8(what: string): number {
    if (this.pos >= this.buf.length) this.fail(`truncated ${what}`);
    return this.buf[this.pos++] as number;
  }

  varint(what: string): number {
    const b = this.buf;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= b.length) this.fail(`truncated ${what}`);
      const byte = b[this.pos++] as number;
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) {
        if (result > 0xffffffff) this.fail(`${what} out of range`);
        return result;
      }
      mul *= 128;
    }
    return this.fail(`${what} varint longer than 5 bytes`);
  }

  /** A count of items that each take at least `minBytes`; refuses counts the remaining input cannot hold. */
  count(what: string, minBytes: number): number {
    const n = this.varint(what);
    if (n * minBytes > this.buf.length - this.pos) this.fail(`${what} ${n} exceeds the remaining input`);
    return n;
  }

  str(what: string): string {
    const len = this.varint(`${what} length`);
    this.need(len, what);
    const b = this.buf;
    const start = this.pos;
    this.pos += len;
    // ASCII (most text): one copy into a one-byte string, no view and no intermediate strings (issue #15: the
    // char-by-char concatenation was a tenth of what a 100k-row undo allocated).
    const end = start + len;
    let i = start;
    while (i < end && (b[i] as number) < 0x80) i++;
    if (i === end) return latin1Slice.call(b, start, end);
    try {
      return utf8Decoder.decode(b.subarray(start, start + len));
    } catch (err) {
      this.pos = start;
      throw new CorruptionError(`entry encoding: ${what} is not valid UTF-8 at byte ${start}`, { offset: start }, err);
    }
  }

  int(what: string): bigint {
    const tag = this.u8(what);
    return this.intBody(tag, what);
  }

  intBody(tag: number, what: string): bigint {
    switch (tag) {
      case T_SMALL: {
        const z = this.varint(what);
        return BigInt(z % 2 === 0 ? z / 2 : -(z + 1) / 2);
      }
      case T_INT64: {
        this.need(8, what);
        const v = this.view.getBigInt64(this.pos, true);
        this.pos += 8;
        return v;
      }
      case T_UINT64: {
        this.need(8, what);
        const v = this.view.getBigUint64(this.pos, true);
        this.pos += 8;
        return v;
      }
      case T_BIG: {
        const sign = this.u8(what);
        if (sign > 1) this.fail(`${what} has a bad sign byte ${sign}`);
        const n = this.count(`${what} length`, 1);
        let m = 0n;
        for (let i = n - 1; i >= 0; i--) m = (m << 8n) | BigInt(this.buf[this.pos + i] as number);
        this.pos += n;
        return sign ? -m : m;
      }
      default:
        this.pos--;
        return this.fail(`${what}: expected an integer, found tag ${tag}`);
    }
  }

  value(): Value {
    const tag = this.u8('value tag');
    switch (tag) {
      case T_NULL:
        return null;
      case T_STR:
        return this.str('string value');
      case T_F64: {
        this.need(8, 'float value');
        const v = this.view.getFloat64(this.pos, true);
        this.pos += 8;
        return v;
      }
      case T_BYTES: {
        const len = this.varint('bytes length');
        this.need(len, 'bytes value');
        const out = new Uint8Array(len);
        out.set(this.buf.subarray(this.pos, this.pos + len));
        this.pos += len;
        return out;
      }
      default:
        if (tag >= T_SMALL && tag <= T_BIG) return this.intBody(tag, 'integer value');
        this.pos--;
        return this.fail(`unknown value tag ${tag}`);
    }
  }

  /** Moves past one tagged value without decoding it (bounds and tags are checked; text is not UTF-8-checked). */
  skipValue(): void {
    const tag = this.u8('value tag');
    switch (tag) {
      case T_NULL:
        return;
      case T_SMALL:
        this.varint('integer value');
        return;
      case T_INT64:
      case T_UINT64:
      case T_F64:
        this.need(8, 'value');
        this.pos += 8;
        return;
      case T_BIG: {
        this.u8('integer value');
        const n = this.count('integer value length', 1);
        this.pos += n;
        return;
      }
      case T_STR:
      case T_BYTES: {
        const len = this.varint('value length');
        this.need(len, 'value');
        this.pos += len;
        return;
      }
      default:
        this.pos--;
        this.fail(`unknown value tag ${tag}`);
    }
  }

  image(): Value[] {
    const n = this.count('value count', 1);
    const out = new Array<Value>(n);
    for (let i = 0; i < n; i++) out[i] = this.value();
    return out;
  }
}
