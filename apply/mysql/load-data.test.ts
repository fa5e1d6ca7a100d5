import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Column, Value } from '../../record/record.ts';
import { tuple } from '../../mysql/sql.ts';
import { LoadFile, loadShape } from './load-data.ts';

const col = (name: string, type: string, columnType = type): Column => ({ name, type, columnType });

const COLS: Column[] = [
  col('id', 'bigint'),
  col('y', 'year'),
  col('b', 'bit', 'bit(64)'),
  col('f', 'float'),
  col('d', 'double'),
  col('dec', 'decimal', 'decimal(30,10)'),
  col('dt', 'datetime', 'datetime(6)'),
  col('tm', 'time', 'time(6)'),
  col('s', 'varchar', 'varchar(255)'),
  col('e', 'enum', "enum('a','b')"),
  col('st', 'set', "set('x','y')"),
  col('bin', 'varbinary', 'varbinary(300)'),
  col('g', 'geometry'),
  col('gen', 'int'),
];
const WRITE = COLS.map((_, i) => i).filter((i) => COLS[i]!.name !== 'gen');

const bytes = (...b: number[]) => new Uint8Array(b);
const ROW: Value[] = [
  -9223372036854775808n,
  2155n,
  18446744073709551615n,
  Math.fround(0.1),
  5e-324,
  '-12345678901234567890.0123456789',
  '0000-00-00 00:00:00.000000',
  '-838:59:59.000000',
  'tab\there\nnew \\N \\ back\r\0nul é 😀 \'q\' "d"',
  'b',
  'x,y',
  bytes(...Array.from({ length: 256 }, (_, i) => i)),
  bytes(0, 0, 0, 0, 1, 1, 0, 0, 0),
  null,
];

describe('loadShape', () => {
  it('writes the statement with variables for YEAR, BIT and binary columns, generated columns left out', () => {
    const s = loadShape('d b', 't`x', COLS, WRITE)!;
    expect(s.sql).toBe(
      "LOAD DATA LOCAL INFILE 'tidemark' INTO TABLE `d b`.`t``x` CHARACTER SET utf8mb4 " +
        "FIELDS TERMINATED BY '\\t' ENCLOSED BY '' ESCAPED BY '\\\\' LINES STARTING BY '' TERMINATED BY '\\n' " +
        '(`id`,@tidemark_v1,@tidemark_v2,`f`,`d`,`dec`,`dt`,`tm`,`s`,`e`,`st`,@tidemark_v11,@tidemark_v12) ' +
        'SET `y` = CAST(@tidemark_v1 AS UNSIGNED), `b` = CAST(@tidemark_v2 AS UNSIGNED), `bin` = UNHEX(@tidemark_v11), ' +
        '`g` = UNHEX(@tidemark_v12)',
    );
    expect(loadShape('d', 't', [col('id', 'int'), col('v', 'vector', 'vector(3)')], [0, 1])).toBeNull();
  });

  it('escapes what LOAD DATA reads specially and writes NULL as \\N, distinct from the text \\N', () => {
    const s = loadShape('d', 't', [col('a', 'text'), col('b', 'text'), col('c', 'text')], [0, 1, 2])!;
    expect(s.line(['\\N', null, ''])).toBe('\\\\N\t\\N\t\n');
    expect(s.line(['a\tb\nc\rd\\e\0f', 'x', "'"])).toBe("a\\tb\\nc\\rd\\\\e\\0f\tx\t'\n");
  });

  it('reads back exactly what it wrote (BIT bytes as their number), through LoadFile', () => {
    const s = loadShape('d', 't', COLS, WRITE)!;
    const f = new LoadFile(64);
    const rows = [ROW, COLS.map((): Value => null), [...ROW.slice(0, 2), bytes(1, 0), ...ROW.slice(3)]];
    for (const r of rows) f.add(s.line(r)!);
    const back = s.parse(f.take());
    expect(back).toEqual([ROW, COLS.map(() => null), [...ROW.slice(0, 2), 256n, ...ROW.slice(3)]]);
    // The INSERT built from what was read back is the INSERT of the rows themselves.
    expect(back.map((r) => tuple(r, COLS, WRITE))).toEqual(rows.map((r) => tuple(r, COLS, WRITE)));
  });

  it('round-trips any string and any bytes', () => {
    const s = loadShape('d', 't', [col('t', 'longtext'), col('b', 'longblob')], [0, 1])!;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.option(fc.string({ unit: 'binary' })), fc.option(fc.uint8Array())), { maxLength: 5 }),
        (rows) => {
          const f = new LoadFile(16);
          for (const r of rows) f.add(s.line(r)!);
          const back = s.parse(f.take());
          expect(back).toEqual(rows);
        },
      ),
    );
  });

  it('refuses (null) what a field cannot carry: ENUM index 0, a lone surrogate, NaN, another kind', () => {
    const s = loadShape('d', 't', COLS, WRITE)!;
    const withValue = (i: number, v: Value) => s.line(ROW.map((x, k) => (k === i ? v : x)));
    expect(withValue(9, 0n)).toBeNull();
    expect(withValue(8, 'a\uD800b')).toBeNull();
    expect(withValue(4, Number.NaN)).toBeNull();
    expect(withValue(0, '5')).toBeNull();
    expect(withValue(5, '1e5')).toBeNull();
    expect(withValue(11, 'text')).toBeNull();
    expect(withValue(8, 'fine')).not.toBeNull();
  });
});

describe('LoadFile', () => {
  it('fits lines until its capacity, takes a larger line alone, and starts afresh after take', () => {
    const f = new LoadFile(10);
    expect(f.fits('12345\n')).toBe(true);
    f.add('12345\n');
    expect(f.fits('é\n')).toBe(true); // 3 bytes: room for 4
    expect(f.fits('12345\n')).toBe(false);
    f.add('é\n');
    expect(f.size).toBe(9);
    expect(Buffer.from(f.take()).toString('utf8')).toBe('12345\né\n');
    expect(f.size).toBe(0);
    const big = 'x'.repeat(100) + '\n';
    expect(f.fits(big)).toBe(true);
    f.add(big);
    expect(f.take().length).toBe(101);
  });

  it('starts with a small buffer and doubles it as lines come, up to its capacity (issue #15: no 4 MiB per statement)', () => {
    const f = new LoadFile(1 << 20);
    f.add('1\tabc\n');
    const small = f.take();
    expect(small.toString('utf8')).toBe('1\tabc\n');
    expect(small.buffer.byteLength).toBeLessThanOrEqual(64 << 10);
    const line = `${'y'.repeat(1023)}\n`;
    for (let i = 0; i < 1000; i++) f.add(line); // 1,024,000 bytes: grows past 64 KiB, up to about the capacity
    const big = f.take();
    expect(big.length).toBe(1_024_000);
    expect(big.every((b, i) => b === (i % 1024 === 1023 ? 10 : 121))).toBe(true);
    expect(big.buffer.byteLength).toBeLessThanOrEqual(1 << 22); // the last growth may take the worst-case need
  });
});
