import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../../core/errors.ts';
import {
  checkReadable,
  decodeEntry,
  durabilityProblems,
  entryId,
  type GroupState,
  lsnOfId,
  parseReadReply,
  parseStreamInfo,
  type RawEntry,
  trimPoint,
  xaddArgs,
} from './codec.ts';

const frame = (lsn: bigint, size: number, endOfUnit = false) => ({
  lsn,
  endOfUnit,
  payload: Uint8Array.from({ length: size }, (_, i) => (i * 11 + 3) & 0xff),
});

/** What XREADGROUP hands back for an XADD with these arguments. */
const asRead = (args: (string | Buffer)[]): RawEntry => ({
  id: String(args[0]),
  fields: args.slice(1).map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(x))),
});

describe('redis stream codec', () => {
  it('entry IDs are the LSNs', () => {
    expect(entryId(42n)).toBe('42-0');
    expect(lsnOfId('18446744073709551615-0', 'k')).toBe(18446744073709551615n);
    expect(() => lsnOfId('1700000000000-3', 'k')).toThrow(/was not written by tidemark/);
    expect(() => lsnOfId('abc', 'k')).toThrow(CorruptionError);
  });

  it('round-trips frames, empty and binary payloads included', () => {
    for (const f of [frame(1n, 0, true), frame(2n, 1), frame(99n, 70_000, true)]) {
      const back = decodeEntry(asRead(xaddArgs('orders', f)), 'orders', 'k');
      expect(back.lsn).toBe(f.lsn);
      expect(back.endOfUnit).toBe(f.endOfUnit);
      expect(Buffer.compare(back.payload, f.payload)).toBe(0);
    }
  });

  it('detects every flipped bit of the payload and a changed flag or ID', () => {
    const args = xaddArgs('s', frame(7n, 24));
    const e = asRead(args);
    const p = e.fields.length - 1;
    for (let i = 0; i < 24 * 8; i++) {
      const fields = [...e.fields];
      const b = Buffer.from(fields[p] as Buffer);
      b[i >> 3] = (b[i >> 3] as number) ^ (1 << (i & 7));
      fields[p] = b;
      expect(() => decodeEntry({ ...e, fields }, 's', 'k')).toThrow(/entry 7-0: checksum mismatch for LSN 7/);
    }
    expect(() => decodeEntry({ ...e, id: '8-0' }, 's', 'k')).toThrow(/checksum mismatch/);
    const flagged = e.fields.map((x, i) => (e.fields[i - 1]?.toString() === 'f' ? Buffer.from('1') : x));
    expect(() => decodeEntry({ ...e, fields: flagged }, 's', 'k')).toThrow(/checksum mismatch/);
  });

  it('refuses missing fields, another source and another version', () => {
    const e = asRead(xaddArgs('s', frame(3n, 2)));
    expect(() => decodeEntry({ ...e, fields: e.fields.slice(0, 4) }, 's', 'k')).toThrow(/field f is missing/);
    expect(() => decodeEntry(e, 'other', 'k')).toThrow(/source "s" in the stream of source "other"/);
    const v2 = [Buffer.from('v'), Buffer.from('2'), ...e.fields.slice(2)];
    expect(() => decodeEntry({ ...e, fields: v2 }, 's', 'k')).toThrow(/format version "2"/);
  });

  it('parses XREADGROUP and XINFO STREAM replies', () => {
    const reply = [[Buffer.from('k'), [[Buffer.from('5-0'), [Buffer.from('p'), Buffer.from('x')]]]]];
    expect(parseReadReply(reply, 'k')).toEqual([{ id: '5-0', fields: [Buffer.from('p'), Buffer.from('x')] }]);
    expect(parseReadReply(null, 'k')).toEqual([]);
    const info = ['length', 3, 'last-generated-id', '9-0', 'first-entry', ['7-0', []], 'last-entry', ['9-0', []]];
    expect(parseStreamInfo(info, 'k')).toEqual({ length: 3, lastLsn: 9n, firstLsn: 7n, lastUnitLsn: null });
    expect(parseStreamInfo(['length', 0, 'last-generated-id', '0-0', 'first-entry', null], 'k')).toEqual({
      length: 0,
      lastLsn: 0n,
      firstLsn: null,
      lastUnitLsn: null,
    });
  });

  it('XINFO STREAM: the last entry tells whether the stream ends with a complete unit', () => {
    const entry = (lsn: bigint, end: boolean) => {
      const [id, ...fields] = xaddArgs('src', frame(lsn, 4, end));
      return [String(id), fields.map((x) => (Buffer.isBuffer(x) ? x.toString('latin1') : x))];
    };
    const info = (last: string, e: unknown) => [
      'length',
      2,
      'last-generated-id',
      last,
      'first-entry',
      e,
      'last-entry',
      e,
    ];
    expect(parseStreamInfo(info('9-0', entry(9n, true)), 'k').lastUnitLsn).toBe(9n);
    expect(parseStreamInfo(info('9-0', entry(9n, false)), 'k').lastUnitLsn).toBeNull();
    // The last entry was trimmed or deleted since: the top of the stream is unknown, so nothing is claimed.
    expect(parseStreamInfo(info('9-0', entry(8n, true)), 'k').lastUnitLsn).toBeNull();
    expect(parseStreamInfo(info('9-0', null), 'k').lastUnitLsn).toBeNull();
  });

  it('checkReadable: the frame after the durable LSN must still be in the stream', () => {
    expect(() => checkReadable({ length: 3, lastLsn: 9n, firstLsn: 7n, lastUnitLsn: null }, 6n, 'k')).not.toThrow();
    expect(() => checkReadable({ length: 3, lastLsn: 9n, firstLsn: 7n, lastUnitLsn: null }, 9n, 'k')).not.toThrow();
    expect(() => checkReadable({ length: 0, lastLsn: 9n, firstLsn: null, lastUnitLsn: null }, 9n, 'k')).not.toThrow();
    expect(() => checkReadable({ length: 3, lastLsn: 9n, firstLsn: 7n, lastUnitLsn: null }, 5n, 'k')).toThrow(
      expect.objectContaining({ code: 'SHIP_GONE', retriable: false }),
    );
    expect(() => checkReadable({ length: 0, lastLsn: 9n, firstLsn: null, lastUnitLsn: null }, 4n, 'k')).toThrow(
      /it is empty/,
    );
  });
});

describe('durabilityProblems', () => {
  const ok = { appendonly: 'yes', appendfsync: 'always', maxmemory: '0', maxmemoryPolicy: 'allkeys-lru' };
  it('accepts appendonly yes + appendfsync always without eviction', () => {
    expect(durabilityProblems(ok)).toEqual([]);
    expect(durabilityProblems({ ...ok, maxmemory: '1000000', maxmemoryPolicy: 'noeviction' })).toEqual([]);
  });
  it('names each wrong setting', () => {
    expect(durabilityProblems({ ...ok, appendfsync: 'everysec' })).toEqual([
      'appendfsync is "everysec", must be "always" (else acknowledged frames can be lost in a crash)',
    ]);
    expect(durabilityProblems({ ...ok, appendonly: 'no' })).toEqual(['appendonly is "no", must be "yes"']);
    expect(durabilityProblems({ ...ok, maxmemory: '100mb', maxmemoryPolicy: 'allkeys-lru' })[0]).toMatch(
      /maxmemory-policy is "allkeys-lru" with maxmemory 100mb: must be "noeviction"/,
    );
    expect(durabilityProblems({ ...ok, appendonly: null })[0]).toMatch(/cannot be verified/);
  });
});

describe('trimPoint', () => {
  const g = (name: string, lastDelivered: bigint, unitLsn: bigint | null, lowestPending: bigint | null = null) =>
    ({
      name,
      pending: lowestPending === null ? 0 : 3,
      lastDeliveredLsn: lastDelivered,
      lowestPendingLsn: lowestPending,
      unitLsn,
    }) satisfies GroupState;

  it('trims below the lowest complete unit every group acknowledged', () => {
    expect(trimPoint([g('a', 100n, 98n), g('b', 60n, 57n)])).toEqual({ below: 58n });
    // Pending entries are not acknowledged: the marker cannot pass the lowest pending - 1.
    expect(trimPoint([g('a', 100n, 98n, 40n)])).toEqual({ below: 40n });
  });

  it('holds everything for a group without a marker, a missing expected group, or no group', () => {
    expect(trimPoint([g('a', 100n, 98n), g('b', 60n, null)])).toEqual({
      none: 'group b acknowledged complete units up to LSN 0',
    });
    expect(trimPoint([g('a', 100n, 98n)], ['a', 'c'])).toEqual({ none: 'group(s) c do not exist yet' });
    expect(trimPoint([])).toMatchObject({ none: expect.stringMatching(/no consumer group/) });
  });
});
