import { describe, expect, it } from 'vitest';
import type { Chunk } from './codec.ts';
import { resumeLsn, resumeUnitLsn, startOffset } from './resume.ts';

const last = (offset: bigint, lsn: bigint, part = 0, parts = 1): Chunk => ({
  offset,
  lsn,
  endOfUnit: true,
  part,
  parts,
  data: new Uint8Array(0),
});

describe('resumeLsn (shipper)', () => {
  it('an empty partition starts at firstLsn', () => {
    expect(resumeLsn({ low: 0n, high: 0n }, null, 1n, 't')).toBe(1n);
    expect(resumeLsn({ low: 0n, high: 0n }, null, 500n, 't')).toBe(500n);
  });

  it('continues after the last complete frame', () => {
    expect(resumeLsn({ low: 0n, high: 10n }, last(9n, 42n), 1n, 't')).toBe(43n);
    expect(resumeLsn({ low: 3n, high: 10n }, last(9n, 42n, 2, 3), 1n, 't')).toBe(43n);
  });

  it('sends a frame again whole when its last chunks are missing (the shipper died mid-frame)', () => {
    expect(resumeLsn({ low: 0n, high: 10n }, last(9n, 42n, 0, 3), 1n, 't')).toBe(42n);
    expect(resumeLsn({ low: 0n, high: 10n }, last(9n, 42n, 1, 3), 1n, 't')).toBe(42n);
  });

  it('the last message tells whether the partition ends with a complete unit', () => {
    expect(resumeUnitLsn(last(9n, 42n), 43n)).toBe(42n);
    expect(resumeUnitLsn(last(9n, 42n, 2, 3), 43n)).toBe(42n);
    expect(resumeUnitLsn({ ...last(9n, 42n), endOfUnit: false }, 43n)).toBeNull();
    expect(resumeUnitLsn(last(9n, 42n, 1, 3), 42n)).toBeNull();
    expect(resumeUnitLsn(null, 1n)).toBeNull();
  });

  it('refuses to guess when retention deleted every message', () => {
    expect(() => resumeLsn({ low: 10n, high: 10n }, null, 1n, 't')).toThrow(
      expect.objectContaining({ code: 'KAFKA_RESUME_UNKNOWN', retriable: false }),
    );
  });

  it('a last message at another offset than asked is retried', () => {
    expect(() => resumeLsn({ low: 0n, high: 10n }, last(8n, 1n), 1n, 't')).toThrow(
      expect.objectContaining({ retriable: true }),
    );
  });
});

describe('startOffset (receiver)', () => {
  it('uses the committed offset as a hint when it lies in the partition', () => {
    expect(startOffset({ low: 5n, high: 100n }, 40n, 33n)).toBe(40n);
  });

  it('without a usable hint: the start for a receiver with nothing, else the last message', () => {
    expect(startOffset({ low: 5n, high: 100n }, null, 0n)).toBe(5n);
    expect(startOffset({ low: 5n, high: 100n }, null, 7n)).toBe(99n);
    expect(startOffset({ low: 5n, high: 100n }, 2n, 7n)).toBe(99n);
    // A hint at the end would wait for new messages without checking where the standby stands.
    expect(startOffset({ low: 5n, high: 100n }, 100n, 7n)).toBe(99n);
  });

  it('an empty partition starts at its start', () => {
    expect(startOffset({ low: 0n, high: 0n }, null, 9n)).toBe(0n);
    expect(startOffset({ low: 30n, high: 30n }, 12n, 9n)).toBe(30n);
  });
});
