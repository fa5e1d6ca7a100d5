/**
 * The PostgreSQL → MariaDB type mapping (issue #14 item 8; the table is in README.md "Cross-engine"): which MariaDB
 * column types each PostgreSQL column type may be applied to exactly, how each journal value (capture/postgres keeps
 * the server's text; bytea as bytes) becomes the record Value the MySQL applier writes (record/record.ts families),
 * and how verify compares it (engine/cross-compare.ts CanonKind). Whatever has no exact mapping (arrays, interval,
 * ranges, unconstrained numeric, timetz, …) is refused with APPLY_TYPE_MAP naming table, column and type; a value
 * MariaDB cannot hold exactly (NaN, ±Infinity, a BC or infinite date) with APPLY_VALUE_MAP. Pure.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { CanonKind } from '../../engine/cross-compare.ts';
import type { MysqlTargetColumn } from '../../mysql/cross-read.ts';
import { qualified, quoteIdent } from '../../mysql/sql.ts';
import { baseType, normalizeColumnType } from '../../mysql/types.ts';
import type { Column, Value } from '../../record/record.ts';

/** Names the column in errors. */
export interface ColumnAt {
  readonly schema: string;
  readonly table: string;
  readonly column: string;
}

export interface MysqlMapping {
  readonly canon: CanonKind;
  /** The MariaDB type a DBA should create. */
  readonly suggested: string;
  /** Does a target column take it exactly? (normalized COLUMN_TYPE, charset) */
  readonly accepts: (columnType: string, charset: string | null) => boolean;
}

const SIGNED_BITS: Readonly<Record<string, number>> = {
  tinyint: 8,
  smallint: 16,
  mediumint: 24,
  int: 32,
  integer: 32,
  bigint: 64,
};

const argsOf = (t: string): number[] => (/\(([\d,\s]+)\)/.exec(t)?.[1] ?? '').split(',').filter(Boolean).map(Number);
/** Fractional digits of a PostgreSQL timestamp/time format_type (no `(n)`: 6). */
const pgFsp = (t: string) => argsOf(/^\w+(\(\d+\))?/.exec(t)?.[0] ?? '')[0] ?? 6;
const mysqlFsp = (t: string) => argsOf(t)[0] ?? 0;

function intAtLeast(bits: number) {
  return (t: string) => {
    const b = baseType(t);
    if (SIGNED_BITS[b] !== undefined) return !/unsigned/.test(t) && SIGNED_BITS[b] >= bits;
    const [p, s] = argsOf(t);
    return b === 'decimal' && s === 0 && (p ?? 10) >= Math.ceil((bits - 1) * Math.log10(2)) + 1;
  };
}

const utf8 = (cs: string | null) => cs === 'utf8mb4';
const TEXTS = new Set(['text', 'mediumtext', 'longtext']);

function refuse(at: ColumnAt, type: string, why: string): never {
  throw new TidemarkError(
    `table ${at.schema}.${at.table} column ${at.column} has type ${type}: ${why}; it cannot be replicated to ` +
      'MariaDB exactly (exclude the table, or change the column type on the source)',
    { code: 'APPLY_TYPE_MAP', context: { ...at, type } },
  );
}

/** The mapping of a PostgreSQL column (Column.type = pg_type name, columnType = format_type), or APPLY_TYPE_MAP. */
export function pgToMysql(at: ColumnAt, c: Column): MysqlMapping {
  const ft = c.columnType ?? c.type;
  if (c.type.startsWith('_')) return refuse(at, ft, 'arrays have no MariaDB counterpart');
  switch (c.type) {
    case 'bool':
      return { canon: 'bool', suggested: 'tinyint(1)', accepts: (t) => baseType(t) === 'tinyint' };
    case 'int2':
      return { canon: 'int', suggested: 'smallint', accepts: intAtLeast(16) };
    case 'int4':
      return { canon: 'int', suggested: 'int', accepts: intAtLeast(32) };
    case 'int8':
      return { canon: 'int', suggested: 'bigint', accepts: intAtLeast(64) };
    case 'numeric': {
      const [p, s] = argsOf(ft);
      if (p === undefined) return refuse(at, ft, 'an unconstrained numeric may hold any scale (and NaN)');
      const scale = s ?? 0;
      if (p > 65 || scale > 38) return refuse(at, ft, 'MariaDB DECIMAL holds at most 65 digits, 38 after the point');
      return {
        canon: 'decimal',
        suggested: `decimal(${p},${scale})`,
        accepts: (t) => {
          const [tp, ts] = argsOf(t);
          return (
            baseType(t) === 'decimal' && !/unsigned/.test(t) && (ts ?? 0) === scale && (tp ?? 10) - scale >= p - scale
          );
        },
      };
    }
    case 'float4':
      return { canon: 'float4', suggested: 'float', accepts: (t) => t === 'float' };
    case 'float8':
      return { canon: 'float8', suggested: 'double', accepts: (t) => t === 'double' };
    case 'text':
      return { canon: 'text', suggested: 'longtext', accepts: (t, cs) => TEXTS.has(t) && utf8(cs) };
    case 'varchar':
    case 'bpchar': {
      // character(n) is written with its padding into a VARCHAR: MariaDB's CHAR strips trailing spaces on read.
      const n = argsOf(ft)[0];
      return {
        canon: 'text',
        suggested: n === undefined ? 'longtext' : `varchar(${n})`,
        accepts: (t, cs) =>
          utf8(cs) && (TEXTS.has(t) || (baseType(t) === 'varchar' && n !== undefined && (argsOf(t)[0] ?? 0) >= n)),
      };
    }
    case 'json':
    case 'jsonb':
      // MariaDB's JSON is LONGTEXT (information_schema says longtext): the server's json text is kept as written.
      return { canon: 'text', suggested: 'json', accepts: (t, cs) => (t === 'longtext' || t === 'json') && utf8(cs) };
    case 'uuid':
      return {
        canon: 'text',
        suggested: 'char(36)',
        accepts: (t) =>
          t === 'uuid' || ((baseType(t) === 'char' || baseType(t) === 'varchar') && (argsOf(t)[0] ?? 0) >= 36),
      };
    case 'bytea':
      return {
        canon: 'bytes',
        suggested: 'longblob',
        accepts: (t) => ['blob', 'mediumblob', 'longblob'].includes(t) || baseType(t) === 'varbinary',
      };
    case 'date':
      return { canon: 'date', suggested: 'date', accepts: (t) => t === 'date' };
    case 'timestamp':
    case 'timestamptz': {
      const fsp = pgFsp(ft);
      // timestamptz → DATETIME(n) holding UTC (MariaDB TIMESTAMP only spans 1970–2038, but is taken too).
      return {
        canon: 'datetime',
        suggested: `datetime(${fsp})`,
        accepts: (t) =>
          (baseType(t) === 'datetime' || (c.type === 'timestamptz' && baseType(t) === 'timestamp')) &&
          mysqlFsp(t) >= fsp,
      };
    }
    case 'time': {
      const fsp = pgFsp(ft);
      return { canon: 'time', suggested: `time(${fsp})`, accepts: (t) => baseType(t) === 'time' && mysqlFsp(t) >= fsp };
    }
    case 'interval':
      return refuse(at, ft, 'an interval with months or days has no MariaDB counterpart');
    default:
      return refuse(at, ft, 'no mapping is defined for this type');
  }
}

/**
 * Checks that the target column takes the source column exactly and returns the record Column the MySQL applier
 * writes with (the target's own type), plus how verify compares it. APPLY_TYPE_MAP otherwise.
 */
export function checkMysqlTarget(
  at: ColumnAt,
  c: Column,
  target: MysqlTargetColumn,
): { column: Column; canon: CanonKind } {
  const m = pgToMysql(at, c);
  const t = normalizeColumnType(target.columnType);
  if (!m.accepts(t, target.charset)) {
    throw new TidemarkError(
      `table ${at.schema}.${at.table} column ${at.column}: the MariaDB target's type ${t}` +
        `${target.charset ? ` (${target.charset})` : ''} does not hold the source's ${c.columnType ?? c.type} exactly; ` +
        `ALTER it to ${m.suggested}${m.canon === 'text' ? ' CHARACTER SET utf8mb4' : ''} (apply/mysql/README.md "Cross-engine")`,
      { code: 'APPLY_TYPE_MAP', context: { ...at, type: c.columnType ?? c.type, target_type: t } },
    );
  }
  const type = baseType(t);
  const column: Column = /^(tinyint|smallint|mediumint|int|bigint|decimal|float|double)$/.test(type)
    ? { name: c.name, type, columnType: t, unsigned: /unsigned/.test(t) }
    : { name: c.name, type, columnType: t };
  return { column, canon: m.canon };
}

function badValue(at: ColumnAt, type: string, why: string): never {
  throw new TidemarkError(
    `table ${at.schema}.${at.table} column ${at.column} (${type}): ${why}, which MariaDB cannot hold exactly; ` +
      'correct the row on the source (or exclude the table) and re-baseline it',
    { code: 'APPLY_VALUE_MAP', context: { ...at, type } },
  );
}

const PG_DATE = /^(\d{4})-\d\d-\d\d/;
const TZ = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?$/;
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** A timestamptz text (any offset) as UTC `YYYY-MM-DD hh:mm:ss[.f]`; null when it is not one. */
export function timestamptzToUtc(s: string): string | null {
  const m = TZ.exec(s);
  if (!m) return null;
  const sign = m[8] === '-' ? -1 : 1;
  const offset = sign * (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0));
  const d = new Date(0);
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]) - offset);
  const y = d.getUTCFullYear();
  if (y < 1 || y > 9999) return null;
  return (
    `${pad(y, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${m[7] ?? ''}`
  );
}

/** A journal value of PostgreSQL column `c` as the record Value the MySQL applier writes into the mapped column. */
export function pgValueToMysql(at: ColumnAt, c: Column, v: Value): Value {
  if (v === null || v instanceof Uint8Array) return v;
  const s = String(v);
  const type = c.columnType ?? c.type;
  switch (pgToMysql(at, c).canon) {
    case 'bool':
      if (s !== 't' && s !== 'f') badValue(at, type, `the value ${s} is not a boolean`);
      return s === 't' ? 1n : 0n;
    case 'int':
      return BigInt(s);
    case 'decimal':
      if (!/^-?\d+(\.\d+)?$/.test(s)) badValue(at, type, `the value ${s} is not a finite number`);
      return s;
    case 'float4':
    case 'float8': {
      const n = Number(s);
      if (!Number.isFinite(n)) badValue(at, type, `the value ${s} is not finite`);
      return n;
    }
    case 'date':
    case 'datetime': {
      const utc = c.type === 'timestamptz' ? timestamptzToUtc(s) : s;
      if (utc === null || !PG_DATE.test(utc) || / BC$/.test(utc) || utc.startsWith('0000')) {
        badValue(at, type, `the value ${s} lies outside years 1–9999`);
      }
      return utc;
    }
    default:
      return s;
  }
}

/**
 * The CREATE TABLE a DBA can run on the MariaDB target for a PostgreSQL table (each column's suggested type, utf8mb4,
 * the primary key); APPLY_TYPE_MAP when a column has no mapping. The applier names it when the table is missing.
 */
export function mysqlCreateTableSql(
  schema: string,
  table: string,
  columns: readonly Column[],
  pk: readonly string[],
): string {
  const cols = columns.map((c) => `${quoteIdent(c.name)} ${pgToMysql({ schema, table, column: c.name }, c).suggested}`);
  if (pk.length > 0) cols.push(`PRIMARY KEY (${pk.map(quoteIdent).join(', ')})`);
  return `CREATE TABLE ${qualified(schema, table)} (${cols.join(', ')}) DEFAULT CHARSET=utf8mb4`;
}
