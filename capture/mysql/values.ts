/**
 * Value normalization: turns the JavaScript values that zongji decodes from binlog row images, and the values
 * mysql2 returns for the baseline SELECT, into one canonical Value form per column type (record/record.ts).
 * Both paths go through `normalizeValue`, so a row read by the baseline and the same row read from the binlog
 * are identical. Column metadata is derived from the column type text, which both paths have (zongji builds it
 * from binlog_row_metadata=FULL, information_schema.COLUMNS gives it to the baseline). Pure.
 *
 *   kind       column types                          raw input (zongji | mysql2)              Value
 *   int        tinyint..bigint, signed/unsigned      number | exact string beyond 2^53         bigint
 *   year       year                                  number (zongji gives 1900 for 0000)       bigint (0n for 0000)
 *   bit        bit(n)                                Buffer, big-endian                        bigint
 *   float      float                                 number (float32 widened | 6-digit text*)  shortest decimal that
 *                                                                                              round-trips the float32
 *   double     double                                number                                    number
 *   decimal    decimal(p,s)                          exact string                              string as is
 *   date       date                                  "YYYY-MM-DD" (dateStrings)                string
 *   datetime   datetime(fsp), timestamp(fsp)         string (timestamp in UTC: timezone 'Z')   string, exactly fsp digits
 *   time       time(fsp)                             "[-]hhh:mm:ss[.f]"                        string, exactly fsp digits
 *   text       char, varchar, *text, json (MariaDB)  string                                    string
 *   enum       enum                                  label (zongji: undefined for index 0)      string, or 0n for the
 *                                                   (baseline: "index:label", see baseline.ts)  invalid-value index 0
 *   set        set                                   comma-joined labels                       string
 *   binary     binary, varbinary, *blob              Buffer                                    Uint8Array (a copy)
 *              uuid, inet4, inet6 (MariaDB)          Buffer (baseline: CAST(c AS BINARY))      Uint8Array; column
 *                                                                                              metadata binary(16|4|16)
 *   geometry   geometry, point, linestring, polygon,  Buffer: SRID (4 bytes LE) + WKB, as       Uint8Array (a copy)
 *              multi*, geometrycollection             stored (events.ts has zongji pass it raw;
 *                                                   baseline: CAST(c AS BINARY))
 *
 * (*) the server prints FLOAT with 6 significant digits, which loses data, so the baseline selects FLOAT columns
 * as CAST(col AS DOUBLE) (see baseline.ts) and both paths then see the exact float32 value.
 * ENUM index 0 (the "invalid value" a non-strict server stores for an unknown label) reads as '' like an empty
 * label, so it is carried as 0n, never as '': a genuine '' member stays ''. (Journals written before this carry
 * '' for both.) MariaDB UUID/INET4/INET6 travel as their 16/4/16-byte binary form, which is what the binlog holds
 * (binlog_row_metadata=FULL describes them as BINARY(n)); written back as X'…' they are stored identically.
 * Spatial values travel as the column's stored bytes (SRID + WKB), so the SRID and every coordinate bit survive;
 * written back as X'…' they are stored identically. Unsupported (refused loudly, never silently mangled): MariaDB
 * VECTOR. The kind of each column
 * type is the one type-family table of the MySQL layer (mysql/types.ts), shared with apply and rewind.
 */
import type { Column, Value } from '../../record/record.ts';
import { TidemarkError } from '../../core/errors.ts';
import {
  BINARY_STORED,
  baseType,
  NUMERIC_FAMILIES,
  normalizeColumnType,
  typeFamily,
  type ValueKind,
} from '../../mysql/types.ts';

export type { ValueKind } from '../../mysql/types.ts';

/** How to normalize one column, plus its record metadata. */
export interface ColumnSpec {
  readonly name: string;
  readonly kind: ValueKind;
  /** Fractional-second digits for datetime/timestamp/time (0-6). */
  readonly fsp: number;
  readonly column: Column;
}

/** Builds the spec of a column from its name and type text (information_schema or zongji's table map). */
export function columnSpec(name: string, rawColumnType: string): ColumnSpec {
  const normalized = normalizeColumnType(rawColumnType);
  const columnType = BINARY_STORED[normalized] ?? normalized;
  const type = baseType(columnType);
  const kind: ValueKind = typeFamily(type);
  let fsp = 0;
  if (kind === 'datetime' || kind === 'time') {
    const m = /^[a-z]+\((\d)\)/.exec(columnType);
    fsp = m?.[1] ? Number(m[1]) : 0;
  }
  const column: Column = NUMERIC_FAMILIES.has(kind)
    ? { name, type, columnType, unsigned: /\bunsigned\b/.test(columnType) }
    : { name, type, columnType };
  return { name, kind, fsp, column };
}

function valueError(spec: ColumnSpec, what: string): TidemarkError {
  // Never include the value itself: row data may be sensitive.
  return new TidemarkError(`column ${spec.name} (${spec.column.columnType}): ${what}`, {
    code: 'VALUE',
    retriable: false,
    context: { column: spec.name, type: spec.column.columnType ?? spec.column.type },
  });
}

/** The shortest decimal number that converts back to the same float32 (what the server prints for FLOAT). */
export function float32Shortest(x: number): number {
  const f = Math.fround(x);
  if (f === 0) return 0;
  if (!Number.isFinite(f)) return f;
  for (let p = 1; p <= 9; p++) {
    const c = Number(f.toPrecision(p));
    if (Math.fround(c) === f) return c;
  }
  return f;
}

/** Pads or cuts the fractional seconds of a temporal string to exactly `fsp` digits. */
export function withFsp(s: string, fsp: number): string {
  const dot = s.indexOf('.');
  // Already exactly `fsp` digits (what zongji and the server print): no new string.
  if (dot < 0 ? fsp === 0 : s.length - dot - 1 === fsp && fsp > 0) return s;
  const whole = dot < 0 ? s : s.slice(0, dot);
  if (fsp === 0) return whole;
  const frac = dot < 0 ? '' : s.slice(dot + 1);
  return `${whole}.${frac.padEnd(fsp, '0').slice(0, fsp)}`;
}

/** /^-?\d+(\.\d+)?$/ without the regular expression (a hot path: every DECIMAL value of every captured row). */
export function isDecimalText(s: string): boolean {
  const n = s.length;
  let i = n > 0 && s.charCodeAt(0) === 45 ? 1 : 0; // '-'
  const intStart = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  if (i === intStart) return false;
  if (i === n) return true;
  if (s.charCodeAt(i) !== 46) return false; // '.'
  const fracStart = ++i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  return i === n && i > fracStart;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

function bytesToBigint(b: Uint8Array): bigint {
  let n = 0n;
  for (const byte of b) n = (n << 8n) | BigInt(byte);
  return n;
}

function toInteger(spec: ColumnSpec, raw: unknown): bigint {
  if (typeof raw === 'bigint') return raw;
  if (typeof raw === 'number' && Number.isSafeInteger(raw)) return BigInt(raw);
  if (typeof raw === 'string' && /^-?\d+$/.test(raw)) return BigInt(raw);
  throw valueError(spec, `expected an integer, got ${typeof raw}`);
}

function toText(spec: ColumnSpec, raw: unknown): string {
  if (typeof raw === 'string') return raw;
  throw valueError(spec, `expected text, got ${isBytes(raw) ? 'bytes' : typeof raw}`);
}

/** The Value of an ENUM column holding the invalid-value index 0 (a '' member is ''). */
export const ENUM_INVALID = 0n;

/**
 * The baseline selects an ENUM column as CONCAT(col + 0, ':', col) (see baseline.ts), since the label alone
 * cannot tell index 0 from a '' member: returns the raw value normalizeValue expects (undefined for index 0).
 */
export function baselineEnumRaw(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  const colon = raw.indexOf(':');
  if (colon < 0 || !/^\d+$/.test(raw.slice(0, colon))) return raw;
  return raw.slice(0, colon) === '0' ? undefined : raw.slice(colon + 1);
}

/** Normalizes one raw value (from zongji or mysql2) of the column described by `spec`. */
export function normalizeValue(spec: ColumnSpec, raw: unknown): Value {
  if (raw === null) return null;
  if (raw === undefined) {
    // zongji decodes the invalid-enum index 0 as undefined (the server shows it as '', like a '' member): 0n.
    if (spec.kind === 'enum') return ENUM_INVALID;
    return null;
  }
  switch (spec.kind) {
    case 'int':
      return toInteger(spec, raw);
    case 'year': {
      const y = toInteger(spec, raw);
      return y === 1900n ? 0n : y; // YEAR stores 0000 as 0; zongji adds 1900 to every stored byte
    }
    case 'bit':
      if (isBytes(raw)) return bytesToBigint(raw);
      return toInteger(spec, raw);
    case 'float': {
      const n = typeof raw === 'string' ? Number(raw) : raw;
      if (typeof n !== 'number' || Number.isNaN(n)) throw valueError(spec, `expected a number, got ${typeof raw}`);
      return float32Shortest(n);
    }
    case 'double': {
      const n = typeof raw === 'string' ? Number(raw) : raw;
      if (typeof n !== 'number' || Number.isNaN(n)) throw valueError(spec, `expected a number, got ${typeof raw}`);
      return Object.is(n, -0) ? 0 : n;
    }
    case 'decimal': {
      const s = toText(spec, raw);
      if (!isDecimalText(s)) throw valueError(spec, 'not an exact decimal string');
      return s;
    }
    case 'date':
      if (raw instanceof Date) throw valueError(spec, 'got a Date object: connections must use dateStrings: true');
      return toText(spec, raw);
    case 'datetime':
    case 'time':
      if (raw instanceof Date) throw valueError(spec, 'got a Date object: connections must use dateStrings: true');
      return withFsp(toText(spec, raw), spec.fsp);
    case 'text':
      // A text column in a character set zongji cannot decode arrives as bytes; keep them rather than guess.
      if (isBytes(raw)) return new Uint8Array(raw);
      return toText(spec, raw);
    case 'enum':
    case 'set':
      return toText(spec, raw);
    case 'binary':
      if (isBytes(raw)) return new Uint8Array(raw);
      throw valueError(spec, `expected bytes, got ${typeof raw}`);
    case 'geometry':
      // 4 bytes of SRID, then WKB (byte order, type: at least 5 bytes); anything else is not the stored form.
      if (isBytes(raw) && raw.length >= 9) return new Uint8Array(raw);
      throw valueError(
        spec,
        `expected the stored geometry bytes (SRID + WKB), got ${isBytes(raw) ? `${raw.length} bytes` : typeof raw}`,
      );
    case 'unsupported':
      throw valueError(spec, 'column type is not supported by tidemark');
  }
}

/** Columns of a table whose type tidemark cannot capture exactly. */
export function unsupportedColumns(specs: readonly ColumnSpec[]): ColumnSpec[] {
  return specs.filter((s) => s.kind === 'unsupported');
}

/** The error that refuses a table with unsupported columns; names the table, columns and the way out. */
export function unsupportedTableError(schema: string, table: string, cols: readonly ColumnSpec[]): TidemarkError {
  return unsupportedTablesError([{ schema, table, why: cols.map((c) => `${c.name} ${c.column.columnType}`) }]);
}

/** One table tidemark refuses, with what makes it unfit ("col point", "system versioning by transaction id"). */
export interface RefusedTable {
  readonly schema: string;
  readonly table: string;
  readonly why: readonly string[];
}

/** One error naming every refused table at once, with the exclude line that gets past all of them. */
export function unsupportedTablesError(tables: readonly RefusedTable[]): TidemarkError {
  const names = tables.map((t) => `${t.schema}.${t.table}`);
  const list = tables.map((t) => `${t.schema}.${t.table} (${t.why.join(', ')})`).join('; ');
  const first = tables[0];
  return new TidemarkError(
    `${tables.length === 1 ? 'table' : `${tables.length} tables`} with column types tidemark cannot capture exactly: ` +
      `${list}; exclude ${tables.length === 1 ? 'it' : 'them'} with source.exclude: [${names.map((n) => JSON.stringify(n)).join(', ')}] ` +
      'or change the column types',
    {
      code: 'UNSUPPORTED_TYPE',
      retriable: false,
      context: first ? { schema: first.schema, table: first.table, tables: names.join(',') } : {},
    },
  );
}
