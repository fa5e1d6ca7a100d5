import { describe, expect, it } from 'vitest';
import { formatTimeUs, parseTimeArg } from './time.ts';

describe('parseTimeArg', () => {
  it('reads ISO 8601 to the microsecond, UTC by default', () => {
    expect(parseTimeArg('2026-11-22T10:41:59Z')).toBe(BigInt(Date.UTC(2026, 10, 22, 10, 41, 59)) * 1000n);
    expect(parseTimeArg('2026-11-22 10:41:59.123456')).toBe(
      BigInt(Date.UTC(2026, 10, 22, 10, 41, 59)) * 1000n + 123456n,
    );
    expect(parseTimeArg('2026-11-22T10:41:59.5Z')).toBe(BigInt(Date.UTC(2026, 10, 22, 10, 41, 59)) * 1000n + 500000n);
    expect(parseTimeArg('2026-11-22')).toBe(BigInt(Date.UTC(2026, 10, 22)) * 1000n);
  });

  it('applies a zone offset', () => {
    expect(parseTimeArg('2026-11-22T11:41:59+01:00')).toBe(parseTimeArg('2026-11-22T10:41:59Z'));
    expect(parseTimeArg('2026-11-22T09:11:59-0130')).toBe(parseTimeArg('2026-11-22T10:41:59Z'));
  });

  it('takes microseconds since the epoch as they are', () => {
    expect(parseTimeArg('1795338119123456')).toBe(1795338119123456n);
  });

  it('refuses what is not a time, naming the option', () => {
    expect(() => parseTimeArg('yesterday', '--to-time')).toThrow(/--to-time: "yesterday" is not a time/);
    expect(() => parseTimeArg('2026-02-30T00:00:00Z')).toThrow(/not a valid date/);
    expect(() => parseTimeArg('2026-11-22T24:00:00Z')).toThrow(/not a valid date/);
  });

  it('round-trips through formatTimeUs', () => {
    for (const t of ['2026-11-22T10:41:59.000001Z', '1970-01-01T00:00:00.000000Z', '2038-01-19T03:14:08.999999Z']) {
      expect(formatTimeUs(parseTimeArg(t))).toBe(t);
    }
  });
});
