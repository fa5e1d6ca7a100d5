import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from './lsn.ts';

describe('LSN text', () => {
  it('round-trips the pg_lsn text form exactly, above 2^53 too', () => {
    for (const [text, value] of [
      ['0/0', 0n],
      ['16/B374D848', 0x16b374d848n],
      ['FFFFFFFF/FFFFFFFF', (1n << 64n) - 1n],
      ['1/0', 1n << 32n],
    ] as const) {
      expect(parseLsn(text)).toBe(value);
      expect(formatLsn(value)).toBe(text);
    }
    expect(parseLsn('0/00a')).toBe(10n);
  });

  it('refuses what is not an LSN', () => {
    for (const bad of ['', '16B374D848', '1/2/3', 'G/0', '123456789/0']) {
      expect(() => parseLsn(bad)).toThrow(/not a PostgreSQL LSN/);
    }
    expect(() => formatLsn(-1n)).toThrow(RangeError);
  });
});
