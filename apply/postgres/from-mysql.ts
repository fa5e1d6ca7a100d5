/**
 * The MariaDB/MySQL → PostgreSQL type mapping (issue #14 item 8; the table is in README.md "Cross-engine"): which
 * PostgreSQL column types each MariaDB column type may be applied to exactly, how each journal value (record/
 * record.ts, MySQL families) becomes the text parameter the target column's input function reads, and how verify
 * compares it (engine/cross-compare.ts CanonKind). Whatever has no exact mapping is refused with APPLY_TYPE_MAP
 * naming table, column and type (at the first row of a table, before anything of it is written); a value the target
 * type cannot hold exactly (a zero date, a NUL character, ENUM index 0, a TIME outside a `time` column's day) with
 * APPLY_VALUE_MAP. Pure.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { CanonKind } from '../../engine/cross-compare.ts';
import { qualifiedName, quoteIdent } from '../../postgres/sql.ts';
import type { Column, Value } from '../../record/record.ts';

/** Names the column in errors. */
export interface ColumnAt {
  readonly schema: string;
  readonly table: string;
  readonly column: string;
}

/** A MariaDB column's mapping: how it compares, the type to create, and whether a target type takes it. */
export interface PgMapping {
  readonly canon: CanonKind;
  /** The PostgreSQL type a DBA should create (format_type spelling). */
  readonly suggested: string;
  readonly accepts: (pgType: string) => boolean;
}

const INT_BITS: Readonly<Record<string, number>> = { smallint: 16, integer: 32, bigint: 64 };
/** Bits a signed integer needs for the source type (unsigned: one more), and its largest value's digits. */
const MYSQL_INT: Readonly<Record<string, { bits: number; digits: number; udigits: number }>> = {
  tinyint: { bits: 8, digits: 3, udigits: 3 },
  smallint: { bits: 16, digits: 5, udigits: 5 },
  mediumint: { bits: 24, digits: 7, udigits: 8 },
  int: { bits: 32, digits: 10, udigits: 10 },
  integer: { bits: 32, digits: 10, udigits: 10 },
  bigint: { bits: 64, digits: 19, udigits: 20 },
  year: { bits: 16, digits: 4, udigits: 4 },
};

/** `numeric(p,s)` → [p, s]; `numeric` → null (unconstrained); other types → undefined. */
export function pgNumeric(t: string): [number, number] | null | undefined {
  if (t === 'numeric') return null;
  const m = /^numeric\((\d+),(\d+)\)$/.exec(t);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** The `(n)` of a type text, or `dflt`. */
export function typeArg(t: string | undefined, dflt: number): number {
  const m = t ? /\((\d+)/.exec(t) : null;
  return m ? Number(m[1]) : dflt;
}

/** `(p,s)` of a decimal type text (MySQL's default precision 10, scale 0). */
export function precisionScale(t: string | undefined): [number, number] {
  const m = t ? /\((\d+)(?:,\s*(\d+))?\)/.exec(t) : null;
  return m ? [Number(m[1]), Number(m[2] ?? 0)] : [10, 0];
}

/** Fractional digits of a PostgreSQL timestamp/time format_type (no `(n)`: 6). */
const pgFsp = (t: string) => typeArg(/^\w+(\(\d+\))?/.exec(t)?.[0], 6);

function intMapping(c: Column): PgMapping {
  const spec = MYSQL_INT[c.type]!;
  const unsigned = c.unsigned === true && c.type !== 'year';
  const bits = spec.bits + (unsigned ? 1 : 0);
  const digits = unsigned ? spec.udigits : spec.digits;
  const fitting = Object.keys(INT_BITS).filter((k) => INT_BITS[k]! >= bits);
  return {
    canon: 'int',
    suggested: fitting[0] ?? 'numeric(20,0)',
    accepts: (t) => {
      if (INT_BITS[t] !== undefined) return INT_BITS[t] >= bits;
      const n = pgNumeric(t);
      return n === null || (n !== undefined && n[1] === 0 && n[0] >= digits);
    },
  };
}

const varcharAtLeast = (n: number) => (t: string) => {
  if (t === 'text' || t === 'character varying') return true;
  const m = /^character varying\((\d+)\)$/.exec(t);
  return m !== null && Number(m[1]) >= n;
};

function refuse(at: ColumnAt, type: string, why: string): never {
  throw new TidemarkError(
    `table ${at.schema}.${at.table} column ${at.column} has type ${type}: ${why}; it cannot be replicated to ` +
      'PostgreSQL exactly (exclude the table, or change the column type on the source)',
    { code: 'APPLY_TYPE_MAP', context: { ...at, type } },
  );
}

/** The mapping of a MariaDB column, or APPLY_TYPE_MAP when it has none. */
export function mysqlToPg(at: ColumnAt, c: Column): PgMapping {
  const ct = c.columnType ?? c.type;
  if (MYSQL_INT[c.type]) return intMapping(c);
  switch (c.type) {
    case 'bit': {
      const n = typeArg(ct, 1);
      return {
        canon: 'bits',
        suggested: `bit(${n})`,
        accepts: (t) =>
          t === `bit(${n})` || t === 'bit varying' || typeArg(/^bit varying\(\d+\)$/.exec(t)?.[0], 0) >= n,
      };
    }
    case 'float':
      return { canon: 'float4', suggested: 'real', accepts: (t) => t === 'real' };
    case 'double':
    case 'real':
      return { canon: 'float8', suggested: 'double precision', accepts: (t) => t === 'double precision' };
    case 'decimal':
    case 'numeric': {
      const [p, s] = precisionScale(ct);
      return {
        canon: 'decimal',
        suggested: `numeric(${p},${s})`,
        accepts: (t) => {
          const n = pgNumeric(t);
          return n === null || (n !== undefined && n[1] === s && n[0] - n[1] >= p - s);
        },
      };
    }
    case 'date':
      return { canon: 'date', suggested: 'date', accepts: (t) => t === 'date' };
    case 'datetime':
    case 'timestamp': {
      const fsp = typeArg(ct, 0);
      const tz = c.type === 'timestamp' ? 'with' : 'without';
      return {
        canon: 'datetime',
        suggested: `timestamp(${fsp}) ${tz} time zone`,
        accepts: (t) => t.startsWith('timestamp') && t.endsWith(` ${tz} time zone`) && pgFsp(t) >= fsp,
      };
    }
    case 'time': {
      const fsp = typeArg(ct, 0);
      return {
        canon: 'time',
        suggested: 'interval',
        accepts: (t) => t === 'interval' || (/^time(\(\d\))? without time zone$/.test(t) && pgFsp(t) >= fsp),
      };
    }
    case 'char':
    case 'varchar':
    case 'enum':
    case 'set': {
      const n = c.type === 'enum' || c.type === 'set' ? 0 : typeArg(ct, 1);
      return { canon: 'text', suggested: n > 0 ? `character varying(${n})` : 'text', accepts: varcharAtLeast(n) };
    }
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
    case 'json':
      // MariaDB's JSON is LONGTEXT: PostgreSQL `json` keeps its text as written; `jsonb` would reorder keys, drop
      // duplicate keys and rewrite numbers' spelling, so it is not offered.
      return {
        canon: 'text',
        suggested: c.type === 'json' ? 'json' : 'text',
        accepts: (t) => t === 'text' || t === 'json',
      };
    case 'binary':
    case 'varbinary':
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
      return { canon: 'bytes', suggested: 'bytea', accepts: (t) => t === 'bytea' };
    case 'geometry':
    case 'point':
    case 'linestring':
    case 'polygon':
    case 'multipoint':
    case 'multilinestring':
    case 'multipolygon':
    case 'geometrycollection':
      return refuse(at, ct, 'spatial types have no exact PostgreSQL counterpart without PostGIS');
    default:
      return refuse(at, ct, 'no mapping is defined for this type');
  }
}

/** Checks that the target column's type takes the source column exactly; its CanonKind, else APPLY_TYPE_MAP. */
export function checkPgTarget(at: ColumnAt, c: Column, pgType: string): CanonKind {
  const m = mysqlToPg(at, c);
  if (!m.accepts(pgType)) {
    throw new TidemarkError(
      `table ${at.schema}.${at.table} column ${at.column}: the PostgreSQL target's type ${pgType} does not hold the ` +
        `source's ${c.columnType ?? c.type} exactly; ALTER it to ${m.suggested} (apply/postgres/README.md "Cross-engine")`,
      { code: 'APPLY_TYPE_MAP', context: { ...at, type: c.columnType ?? c.type, target_type: pgType } },
    );
  }
  return m.canon;
}

function badValue(at: ColumnAt, type: string, why: string): never {
  throw new TidemarkError(
    `table ${at.schema}.${at.table} column ${at.column} (${type}): ${why}, which PostgreSQL cannot hold exactly; ` +
      'correct the row on the source (or exclude the table) and re-baseline it',
    { code: 'APPLY_VALUE_MAP', context: { ...at, type } },
  );
}

const DATE = /^(\d{4})-(\d\d)-(\d\d)/;

function checkDate(at: ColumnAt, type: string, s: string): void {
  const m = DATE.exec(s);
  if (!m || m[1] === '0000' || m[2] === '00' || m[3] === '00') badValue(at, type, `the value ${s} is a zero date`);
}

/**
 * A journal value of MariaDB column `c` as the text (or bytes) the PostgreSQL column of type `pgType` reads exactly.
 */
export function mysqlValueToPg(at: ColumnAt, c: Column, pgType: string, v: Value): Value {
  if (v === null) return null;
  const type = c.columnType ?? c.type;
  const kind = mysqlToPg(at, c).canon;
  switch (kind) {
    case 'int':
      return typeof v === 'bigint' ? v.toString() : String(v);
    case 'bits': {
      const n = typeArg(type, 1);
      const num = v instanceof Uint8Array ? BigInt(`0x${Buffer.from(v).toString('hex') || '0'}`) : BigInt(v as bigint);
      return num.toString(2).padStart(n, '0');
    }
    case 'float4':
    case 'float8':
      return Object.is(v, -0) ? '-0' : String(v);
    case 'bytes':
      return v;
    case 'date':
      checkDate(at, type, String(v));
      return v;
    case 'datetime':
      checkDate(at, type, String(v));
      return c.type === 'timestamp' ? `${v}+00` : v; // a MariaDB TIMESTAMP travels as UTC text
    case 'time': {
      const s = String(v);
      if (pgType !== 'interval' && !/^([01]\d|2[0-3]):\d\d:\d\d(\.\d+)?$|^24:00:00(\.0+)?$/.test(s)) {
        badValue(at, type, `the value ${s} lies outside a ${pgType} column's day (map TIME to interval)`);
      }
      return s;
    }
    default: {
      if (v === 0n && c.type === 'enum') badValue(at, type, 'the value is ENUM index 0 (an invalid label)');
      const s = String(v);
      if (s.includes('\0')) badValue(at, type, 'the value holds a NUL character');
      return s;
    }
  }
}

/**
 * The CREATE TABLE a DBA can run on the PostgreSQL target for a MariaDB table (each column's suggested type, the
 * primary key); APPLY_TYPE_MAP when a column has no mapping. The applier names it when the table is missing.
 */
export function pgCreateTableSql(
  schema: string,
  table: string,
  columns: readonly Column[],
  pk: readonly string[],
): string {
  const cols = columns.map((c) => `${quoteIdent(c.name)} ${mysqlToPg({ schema, table, column: c.name }, c).suggested}`);
  if (pk.length > 0) cols.push(`PRIMARY KEY (${pk.map(quoteIdent).join(', ')})`);
  return `CREATE TABLE ${qualifiedName(schema, table)} (${cols.join(', ')})`;
}
