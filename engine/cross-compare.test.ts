import { describe, expect, it } from 'vitest';
import {
  type ChunkReader,
  canonical,
  compareKey,
  compareTable,
  type CrossTableSpec,
  type RawCell,
} from './cross-compare.ts';

describe('canonical values', () => {
  it('equal values of the two engines meet', () => {
    expect(canonical('datetime', '2024-01-02 03:04:05.500000')).toBe(canonical('datetime', '2024-01-02 03:04:05.5'));
    expect(canonical('datetime', '2024-01-02 03:04:05.000000')).toBe('2024-01-02 03:04:05');
    expect(canonical('bool', 't')).toBe(canonical('bool', '1'));
    expect(canonical('bool', 'false')).toBe(canonical('bool', '0'));
    expect(canonical('decimal', '0012.3400')).toBe(canonical('decimal', '12.34'));
    expect(canonical('decimal', '-0.000')).toBe('0');
    expect(canonical('float4', 0.10000000149011612)).toBe(canonical('float4', '0.1'));
    expect(canonical('float8', '1.7976931348623157e+308')).toBe(canonical('float8', 1.7976931348623157e308));
    expect(canonical('time', '-838:59:59.000000')).toBe(canonical('time', '-838:59:59'));
    expect(canonical('time', '01:02:03')).toBe(canonical('time', '1:02:03'));
    expect(canonical('bits', '00101')).toBe(canonical('bits', '101'));
    expect(canonical('bits', '11')).not.toBe(canonical('bits', '1011'));
    expect(canonical('bytes', 'DEADBEEF')).toBe(canonical('bytes', 'deadbeef'));
    expect(canonical('int', '18446744073709551615')).toBe('18446744073709551615');
    expect(canonical('text', null)).toBeNull();
  });

  it('values that differ in one digit, byte or character stay different', () => {
    expect(canonical('datetime', '2024-01-02 03:04:05.000001')).not.toBe(canonical('datetime', '2024-01-02 03:04:05'));
    expect(canonical('decimal', '1.0000000001')).not.toBe(canonical('decimal', '1'));
    expect(canonical('float8', '0.30000000000000004')).not.toBe(canonical('float8', '0.3'));
    expect(canonical('float8', '-0')).not.toBe(canonical('float8', '0'));
    expect(canonical('text', 'a😀')).not.toBe(canonical('text', 'a😁'));
    expect(canonical('time', '1 day 01:00:00')).not.toBe(canonical('time', '25:00:00'));
    expect(canonical('bytes', '')).not.toBe(canonical('bytes', '00'));
    expect(canonical('bool', '2')).not.toBe(canonical('bool', '1'));
  });

  it('keys order as both engines order them', () => {
    expect(compareKey('int', '9', '10')).toBeLessThan(0);
    expect(compareKey('int', '-18446744073709551615', '1')).toBeLessThan(0);
    expect(compareKey('text', 'Z', 'a')).toBeLessThan(0);
    expect(compareKey('text', '\uffff', '😀')).toBeLessThan(0); // UTF-8 byte order, not UTF-16
    expect(compareKey('bytes', '00', '0000')).toBeLessThan(0);
  });
});

/** A reader over sorted rows, honouring `after` like the engines' keyset queries (integer key in column 0). */
function reader(rows: RawCell[][]): ChunkReader {
  return async (after, limit) =>
    rows.filter((r) => after === null || BigInt(String(r[0])) > BigInt(after[0]!)).slice(0, limit);
}

describe('compareTable', () => {
  const spec: CrossTableSpec = {
    schema: 's',
    table: 't',
    columns: [
      { name: 'id', kind: 'int' },
      { name: 'at', kind: 'datetime' },
      { name: 'n', kind: 'decimal' },
    ],
    key: [0],
  };
  const src: RawCell[][] = Array.from({ length: 25 }, (_, i) => [
    String(i + 1),
    `2024-01-01 00:00:${String(i).padStart(2, '0')}.500000`,
    '1.50',
  ]);
  const same: RawCell[][] = src.map((r) => [r[0] ?? null, String(r[1]).replace(/0+$/, ''), '1.5']);

  it('equal across chunks when only the spelling differs', async () => {
    const r = await compareTable(spec, reader(src), reader(same), { chunkRows: 7 });
    expect(r).toMatchObject({ rows: 25, replicaRows: 25, differenceCount: 0 });
    expect(r.chunks).toBe(4);
  });

  it('finds a one-value difference, a missing row and an extra row', async () => {
    const t: RawCell[][] = same
      .filter((r) => r[0] !== '10')
      .map((r) => (r[0] === '17' ? [r[0], r[1] ?? null, '1.51'] : r));
    t.push(['26', null, null] as RawCell[]);
    const r = await compareTable(spec, reader(src), reader(t), { chunkRows: 7 });
    expect(r.differenceCount).toBe(3);
    expect(r.differences.map((d) => `${d.kind} ${d.key}`)).toEqual(['missing id=10', 'changed id=17', 'extra id=26']);
  });

  it('refuses a key kind the engines do not order alike', async () => {
    const bad: CrossTableSpec = { ...spec, columns: [{ name: 'f', kind: 'float8' }], key: [0] };
    await expect(compareTable(bad, reader([]), reader([]), { chunkRows: 5 })).rejects.toThrow(
      /VERIFY_SHAPE|do not order/,
    );
  });
});
