import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../../core/errors.ts';
import type { WireFrame } from '../frame.ts';
import { decodeMessage, encodeFrame, type IncomingMessage, joinChunks, type OutgoingMessage } from './codec.ts';

const frame = (lsn: bigint, size: number, endOfUnit = false): WireFrame => ({
  lsn,
  endOfUnit,
  payload: Uint8Array.from({ length: size }, (_, i) => (i * 7 + Number(lsn)) & 0xff),
});

const incoming = (m: OutgoingMessage, offset: number): IncomingMessage => ({
  offset: String(offset),
  value: m.value,
  headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)])),
});

describe('kafka message codec', () => {
  it('round-trips frames of every size class, splitting at the chunk size', () => {
    for (const [size, parts] of [
      [0, 1],
      [1, 1],
      [100, 1],
      [101, 2],
      [250, 3],
      [300, 3],
    ] as const) {
      const f = frame(12_345_678_901n, size, size % 2 === 0);
      const msgs = encodeFrame('orders', f, 100);
      expect(msgs).toHaveLength(parts);
      const chunks = msgs.map((m, i) => decodeMessage(incoming(m, 40 + i), 'orders', 't'));
      expect(chunks.map((c) => `${c.part}/${c.parts}`)).toEqual(msgs.map((_, i) => `${i}/${parts}`));
      expect(chunks[0]?.offset).toBe(40n);
      const back = joinChunks(chunks);
      expect(back.lsn).toBe(f.lsn);
      expect(back.endOfUnit).toBe(f.endOfUnit);
      expect(Buffer.compare(back.payload, f.payload)).toBe(0);
    }
  });

  it('writes readable headers and keys by source', () => {
    const [m] = encodeFrame('orders', frame(7n, 3, true));
    expect(m?.key).toBe('orders');
    expect(m?.headers).toMatchObject({
      'tm-v': '1',
      'tm-source': 'orders',
      'tm-lsn': '7',
      'tm-eou': '1',
      'tm-part': '0/1',
    });
    expect(m?.headers['tm-crc']).toMatch(/^\d+$/);
  });

  it('accepts string headers and a null value for an empty payload', () => {
    const [m] = encodeFrame('s', frame(1n, 0, true));
    const c = decodeMessage({ offset: '0', value: null, headers: { ...(m as OutgoingMessage).headers } }, 's', 't');
    expect(c.data.length).toBe(0);
  });

  it('detects any flipped bit in the value or a changed header, naming the offset', () => {
    const [m] = encodeFrame('s', frame(99n, 40));
    const good = incoming(m as OutgoingMessage, 5);
    for (let i = 0; i < 40 * 8; i++) {
      const v = Buffer.from(good.value as Buffer);
      v[i >> 3] = (v[i >> 3] as number) ^ (1 << (i & 7));
      expect(() => decodeMessage({ ...good, value: v }, 's', 't')).toThrow(/offset 5: checksum mismatch for LSN 99/);
    }
    const changes: Record<string, string> = { 'tm-lsn': '98', 'tm-eou': '1', 'tm-part': '0/2' };
    for (const [k, v] of Object.entries(changes)) {
      expect(() => decodeMessage({ ...good, headers: { ...good.headers, [k]: v } }, 's', 't')).toThrow(CorruptionError);
    }
  });

  it('refuses missing or malformed headers, another source and another version', () => {
    const [m] = encodeFrame('s', frame(3n, 4));
    const good = incoming(m as OutgoingMessage, 0);
    const without = (k: string) => {
      const h = { ...good.headers };
      delete h[k];
      return { ...good, headers: h };
    };
    expect(() => decodeMessage(without('tm-lsn'), 's', 't')).toThrow(/header tm-lsn is missing/);
    expect(() => decodeMessage({ ...good, headers: undefined }, 's', 't')).toThrow(/tm-v is missing/);
    expect(() => decodeMessage({ ...good, headers: { ...good.headers, 'tm-lsn': '-1' } }, 's', 't')).toThrow(
      /not a number/,
    );
    expect(() => decodeMessage({ ...good, headers: { ...good.headers, 'tm-part': '2/2' } }, 's', 't')).toThrow(
      /tm-part is "2\/2"/,
    );
    expect(() => decodeMessage({ ...good, headers: { ...good.headers, 'tm-eou': 'yes' } }, 's', 't')).toThrow(/tm-eou/);
    expect(() => decodeMessage(good, 'other', 't')).toThrow(/source "s" in the topic of source "other"/);
    expect(() => decodeMessage({ ...good, headers: { ...good.headers, 'tm-v': '2' } }, 's', 't')).toThrow(
      /version "2" is unknown/,
    );
  });
});
