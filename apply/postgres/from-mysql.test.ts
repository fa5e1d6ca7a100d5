import { describe, expect, it } from 'vitest';
import type { Column } from '../../record/record.ts';
import { thrown } from '../../test/fixtures/type-map-kit.ts';
import { checkPgTarget, mysqlToPg, mysqlValueToPg, pgCreateTableSql } from './from-mysql.ts';

const at = { schema: 'shop', table: 't', column: 'c' };
const col = (columnType: string): Column => {
  const type = /^[a-z]+/.exec(columnType)![0];
  return { name: 'c', type, columnType, unsigned: columnType.includes('unsigned') };
};
const code = thrown;

describe('MariaDB → PostgreSQL type mapping', () => {
  it.each([
    ['tinyint', 'smallint', 'int'],
    ['tinyint unsigned', 'smallint', 'int'],
    ['smallint unsigned', 'integer', 'int'],
    ['mediumint', 'integer', 'int'],
    ['int', 'integer', 'int'],
    ['int unsigned', 'bigint', 'int'],
    ['bigint', 'bigint', 'int'],
    ['bigint unsigned', 'numeric(20,0)', 'int'],
    ['year', 'smallint', 'int'],
    ['bit(5)', 'bit(5)', 'bits'],
    ['float', 'real', 'float4'],
    ['double', 'double precision', 'float8'],
    ['decimal(38,10)', 'numeric(38,10)', 'decimal'],
    ['date', 'date', 'date'],
    ['datetime(6)', 'timestamp(6) without time zone', 'datetime'],
    ['timestamp(3)', 'timestamp(3) with time zone', 'datetime'],
    ['time(2)', 'interval', 'time'],
    ['varchar(20)', 'character varying(20)', 'text'],
    ["enum('a','b')", 'text', 'text'],
    ['longtext', 'text', 'text'],
    ['json', 'json', 'text'],
    ['varbinary(8)', 'bytea', 'bytes'],
    ['longblob', 'bytea', 'bytes'],
  ])('%s → %s (%s), accepted as created', (mysqlType, suggested, canon) => {
    const m = mysqlToPg(at, col(mysqlType));
    expect(m.suggested).toBe(suggested);
    expect(m.canon).toBe(canon);
    expect(checkPgTarget(at, col(mysqlType), suggested)).toBe(canon);
  });

  it.each([
    ['int unsigned', 'integer'],
    ['bigint unsigned', 'bigint'],
    ['bigint unsigned', 'numeric(19,0)'],
    ['tinyint', 'boolean'],
    ['decimal(38,10)', 'numeric(38,9)'],
    ['decimal(38,10)', 'numeric(37,10)'],
    ['decimal(10,2)', 'double precision'],
    ['float', 'double precision'],
    ['datetime(6)', 'timestamp(3) without time zone'],
    ['datetime(6)', 'timestamp(6) with time zone'],
    ['timestamp(6)', 'timestamp(6) without time zone'],
    ['varchar(20)', 'character varying(10)'],
    ['char(3)', 'character(3)'],
    ['json', 'jsonb'],
    ['blob', 'text'],
    ['bit(8)', 'bit(4)'],
    ['time(6)', 'time(0) without time zone'],
  ])('%s is refused on a %s column, naming table, column and both types', (mysqlType, pgType) => {
    const msg = code(() => checkPgTarget(at, col(mysqlType), pgType));
    expect(msg).toMatch(/^APPLY_TYPE_MAP: table shop\.t column c: /);
    expect(msg).toContain(pgType);
    expect(msg).toContain(`ALTER it to ${mysqlToPg(at, col(mysqlType)).suggested}`);
  });

  it('wider targets are taken: int → bigint, decimal(10,2) → numeric(12,2) or numeric, datetime(3) → timestamp(6)', () => {
    expect(checkPgTarget(at, col('int'), 'bigint')).toBe('int');
    expect(checkPgTarget(at, col('decimal(10,2)'), 'numeric(12,2)')).toBe('decimal');
    expect(checkPgTarget(at, col('decimal(10,2)'), 'numeric')).toBe('decimal');
    expect(checkPgTarget(at, col('datetime(3)'), 'timestamp without time zone')).toBe('datetime');
    expect(checkPgTarget(at, col('time'), 'time without time zone')).toBe('time');
    expect(checkPgTarget(at, col('varchar(5)'), 'text')).toBe('text');
  });

  it.each(['geometry', 'point', 'polygon', 'vector(3)'])('%s has no mapping: APPLY_TYPE_MAP', (t) => {
    expect(code(() => mysqlToPg(at, col(t)))).toMatch(/^APPLY_TYPE_MAP: table shop\.t column c has type /);
  });
});

describe('MariaDB values → PostgreSQL text', () => {
  const v = (t: string, pg: string, x: Parameters<typeof mysqlValueToPg>[3]) => mysqlValueToPg(at, col(t), pg, x);

  it('keeps every value exact', () => {
    expect(v('bigint unsigned', 'numeric(20,0)', 18446744073709551615n)).toBe('18446744073709551615');
    expect(v('bigint', 'bigint', -9223372036854775808n)).toBe('-9223372036854775808');
    expect(v('decimal(38,10)', 'numeric(38,10)', '-1234567890123456789012345678.0123456789')).toBe(
      '-1234567890123456789012345678.0123456789',
    );
    expect(v('datetime(6)', 'timestamp(6) without time zone', '9999-12-31 23:59:59.999999')).toBe(
      '9999-12-31 23:59:59.999999',
    );
    expect(v('timestamp(6)', 'timestamp(6) with time zone', '2038-01-19 03:14:07.000001')).toBe(
      '2038-01-19 03:14:07.000001+00',
    );
    expect(v('time(6)', 'interval', '-838:59:59.000000')).toBe('-838:59:59.000000');
    expect(v('float', 'real', 0.1)).toBe('0.1');
    expect(v('double', 'double precision', -0)).toBe('-0');
    expect(v('double', 'double precision', 1.7976931348623157e308)).toBe('1.7976931348623157e+308');
    expect(v('bit(5)', 'bit(5)', 5n)).toBe('00101');
    expect(v('varchar(20)', 'text', 'a😀b')).toBe('a😀b');
    expect(v("enum('x','')", 'text', '')).toBe('');
    expect(v('varbinary(8)', 'bytea', new Uint8Array(0))).toEqual(new Uint8Array(0));
    expect(v('json', 'json', '{"b": 1, "a": [1.50]}')).toBe('{"b": 1, "a": [1.50]}');
    expect(v('int', 'integer', null)).toBeNull();
  });

  it.each([
    ['date', 'date', '0000-00-00'],
    ['datetime(6)', 'timestamp(6) without time zone', '2020-00-10 00:00:00.000000'],
    ['timestamp', 'timestamp(0) with time zone', '0000-00-00 00:00:00'],
    ['varchar(5)', 'text', 'a\0b'],
    ['time', 'time(0) without time zone', '25:00:00'],
    ['time', 'time(0) without time zone', '-01:00:00'],
  ])('%s value %j on %s is refused: APPLY_VALUE_MAP', (t, pg, x) => {
    expect(code(() => v(t, pg, x))).toMatch(/^APPLY_VALUE_MAP: table shop\.t column c \(/);
  });

  it('ENUM index 0 is refused', () => {
    expect(code(() => v("enum('a')", 'text', 0n))).toMatch(/^APPLY_VALUE_MAP: .*ENUM index 0/);
  });
});

describe('pgCreateTableSql', () => {
  it('creates every column with its suggested type, the key last; an unmappable column refuses', () => {
    const cols = [
      col('int unsigned'),
      { ...col('decimal(38,10)'), name: 'a"b' },
      { ...col('datetime(6)'), name: 'at' },
    ];
    cols[0] = { ...cols[0]!, name: 'id' };
    expect(pgCreateTableSql('shop', 'T x', cols, ['id'])).toBe(
      'CREATE TABLE "shop"."T x" ("id" bigint, "a""b" numeric(38,10), "at" timestamp(6) without time zone, PRIMARY KEY ("id"))',
    );
    expect(code(() => pgCreateTableSql('shop', 't', [col('point')], []))).toMatch(
      /^APPLY_TYPE_MAP: table shop\.t column c /,
    );
  });
});
