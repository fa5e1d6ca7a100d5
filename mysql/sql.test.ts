import { describe, expect, it } from 'vitest';
import type { Column, Value } from '../record/record.ts';
import {
  deleteInPrefix,
  updateColumns,
  keyItem,
  buildDeleteRow,
  buildExists,
  buildInsert,
  buildUpdateRow,
  compareLiteral,
  describeKey,
  floatLiteral,
  generatedColumnsSql,
  hexLiteral,
  literal,
  qualified,
  quoteIdent,
  quoteString,
  sqlBytes,
  useSchema,
} from './sql.ts';

const int: Column = { name: 'id', type: 'int' };
const txt: Column = { name: 'v', type: 'varchar' };
const dec: Column = { name: 'd', type: 'decimal', columnType: 'decimal(40,10)' };
const bit: Column = { name: 'b', type: 'bit', columnType: 'bit(64)' };
const bin4: Column = { name: 'bn', type: 'binary', columnType: 'binary(4)' };
const blob: Column = { name: 'bl', type: 'blob' };
const dbl: Column = { name: 'f', type: 'double' };
const json: Column = { name: 'j', type: 'json' };

describe('identifiers', () => {
  it('quotes with backticks and doubles embedded backticks', () => {
    expect(quoteIdent('t')).toBe('`t`');
    expect(quoteIdent('we`ird name')).toBe('`we``ird name`');
    expect(quoteIdent('``')).toBe('``````');
    expect(qualified('s p', 't`x')).toBe('`s p`.`t``x`');
  });
  it('refuses empty names and NUL', () => {
    expect(() => quoteIdent('')).toThrow(/empty/);
    expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
  });
  it('USE quotes the schema', () => {
    expect(useSchema('a`b')).toBe('USE `a``b`');
  });
});

describe('string literals', () => {
  it('escapes quote, backslash, NUL, newlines and ^Z', () => {
    expect(quoteString("it's")).toBe("'it\\'s'");
    expect(quoteString('a\\b')).toBe("'a\\\\b'");
    expect(quoteString('\0\n\r\x1a')).toBe("'\\0\\n\\r\\Z'");
    expect(quoteString('')).toBe("''");
    expect(quoteString('plain é 🙂 text')).toBe("'plain é 🙂 text'");
    expect(quoteString('NULL')).toBe("'NULL'");
    expect(quoteString('😀 é ß')).toBe("'😀 é ß'");
  });
  it('cannot be broken out of: every quote in the output is escaped', () => {
    const nasty = "x'); DROP TABLE t; -- \\' \\\\'";
    const q = quoteString(nasty);
    const inner = q.slice(1, -1);
    // Walk the literal as the server would: a quote is only ever seen right after an escaping backslash.
    for (let i = 0; i < inner.length; i++) {
      if (inner[i] === '\\') i++;
      else expect(inner[i]).not.toBe("'");
    }
  });
  it('refuses lone surrogates', () => {
    expect(() => quoteString('a\ud800b')).toThrow(/surrogate/);
  });
});

describe('value literals', () => {
  it('null and bigint', () => {
    expect(literal(null, int)).toBe('NULL');
    expect(literal(-9223372036854775808n, int)).toBe('-9223372036854775808');
    expect(literal(18446744073709551615n, bit)).toBe('18446744073709551615');
  });
  it('floats round-trip and always carry an exponent', () => {
    for (const n of [
      0.1,
      1 / 3,
      5e-324,
      1.7976931348623157e308,
      123456789012345680000,
      -2.5,
      0,
      3.4028234663852886e38,
    ]) {
      const s = floatLiteral(n);
      expect(s).toMatch(/e/);
      expect(Number(s)).toBe(n);
    }
    expect(floatLiteral(-0)).toBe('-0e0');
    expect(literal(0.1, dbl)).toBe('0.1e0');
  });
  it('FLOAT columns get the exact float32 value, in range and comparable with <=>', () => {
    const flt: Column = { name: 'f', type: 'float' };
    // capture sends the shortest decimal that reads back as the float32; apply must not write that decimal
    expect(literal(0.1, flt)).toBe('0.10000000149011612e0');
    expect(literal(3.4028235e38, flt)).toBe('3.4028234663852886e+38');
    expect(literal(-3.4028235e38, flt)).toBe('-3.4028234663852886e+38');
    expect(literal(1.5, flt)).toBe('1.5e0');
  });
  it('refuses NaN and Infinity', () => {
    expect(() => literal(Number.NaN, dbl)).toThrow(/NaN/);
    expect(() => literal(Number.POSITIVE_INFINITY, dbl)).toThrow(/Infinity/);
    expect(() => literal(Number.NEGATIVE_INFINITY, dbl)).toThrow();
  });
  it('DECIMAL text is unquoted when exact, quoted otherwise', () => {
    expect(literal('-123.4500', dec)).toBe('-123.4500');
    expect(literal('12345678901234567890123456789.0123456789', dec)).toBe('12345678901234567890123456789.0123456789');
    expect(literal('1e5', dec)).toBe("'1e5'");
    expect(literal('1; DROP', dec)).toBe("'1; DROP'");
    expect(literal('-123.45', txt)).toBe("'-123.45'");
  });
  it('binary as hex, BINARY(n) zero-padded, BIT bytes as a number', () => {
    expect(literal(new Uint8Array([0, 1, 0xab, 0xff]), blob)).toBe("X'0001ABFF'");
    expect(literal(new Uint8Array([]), blob)).toBe("X''");
    expect(literal(new Uint8Array([0x61]), bin4)).toBe("X'61000000'");
    expect(literal(new Uint8Array([1, 2, 3, 4]), bin4)).toBe("X'01020304'");
    expect(literal(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), bit)).toBe('18446744073709551615');
    const sub = new Uint8Array([9, 8, 7, 6]).subarray(1, 3);
    expect(hexLiteral(sub)).toBe("X'0807'");
  });
  it('JSON compares as JSON on MySQL, as text on MariaDB', () => {
    expect(compareLiteral('{"a":1}', json, 'mysql')).toBe(`CAST('{"a":1}' AS JSON)`);
    expect(compareLiteral('{"a":1}', json, 'mariadb')).toBe(`'{"a":1}'`);
    expect(compareLiteral(null, json, 'mysql')).toBe('NULL');
  });
  it('counts UTF-8 bytes', () => {
    expect(sqlBytes('aé😀')).toBe(1 + 2 + 4);
  });
});

describe('statements', () => {
  const cols: Column[] = [
    { name: 'id', type: 'int' },
    { name: 'na`me', type: 'varchar' },
    { name: 'x y', type: 'int' },
  ];
  it('multi-row insert', () => {
    expect(
      buildInsert(
        's',
        't`1',
        cols,
        [0, 1, 2],
        [
          [1n, 'a', null],
          [2n, "b'", 3n],
        ],
      ),
    ).toBe("INSERT INTO `s`.`t``1` (`id`,`na``me`,`x y`) VALUES (1,'a',NULL),(2,'b\\'',3)");
  });
  it('insert skips generated columns', () => {
    expect(buildInsert('s', 't', cols, [0, 2], [[1n, 'a', 5n]])).toBe('INSERT INTO `s`.`t` (`id`,`x y`) VALUES (1,5)');
  });
  it('delete by single and composite key (the IN-list pieces the batcher joins)', () => {
    const inList = (pk: number[], keys: Value[][]) =>
      deleteInPrefix('s', 't', cols, pk) + keys.map((k) => keyItem(k, cols, pk)).join(',') + ')';
    expect(
      inList(
        [0],
        [
          [1n, null, null],
          [2n, null, null],
        ],
      ),
    ).toBe('DELETE FROM `s`.`t` WHERE `id` IN (1,2)');
    expect(
      inList(
        [0, 1],
        [
          [1n, 'a', null],
          [2n, 'b', null],
        ],
      ),
    ).toBe("DELETE FROM `s`.`t` WHERE (`id`,`na``me`) IN ((1,'a'),(2,'b'))");
  });
  it('update by key sets the changed columns and matches the before key', () => {
    expect(buildUpdateRow('s', 't', cols, [0, 1, 2], [0], [1n, 'a', null], [2n, 'b', 7n], 'mariadb')).toBe(
      "UPDATE `s`.`t` SET `id` = 2, `na``me` = 'b', `x y` = 7 WHERE `id` = 1",
    );
    expect(buildUpdateRow('s', 't', cols, [0, 1, 2], [0], [1n, 'a', null], [1n, 'b', null], 'mariadb')).toBe(
      "UPDATE `s`.`t` SET `na``me` = 'b' WHERE `id` = 1",
    );
  });
  it('update keeps timestamp/datetime columns in SET (ON UPDATE CURRENT_TIMESTAMP) and sets all when nothing differs', () => {
    const tc: Column[] = [
      { name: 'id', type: 'int' },
      { name: 'v', type: 'varchar' },
      { name: 'ts', type: 'timestamp' },
      { name: 'dt', type: 'datetime' },
      { name: 'b', type: 'blob' },
    ];
    const bytes = (...x: number[]) => new Uint8Array(x);
    expect(updateColumns(tc, [0, 1, 2, 3, 4], [1n, 'a', 't', 'd', bytes(1)], [1n, 'b', 't', 'd', bytes(1)])).toEqual([
      1, 2, 3,
    ]);
    expect(updateColumns(tc, [0, 1, 2, 3, 4], [1n, 'a', 't', 'd', bytes(1)], [1n, 'a', 't', 'd', bytes(2)])).toEqual([
      2, 3, 4,
    ]);
    expect(updateColumns(tc, [0, 1, 4], [1n, 'a', 't', 'd', bytes(1)], [1n, 'a', 't', 'd', bytes(1)])).toEqual([
      0, 1, 4,
    ]);
  });
  it('update columns: one shared list per change pattern of a table, the same lists as computed anew', () => {
    const tc: Column[] = [
      { name: 'id', type: 'int' },
      { name: 'a', type: 'varchar' },
      { name: 'b', type: 'varchar' },
      { name: 'ts', type: 'timestamp' },
    ];
    const set = [0, 1, 2, 3];
    const first = updateColumns(tc, set, [1n, 'x', 'y', 't'], [1n, 'x2', 'y', 't']);
    expect(first).toEqual([1, 3]);
    expect(updateColumns(tc, set, [2n, 'p', 'q', 't'], [2n, 'p2', 'q', 't'])).toBe(first);
    expect(updateColumns(tc, set, [2n, 'p', 'q', 't'], [2n, 'p', 'q2', 't'])).toEqual([2, 3]);
    expect(updateColumns(tc, set, [2n, 'p', 'q', 't'], [2n, 'p', 'q', 't'])).toBe(set);
    // Binary values compare by their bytes (views of one buffer included).
    const buf = new Uint8Array([9, 1, 2, 9]);
    const two = [0, 1];
    expect(updateColumns(tc, two, [1n, buf.subarray(1, 3)], [1n, new Uint8Array([1, 2])])).toBe(two);
    expect(updateColumns(tc, two, [1n, buf.subarray(1, 3)], [1n, new Uint8Array([1, 3])])).toEqual([1]);
    // Wider than a mask: computed as before.
    const wide: Column[] = Array.from({ length: 40 }, (_, i) => ({
      name: `c${i}`,
      type: i === 39 ? 'datetime' : 'int',
    }));
    const all = wide.map((_, i) => i);
    const before = all.map((i) => BigInt(i));
    const after = before.map((v, i) => (i === 35 ? v + 1n : v));
    expect(updateColumns(wide, all, before, after)).toEqual([35, 39]);
  });
  it('update and delete without a key match the whole row NULL-safely with LIMIT 1', () => {
    expect(buildUpdateRow('s', 't', cols, [0, 1, 2], null, [1n, 'a', null], [1n, 'b', null], 'mariadb')).toBe(
      "UPDATE `s`.`t` SET `na``me` = 'b' WHERE `id` <=> 1 AND `na``me` <=> 'a' AND `x y` <=> NULL LIMIT 1",
    );
    expect(buildDeleteRow('s', 't', cols, null, [1n, 'a', null], 'mariadb')).toBe(
      "DELETE FROM `s`.`t` WHERE `id` <=> 1 AND `na``me` <=> 'a' AND `x y` <=> NULL LIMIT 1",
    );
    expect(buildDeleteRow('s', 't', cols, [0], [1n, 'a', null], 'mariadb')).toBe('DELETE FROM `s`.`t` WHERE `id` = 1');
  });
  it('exists probes for diagnosis', () => {
    expect(buildExists('s', 't', [cols[0]!], [5n], false, 'mariadb')).toBe(
      'SELECT 1 FROM `s`.`t` WHERE `id` = 5 LIMIT 1',
    );
    expect(buildExists('s', 't', cols, [5n, null, 1n], true, 'mariadb')).toBe(
      'SELECT 1 FROM `s`.`t` WHERE `id` <=> 5 AND `na``me` <=> NULL AND `x y` <=> 1 LIMIT 1',
    );
  });
  it('describes keys for messages, shortening long values', () => {
    expect(describeKey([1n, 'x'.repeat(200), null], cols, [0, 1])).toMatch(/^id=1, na`me='x+\.\.\.$/);
  });
  it('metadata query quotes names as strings', () => {
    expect(generatedColumnsSql("o'k", 't')).toContain("TABLE_SCHEMA = 'o\\'k'");
  });
});
