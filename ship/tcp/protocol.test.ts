import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CorruptionError, TidemarkError } from '../../core/errors.ts';
import { prng } from '../../test/fixtures/prng.ts';
import type { WireFrame } from '../frame.ts';
import { concat, decodeAll, decodeUntilError } from '../../test/fixtures/wire.ts';
import {
  encodeMessage,
  type FramesMessage,
  framesBodyBytes,
  MESSAGE_HEADER_BYTES,
  type Message,
  MessageDecoder,
  PROTOCOL_VERSION,
} from './protocol.ts';

function payloadOf(n: number, seed: number): Uint8Array {
  const p = new Uint8Array(n);
  for (let i = 0; i < n; i++) p[i] = (i * 131 + seed * 7) & 0xff;
  return p;
}

/** One message of every type, and a FRAMES message with assorted payload sizes (including empty). */
function sampleMessages(): Message[] {
  const frames: WireFrame[] = [0, 3, 70, 1].map((n, i) => ({
    lsn: 41n + BigInt(i),
    endOfUnit: i === 1 || i === 3,
    payload: payloadOf(n, i),
  }));
  return [
    {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      source: 'orders',
      site: 'dc1',
      journalId: 'j-ü-1',
      truncations: [],
    },
    { type: 'welcome', durableLsn: 40n },
    { type: 'welcome', durableLsn: null, reason: 'journal identity changed' },
    { type: 'frames', frames },
    { type: 'ack', lsn: 44n },
    { type: 'heartbeat', sentAtMs: 1_700_000_000_123 },
    { type: 'error', code: 'CORRUPT', message: 'bad CRC at 12' },
    { type: 'ack', lsn: 0xffffffffffffffffn },
    { type: 'blob', head: '{"op":"put","key":"ü/piece-000001"}', data: payloadOf(70, 5) },
    { type: 'blob', head: '', data: new Uint8Array(0) },
    {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      source: 'orders',
      site: 'dc1',
      journalId: 'j2',
      truncations: [
        { epoch: 1, toLsn: 17n },
        { epoch: 2, toLsn: 0xffffffffffffffffn },
      ],
    },
    {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      source: 'orders',
      site: 'dr1',
      journalId: 'j3',
      truncations: [{ epoch: 3, toLsn: 9n }],
      branch: { of: 'j2-ü', atLsn: 0xfffffffffffffffen, epoch: 3 },
    },
  ];
}

describe('ship protocol codec', () => {
  it('round-trips every message type', () => {
    const msgs = sampleMessages();
    expect(decodeAll(msgs.map(encodeMessage))).toEqual(msgs);
  });

  it('lays out the header as documented', () => {
    const b = encodeMessage({ type: 'ack', lsn: 7n });
    const v = new DataView(b.buffer);
    expect(b.length).toBe(MESSAGE_HEADER_BYTES + 8);
    expect([b[0], b[1]]).toEqual([0x54, 0x4d]);
    expect(v.getUint8(2)).toBe(1);
    expect(v.getUint8(3)).toBe(4);
    expect(v.getUint32(4, true)).toBe(8);
    expect(v.getUint32(8, true)).toBe(crc32(b.subarray(0, 8)));
    expect(v.getUint32(12, true)).toBe(crc32(concat([b.subarray(0, 8), b.subarray(16)])));
    expect(v.getBigUint64(16, true)).toBe(7n);
  });

  it('decodes a version 1 HELLO (without truncations) with an empty list, for the receiver to refuse by version', () => {
    const full = encodeMessage({
      type: 'hello',
      protocolVersion: 1,
      source: 's',
      site: 'dc1',
      journalId: 'j',
      truncations: [],
    });
    // A version 1 body ends after journalId: drop the u16 count and fix the length and CRCs.
    const v1 = full.slice(0, full.length - 2);
    const v = new DataView(v1.buffer);
    v.setUint32(4, v1.length - MESSAGE_HEADER_BYTES, true);
    const hcrc = crc32(v1.subarray(0, 8));
    v.setUint32(8, hcrc, true);
    v.setUint32(12, crc32(v1.subarray(MESSAGE_HEADER_BYTES), hcrc), true);
    expect(decodeAll([v1])).toEqual([
      { type: 'hello', protocolVersion: 1, source: 's', site: 'dc1', journalId: 'j', truncations: [] },
    ]);
  });

  it('sizes FRAMES bodies with framesBodyBytes', () => {
    const frames = (sampleMessages()[3] as FramesMessage).frames;
    expect(encodeMessage({ type: 'frames', frames }).length).toBe(MESSAGE_HEADER_BYTES + framesBodyBytes(frames));
  });

  it('refuses to encode what it could not decode', () => {
    const p = new Uint8Array(0);
    expect(() => encodeMessage({ type: 'frames', frames: [] })).toThrow(RangeError);
    expect(() =>
      encodeMessage({
        type: 'frames',
        frames: [
          { lsn: 1n, endOfUnit: false, payload: p },
          { lsn: 3n, endOfUnit: true, payload: p },
        ],
      }),
    ).toThrow(/consecutive/);
    expect(() => encodeMessage({ type: 'ack', lsn: -1n })).toThrow(RangeError);
    expect(() => encodeMessage({ type: 'error', code: 'X', message: 'x'.repeat(70_000) })).toThrow(/65535/);
  });
});

describe('ship protocol decoder: splits', () => {
  const stream = concat(sampleMessages().map(encodeMessage));

  it('gives the same messages for every split into two chunks', () => {
    const want = sampleMessages();
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(decodeAll([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(want);
    }
  });

  it('gives the same messages for every split into three chunks', () => {
    const want = sampleMessages();
    for (let a = 0; a <= stream.length; a += 3) {
      for (let b = a; b <= stream.length; b += 5) {
        expect(decodeAll([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)])).toEqual(want);
      }
    }
  });

  it('decodes a byte at a time, and random chunkings', () => {
    const want = sampleMessages();
    expect(decodeAll(Array.from(stream, (_, i) => stream.subarray(i, i + 1)))).toEqual(want);
    const rnd = prng(7);
    for (let round = 0; round < 200; round++) {
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < stream.length; ) {
        const n = Math.min(stream.length - at, 1 + Math.floor(rnd() * 60));
        chunks.push(stream.subarray(at, at + n));
        at += n;
      }
      expect(decodeAll(chunks)).toEqual(want);
    }
  });

  it('returns nothing for an incomplete message and tracks offsets', () => {
    const d = new MessageDecoder({ startOffset: 1000 });
    const one = encodeMessage({ type: 'heartbeat', sentAtMs: 5 });
    d.push(one.subarray(0, one.length - 1));
    expect(d.next()).toBeNull();
    expect(d.pendingBytes).toBe(one.length - 1);
    d.push(one.subarray(one.length - 1));
    expect(d.next()).toEqual({ type: 'heartbeat', sentAtMs: 5 });
    expect(d.offset).toBe(1000 + one.length);
  });
});

describe('ship protocol decoder: damage', () => {
  const msgs = sampleMessages();
  const encoded = msgs.map(encodeMessage);
  const stream = concat(encoded);
  const starts: number[] = [];
  encoded.reduce((at, e) => {
    starts.push(at);
    return at + e.length;
  }, 0);

  it('detects a flipped bit in every position of the stream, naming the damaged message offset', () => {
    for (let i = 0; i < stream.length; i++) {
      // Index of the message that holds byte i.
      const k = starts.findLastIndex((s) => s <= i);
      for (let bit = 0; bit < 8; bit++) {
        const bad = stream.slice();
        bad[i] = (bad[i] as number) ^ (1 << bit);
        const { messages, error } = decodeUntilError(bad);
        expect(error, `bit ${bit} of byte ${i}`).toBeInstanceOf(CorruptionError);
        expect((error as CorruptionError).context.offset).toBe(starts[k]);
        expect((error as Error).message).toContain(`byte offset ${starts[k]}`);
        // Messages before the damaged one are delivered intact; nothing at or after it.
        expect(messages).toEqual(msgs.slice(0, k));
      }
    }
  });

  it('detects a flipped bit whatever the chunking (the length field is checked before the body is awaited)', () => {
    const lengthByte = starts[3] as number; // FRAMES header
    const bad = stream.slice();
    bad[lengthByte + 6] = (bad[lengthByte + 6] as number) ^ 0x10; // length grows by 1 MiB
    const d = new MessageDecoder();
    const got: Message[] = [];
    let error: unknown = null;
    // Only the header of the damaged message is pushed: the damage is reported without waiting for the body.
    try {
      d.push(bad.subarray(0, lengthByte + MESSAGE_HEADER_BYTES));
      for (let m = d.next(); m; m = d.next()) got.push(m);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CorruptionError);
    expect(got).toEqual(msgs.slice(0, 3));
  });

  it('stays failed after an error', () => {
    const bad = stream.slice();
    bad[20] = (bad[20] as number) ^ 1;
    const d = new MessageDecoder();
    d.push(bad);
    expect(() => d.next()).toThrow(CorruptionError);
    expect(() => d.next()).toThrow(CorruptionError);
    expect(() => d.push(encodeMessage({ type: 'ack', lsn: 1n }))).toThrow(CorruptionError);
  });

  it('names a stream that is not the ship protocol', () => {
    const d = new MessageDecoder();
    d.push(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(() => d.next()).toThrow(/bad magic 0x4547 at byte offset 0/);
  });
});

describe('ship protocol decoder: rules', () => {
  /** A message with valid checksums around an arbitrary type and body. */
  function forge(type: number, body: Uint8Array, version = 1): Uint8Array {
    const out = new Uint8Array(MESSAGE_HEADER_BYTES + body.length);
    out.set(body, MESSAGE_HEADER_BYTES);
    const v = new DataView(out.buffer);
    v.setUint16(0, 0x4d54, true);
    v.setUint8(2, version);
    v.setUint8(3, type);
    v.setUint32(4, body.length, true);
    const h = crc32(out.subarray(0, 8));
    v.setUint32(8, h, true);
    v.setUint32(12, crc32(body, h), true);
    return out;
  }

  function protocolError(bytes: Uint8Array, opts = {}): string {
    const d = new MessageDecoder(opts);
    d.push(bytes);
    try {
      d.next();
    } catch (err) {
      expect(err).toBeInstanceOf(TidemarkError);
      expect(err).not.toBeInstanceOf(CorruptionError);
      expect((err as TidemarkError).code).toBe('PROTOCOL');
      return (err as Error).message;
    }
    throw new Error('expected a PROTOCOL error');
  }

  function framesBody(entries: [bigint, number, number][]): Uint8Array {
    const b = new Uint8Array(4 + entries.reduce((n, [, , len]) => n + 13 + len, 0));
    const v = new DataView(b.buffer);
    v.setUint32(0, entries.length, true);
    let at = 4;
    for (const [lsn, flags, len] of entries) {
      v.setBigUint64(at, lsn, true);
      v.setUint8(at + 8, flags);
      v.setUint32(at + 9, len, true);
      at += 13 + len;
    }
    return b;
  }

  it('bounds the message size before buffering the body', () => {
    const big = encodeMessage({ type: 'error', code: 'X', message: 'y'.repeat(200) });
    expect(protocolError(big.subarray(0, MESSAGE_HEADER_BYTES), { maxBodyBytes: 100 })).toMatch(
      /ERROR body of 205 bytes exceeds the limit of 100/,
    );
  });

  it('refuses unknown types and versions', () => {
    expect(protocolError(forge(9, new Uint8Array(0)))).toMatch(/unknown message type 9/);
    expect(protocolError(forge(4, new Uint8Array(8), 2))).toMatch(/wire version 2 is not supported/);
  });

  it('refuses malformed bodies', () => {
    expect(protocolError(forge(4, new Uint8Array(7)))).toMatch(/body ends inside lsn/);
    expect(protocolError(forge(4, new Uint8Array(9)))).toMatch(/1 unexpected bytes after the ack body/);
    expect(protocolError(forge(3, framesBody([])))).toMatch(/FRAMES message without frames/);
    expect(protocolError(forge(3, framesBody([[5n, 2, 0]])))).toMatch(/unknown flags 2/);
    expect(protocolError(forge(3, framesBody([[0n, 0, 0]])))).toMatch(/frame LSN 0 does not follow/);
    expect(
      protocolError(
        forge(
          3,
          framesBody([
            [5n, 0, 1],
            [7n, 1, 0],
          ]),
        ),
      ),
    ).toMatch(/frame LSN 7 does not follow 5/);
    const lying = framesBody([[5n, 0, 0]]);
    new DataView(lying.buffer).setUint32(13, 10, true);
    expect(protocolError(forge(3, lying))).toMatch(/body ends inside payload of frame LSN 5/);
    const huge = framesBody([[5n, 0, 0]]);
    new DataView(huge.buffer).setUint32(0, 1_000_000, true);
    expect(protocolError(forge(3, huge))).toMatch(/count 1000000 is too large/);
    expect(protocolError(forge(2, new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])))).toMatch(/accepted flag 2/);
    expect(protocolError(forge(6, new Uint8Array([1, 0, 0xff, 0, 0])))).toMatch(/code is not valid UTF-8/);
  });
});
