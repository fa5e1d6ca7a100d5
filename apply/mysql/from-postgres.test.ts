import { describe, expect, it } from 'vitest';
import type { Column } from '../../record/record.ts';
import { thrown } from '../../test/fixtures/type-map-kit.ts';
import { checkMysqlTarget, mysqlCreateTableSql, pgToMysql, pgValueToMysql, timestamptzToUtc } from './from-postgres.ts';

const at = { schema: 'app', table: 't', column: 'c' };
const col = (type: string, columnType: string): Column => ({ name: 'c', type, columnType });
const target = (columnType: string, charset: string | null = null) => ({ name: 'c', columnType, charset });
const code = thrown;

describe('PostgreSQL → MariaDB type mapping', () => {
  it.each([
    ['bool', 'boolean', 'tinyint(1)', null, 'bool'],
    ['int2', 'smallint', 'smallint(6)', null, 'int'],
    ['int4', 'integer', 'int(11)', null, 'int'],
    ['int8', 'bigint', 'bigint(20)', null, 'int'],
    ['numeric', 'numeric(38,10)', 'decimal(38,10)', null, 'decimal'],
    ['numeric', 'numeric(65,30)', 'decimal(65,30)', null, 'decimal'],
    ['float4', 'real', 'float', null, 'float4'],
    ['float8', 'double precision', 'double', null, 'float8'],
    ['text', 'text', 'longtext', 'utf8mb4', 'text'],
    ['varchar', 'character varying(40)', 'varchar(40)', 'utf8mb4', 'text'],
    ['bpchar', 'character(3)', 'varchar(3)', 'utf8mb4', 'text'],
    ['bytea', 'bytea', 'longblob', null, 'bytes'],
    ['timestamp', 'timestamp(6) without time zone', 'datetime(6)', null, 'datetime'],
    ['timestamptz', 'timestamp with time zone', 'datetime(6)', null, 'datetime'],
    ['date', 'date', 'date', null, 'date'],
    ['time', 'time(3) without time zone', 'time(3)', null, 'time'],
    ['jsonb', 'jsonb', 'longtext', 'utf8mb4', 'text'],
    ['json', 'json', 'longtext', 'utf8mb4', 'text'],
    ['uuid', 'uuid', 'char(36)', 'ascii', 'text'],
    ['uuid', 'uuid', 'uuid', null, 'text'],
  ])('%s (%s) → %s', (type, ft, mysqlType, charset, canon) => {
    const r = checkMysqlTarget(at, col(type, ft), target(mysqlType, charset));
    expect(r.canon).toBe(canon);
    expect(r.column.name).toBe('c');
    expect(pgToMysql(at, col(type, ft)).canon).toBe(canon);
  });

  it("the written column is the target's own type", () => {
    const r = checkMysqlTarget(at, col('int4', 'integer'), target('bigint(20)'));
    expect(r.column).toEqual({ name: 'c', type: 'bigint', columnType: 'bigint', unsigned: false });
  });

  it.each([
    ['int8', 'bigint', 'int(11)', null],
    ['int4', 'integer', 'int(10) unsigned', null],
    ['numeric', 'numeric(38,10)', 'decimal(38,9)', null],
    ['numeric', 'numeric(38,10)', 'decimal(37,10)', null],
    ['float8', 'double precision', 'float', null],
    ['text', 'text', 'longtext', 'latin1'],
    ['varchar', 'character varying(40)', 'varchar(39)', 'utf8mb4'],
    ['bpchar', 'character(3)', 'char(3)', 'utf8mb4'],
    ['bytea', 'bytea', 'binary(16)', null],
    ['timestamp', 'timestamp(6) without time zone', 'datetime(3)', null],
    ['timestamp', 'timestamp(0) without time zone', 'timestamp', null],
    ['uuid', 'uuid', 'char(32)', 'ascii'],
  ])('%s (%s) on a %s %s column is refused, naming the types', (type, ft, mysqlType, charset) => {
    const msg = code(() => checkMysqlTarget(at, col(type, ft), target(mysqlType, charset)));
    expect(msg).toMatch(/^APPLY_TYPE_MAP: table app\.t column c: the MariaDB target's type /);
    expect(msg).toContain(`ALTER it to ${pgToMysql(at, col(type, ft)).suggested}`);
  });

  it.each([
    ['_int4', 'integer[]'],
    ['interval', 'interval'],
    ['numeric', 'numeric'],
    ['numeric', 'numeric(70,2)'],
    ['timetz', 'time with time zone'],
    ['int4range', 'int4range'],
    ['inet', 'inet'],
  ])('%s (%s) has no mapping: APPLY_TYPE_MAP naming table, column and type', (type, ft) => {
    expect(code(() => pgToMysql(at, col(type, ft)))).toMatch(
      new RegExp(`^APPLY_TYPE_MAP: table app\\.t column c has type ${ft.replace(/[[\]()]/g, '\\$&')}: `),
    );
  });
});

describe('PostgreSQL values → MariaDB record values', () => {
  const v = (type: string, ft: string, x: Parameters<typeof pgValueToMysql>[2]) => pgValueToMysql(at, col(type, ft), x);

  it('keeps every value exact', () => {
    expect(v('bool', 'boolean', 't')).toBe(1n);
    expect(v('bool', 'boolean', 'f')).toBe(0n);
    expect(v('int8', 'bigint', '-9223372036854775808')).toBe(-9223372036854775808n);
    expect(v('numeric', 'numeric(38,10)', '1234567890123456789012345678.0123456789')).toBe(
      '1234567890123456789012345678.0123456789',
    );
    expect(v('float4', 'real', '3.4028235e+38')).toBe(3.4028235e38);
    expect(v('float8', 'double precision', '-0')).toBe(-0);
    expect(v('timestamp', 'timestamp(6) without time zone', '2024-02-29 23:59:59.123456')).toBe(
      '2024-02-29 23:59:59.123456',
    );
    expect(v('timestamptz', 'timestamp(6) with time zone', '2024-02-29 23:59:59.123456+00')).toBe(
      '2024-02-29 23:59:59.123456',
    );
    expect(v('text', 'text', '𝄞 ü 😀')).toBe('𝄞 ü 😀');
    expect(v('bytea', 'bytea', new Uint8Array(0))).toEqual(new Uint8Array(0));
    expect(v('bpchar', 'character(4)', 'ab  ')).toBe('ab  ');
    expect(v('int4', 'integer', null)).toBeNull();
  });

  it('timestamptz text with any offset → UTC, the fraction kept', () => {
    expect(timestamptzToUtc('2024-01-01 00:30:00.5+05:30')).toBe('2023-12-31 19:00:00.5');
    expect(timestamptzToUtc('2024-12-31 23:00:00-08')).toBe('2025-01-01 07:00:00');
    expect(timestamptzToUtc('0099-06-01 00:00:00+00')).toBe('0099-06-01 00:00:00');
    expect(timestamptzToUtc('infinity')).toBeNull();
  });

  it.each([
    ['numeric', 'numeric(10,2)', 'NaN'],
    ['float8', 'double precision', 'Infinity'],
    ['float4', 'real', 'NaN'],
    ['date', 'date', '0044-03-15 BC'],
    ['date', 'date', 'infinity'],
    ['timestamp', 'timestamp without time zone', '-infinity'],
    ['timestamptz', 'timestamp with time zone', '10000-01-01 00:00:00+00'],
  ])('%s value %j is refused: APPLY_VALUE_MAP', (type, ft, x) => {
    expect(code(() => v(type, ft, x))).toMatch(/^APPLY_VALUE_MAP: table app\.t column c \(/);
  });
});

describe('mysqlCreateTableSql', () => {
  it('creates every column with its suggested type in utf8mb4, the key last; an unmappable column refuses', () => {
    const cols = [
      { ...col('int8', 'bigint'), name: 'id' },
      { ...col('timestamptz', 'timestamp(3) with time zone'), name: 'at' },
      { ...col('bpchar', 'character(4)'), name: 'c`x' },
    ];
    expect(mysqlCreateTableSql('app', 't', cols, ['id'])).toBe(
      'CREATE TABLE `app`.`t` (`id` bigint, `at` datetime(3), `c``x` varchar(4), PRIMARY KEY (`id`)) DEFAULT CHARSET=utf8mb4',
    );
    expect(code(() => mysqlCreateTableSql('app', 't', [col('_text', 'text[]')], []))).toMatch(/^APPLY_TYPE_MAP: /);
  });
});
