import { describe, expect, it } from 'vitest';
import {
  baselineEnumRaw,
  columnSpec,
  float32Shortest,
  isDecimalText,
  normalizeValue,
  unsupportedTablesError,
  withFsp,
} from './values.ts';
import { isBinaryStored, normalizeColumnType } from '../../mysql/types.ts';

const norm = (type: string, raw: unknown) => normalizeValue(columnSpec('c', type), raw);

describe('normalizeColumnType / columnSpec', () => {
  it('agrees between information_schema and binlog-built type text', () => {
    expect(normalizeColumnType('int(11)')).toBe('int');
    expect(normalizeColumnType('tinyint(3) unsigned')).toBe('tinyint unsigned');
    expect(normalizeColumnType('bigint(20) unsigned zerofill')).toBe('bigint unsigned');
    expect(normalizeColumnType('year(4)')).toBe('year');
    expect(normalizeColumnType('decimal(65,30)')).toBe('decimal(65,30)');
    expect(normalizeColumnType("enum('A','b,c')")).toBe("enum('A','b,c')");
    expect(normalizeColumnType('longtext /*M!100301 COMPRESSED*/')).toBe('longtext');
  });

  it('builds record column metadata', () => {
    expect(columnSpec('a', 'bigint(20) unsigned').column).toEqual({
      name: 'a',
      type: 'bigint',
      columnType: 'bigint unsigned',
      unsigned: true,
    });
    expect(columnSpec('d', 'decimal(10,2)').column).toEqual({
      name: 'd',
      type: 'decimal',
      columnType: 'decimal(10,2)',
      unsigned: false,
    });
    expect(columnSpec('s', 'varchar(20)').column).toEqual({ name: 's', type: 'varchar', columnType: 'varchar(20)' });
    expect(columnSpec('t', 'datetime(3)').fsp).toBe(3);
    expect(columnSpec('t', 'time').fsp).toBe(0);
    expect(columnSpec('v', 'vector(3)').kind).toBe('unsupported');
    // Spatial columns are the geometry family under their own type names (zongji's geomcollection normalized).
    for (const t of ['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon']) {
      expect(columnSpec('g', t).column).toEqual({ name: 'g', type: t, columnType: t });
      expect(columnSpec('g', t).kind).toBe('geometry');
    }
    expect(normalizeColumnType('geomcollection')).toBe('geometrycollection');
    expect(columnSpec('g', 'GEOMETRYCOLLECTION').column.columnType).toBe('geometrycollection');
    expect(isBinaryStored('point')).toBe(false);
    // UUID/INET travel as the binary form the binlog holds (FULL metadata calls them binary(16)/binary(4)).
    expect(columnSpec('u', 'uuid').column).toEqual({ name: 'u', type: 'binary', columnType: 'binary(16)' });
    expect(columnSpec('i', 'inet4').column.columnType).toBe('binary(4)');
    expect(columnSpec('i', 'inet6').kind).toBe('binary');
    expect(isBinaryStored('uuid')).toBe(true);
    expect(isBinaryStored('binary(16)')).toBe(false);
  });
});

describe('normalizeValue', () => {
  it('integers become bigint, from numbers and exact strings', () => {
    expect(norm('tinyint', -128)).toBe(-128n);
    expect(norm('bigint unsigned', '18446744073709551615')).toBe(18446744073709551615n);
    expect(norm('bigint', '-9223372036854775808')).toBe(-9223372036854775808n);
    expect(norm('int', 7n)).toBe(7n);
    expect(() => norm('int', 1.5)).toThrow(/expected an integer/);
  });

  it('YEAR 0000 (zongji 1900) becomes 0', () => {
    expect(norm('year', 1900)).toBe(0n);
    expect(norm('year', 0)).toBe(0n);
    expect(norm('year', 2155)).toBe(2155n);
  });

  it('BIT becomes its number', () => {
    expect(norm('bit(1)', Buffer.from([1]))).toBe(1n);
    expect(norm('bit(64)', Buffer.alloc(8, 0xff))).toBe(2n ** 64n - 1n);
    expect(norm('bit(10)', Buffer.from([0x02, 0x01]))).toBe(513n);
  });

  it('FLOAT becomes the shortest decimal of its float32, DOUBLE stays', () => {
    expect(norm('float', 0.12345670163631439)).toBe(0.1234567);
    expect(norm('float', 1.100000023841858)).toBe(1.1);
    expect(norm('float', '3.402820018375656e38')).toBe(3.40282e38);
    expect(norm('double', 0.30000000000000004)).toBe(0.30000000000000004);
    expect(norm('double', -0)).toBe(0);
    expect(float32Shortest(-0)).toBe(0);
  });

  it('DECIMAL stays exact text', () => {
    const v = '-12345678901234567890123456789012345.123456789012345678901234567891';
    expect(norm('decimal(65,30)', v)).toBe(v);
    expect(() => norm('decimal(5,2)', 1.5)).toThrow(/expected text/);
    expect(() => norm('decimal(5,2)', '1e5')).toThrow(/not an exact decimal/);
  });

  it('isDecimalText accepts exactly /^-?\\d+(\\.\\d+)?$/', () => {
    const re = /^-?\d+(\.\d+)?$/;
    const cases = [
      '0',
      '-0',
      '12',
      '-12.50',
      '1.',
      '.5',
      '-',
      '',
      '--1',
      '1.2.3',
      '+1',
      '1 ',
      ' 1',
      '١',
      '12a',
      '0.000',
    ];
    for (const c of cases) expect(isDecimalText(c), c).toBe(re.test(c));
  });

  it('temporal text gets exactly fsp fractional digits', () => {
    expect(norm('datetime(6)', '2024-01-01 01:02:03.5')).toBe('2024-01-01 01:02:03.500000');
    expect(norm('datetime', '2024-01-01 01:02:03')).toBe('2024-01-01 01:02:03');
    expect(norm('timestamp(3)', '2038-01-19 03:14:07.999')).toBe('2038-01-19 03:14:07.999');
    expect(norm('time(6)', '-838:59:59')).toBe('-838:59:59.000000');
    expect(norm('date', '0000-00-00')).toBe('0000-00-00');
    expect(withFsp('12:00:00.1234567', 6)).toBe('12:00:00.123456');
    expect(withFsp('12:00:00.123456', 6)).toBe('12:00:00.123456');
    expect(withFsp('12:00:00.12', 0)).toBe('12:00:00');
    expect(withFsp('12:00:00', 2)).toBe('12:00:00.00');
    expect(withFsp('12:00:00.', 2)).toBe('12:00:00.00');
    expect(() => norm('datetime', new Date())).toThrow(/dateStrings/);
  });

  it('text, enum, set stay strings; the invalid enum index 0 is 0n, never the label of a "" member', () => {
    expect(norm('varchar(10)', 'h😀é')).toBe('h😀é');
    expect(norm("enum('a','b')", undefined)).toBe(0n);
    expect(norm("enum('','a')", '')).toBe('');
    // The baseline reads ENUM as "index:label".
    expect(norm("enum('','a')", baselineEnumRaw('0:'))).toBe(0n);
    expect(norm("enum('','a')", baselineEnumRaw('1:'))).toBe('');
    expect(norm("enum('a:b','c')", baselineEnumRaw('1:a:b'))).toBe('a:b');
    expect(norm("enum('','a')", baselineEnumRaw(null))).toBe(null);
    expect(norm("set('x','y')", 'x,y')).toBe('x,y');
    expect(norm('longtext', '{"a": 1}')).toBe('{"a": 1}');
  });

  it('binary becomes a plain Uint8Array copy', () => {
    const buf = Buffer.from([0, 1, 0, 0]);
    const v = norm('binary(4)', buf) as Uint8Array;
    expect(v).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(v)).toBe(false);
    expect([...v]).toEqual([0, 1, 0, 0]);
    buf[1] = 9;
    expect(v[1]).toBe(1);
  });

  it('NULL is null for every type', () => {
    for (const t of ['int', 'float', 'decimal(5,2)', 'datetime(6)', 'blob', 'bit(3)', "enum('a')", 'year']) {
      expect(norm(t, null)).toBeNull();
    }
    expect(norm('int', undefined)).toBeNull();
  });

  it('refuses unsupported types without showing the value', () => {
    expect(() => norm('vector(3)', 'secret')).toThrow(/not supported/);
    expect(() => norm('vector(3)', 'secret')).not.toThrow(/secret/);
  });

  it('geometry keeps the stored bytes (SRID + WKB) exactly, as a copy; parsed objects are refused', () => {
    // SRID 4326, little-endian WKB POINT(1 -2).
    const buf = Buffer.from('E6100000010100000000000000000000F03F00000000000000C0', 'hex');
    const v = norm('point', buf) as Uint8Array;
    expect(Buffer.from(v).toString('hex').toUpperCase()).toBe('E6100000010100000000000000000000F03F00000000000000C0');
    buf[0] = 0;
    expect(v[0]).toBe(0xe6);
    expect(norm('geometrycollection', null)).toBeNull();
    expect(() => norm('point', { x: 1, y: -2 })).toThrow(/stored geometry bytes/);
    expect(() => norm('geometry', Buffer.from([1, 2, 3]))).toThrow(/3 bytes/);
  });
});

describe('unsupportedTablesError', () => {
  it('names every refused table and one exclude line for all', () => {
    const e = unsupportedTablesError([
      { schema: 'zoo', table: 'geo', why: ['g vector(3)'] },
      { schema: 'zoo', table: 'h', why: ['system versioning by transaction id'] },
    ]);
    expect(e.code).toBe('UNSUPPORTED_TYPE');
    expect(e.message).toContain('zoo.geo (g vector(3)); zoo.h (system versioning by transaction id)');
    expect(e.message).toContain('source.exclude: ["zoo.geo", "zoo.h"]');
  });
});
