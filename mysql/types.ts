/**
 * The one table of MySQL/MariaDB type families: which family each base column type (DATA_TYPE, or the first word
 * of COLUMN_TYPE) belongs to, and the type-text helpers both sides need. Capture normalizes values per family
 * (capture/mysql/values.ts); apply reads driver values (apply/mysql/values.ts) and renders checksum text
 * (apply/mysql/checksum.ts) per family. Pure.
 *
 * ENUM is a family of its own, neither text nor integer: a value is its label (a string), except the invalid-value
 * index 0, carried as 0n (a '' member stays ''). So capture normalizes it apart (label, or 0n), the checksum
 * renders its text AND its index (c + 0) so index 0 and a '' member differ, the batcher writes index 0 without
 * strictness, and a driver value read back (verify's keys) stays the label string. SET is a family of its own
 * too (comma-joined labels), rendered like text by the checksum.
 *
 * GEOMETRY and its subtypes (POINT … GEOMETRYCOLLECTION) are the family `geometry`: a value is the column's
 * stored bytes, MariaDB's internal form (4-byte little-endian SRID, then WKB), read by the baseline as
 * CAST(col AS BINARY), taken raw from the binlog (capture/mysql/events.ts), written back as X'…' and compared
 * by the checksum as HEX(col) and by rewind's guards as col <=> X'…' (byte-exact: SRID included). zongji names a
 * GEOMETRYCOLLECTION column `geomcollection`, information_schema `geometrycollection`: normalized to the latter.
 */

/** A column type family (`unsupported`: refused loudly, never silently mangled: MariaDB VECTOR). */
export type ValueKind =
  | 'int'
  | 'year'
  | 'bit'
  | 'float'
  | 'double'
  | 'decimal'
  | 'date'
  | 'datetime'
  | 'time'
  | 'text'
  | 'enum'
  | 'set'
  | 'binary'
  | 'geometry'
  | 'unsupported';

export const TYPE_FAMILY: Readonly<Record<string, ValueKind>> = {
  tinyint: 'int',
  smallint: 'int',
  mediumint: 'int',
  int: 'int',
  integer: 'int',
  bigint: 'int',
  year: 'year',
  bit: 'bit',
  float: 'float',
  double: 'double',
  real: 'double',
  decimal: 'decimal',
  numeric: 'decimal',
  date: 'date',
  datetime: 'datetime',
  timestamp: 'datetime',
  time: 'time',
  char: 'text',
  varchar: 'text',
  tinytext: 'text',
  text: 'text',
  mediumtext: 'text',
  longtext: 'text',
  json: 'text',
  enum: 'enum',
  set: 'set',
  binary: 'binary',
  varbinary: 'binary',
  tinyblob: 'binary',
  blob: 'binary',
  mediumblob: 'binary',
  longblob: 'binary',
  // MariaDB's binary-stored types: the binlog's FULL metadata calls them binary(16) / binary(4).
  uuid: 'binary',
  inet4: 'binary',
  inet6: 'binary',
  geometry: 'geometry',
  point: 'geometry',
  linestring: 'geometry',
  polygon: 'geometry',
  multipoint: 'geometry',
  multilinestring: 'geometry',
  multipolygon: 'geometry',
  geometrycollection: 'geometry',
};

/** The BINARY(n) the binlog reports for MariaDB's UUID/INET4/INET6 columns (the baseline maps to the same). */
export const BINARY_STORED: Readonly<Record<string, string>> = {
  uuid: 'binary(16)',
  inet4: 'binary(4)',
  inet6: 'binary(16)',
};

/** Is this (information_schema) column type read by the baseline as CAST(col AS BINARY)? */
export function isBinaryStored(rawColumnType: string): boolean {
  return normalizeColumnType(rawColumnType) in BINARY_STORED;
}

/** Families whose record Column carries `unsigned`. */
export const NUMERIC_FAMILIES: ReadonlySet<ValueKind> = new Set(['int', 'float', 'double', 'decimal']);

/**
 * Canonical column type text: lower case, no display widths on integer types ("int(11)" → "int"), no
 * ZEROFILL, no MariaDB version comments. information_schema and zongji's binlog-built type then agree.
 */
export function normalizeColumnType(columnType: string): string {
  let t = columnType.trim();
  t = t.replace(/\s*\/\*.*?\*\//g, '');
  const m = /^([A-Za-z]+)/.exec(t);
  const base = m?.[1]?.toLowerCase() ?? '';
  if (base === 'enum' || base === 'set') return base + t.slice(base.length); // keep label case
  t = t.toLowerCase();
  if (TYPE_FAMILY[base] === 'int' || base === 'year') t = t.replace(/^([a-z]+)\(\d+\)/, '$1');
  t = t.replace(/\s+zerofill\b/, '');
  if (base === 'geomcollection') t = `geometrycollection${t.slice(base.length)}`; // zongji's name for it
  return t.replace(/\s+/g, ' ');
}

export function baseType(columnType: string): string {
  const m = /^([a-z]+)/.exec(columnType);
  if (!m?.[1]) return '';
  if (m[1] === 'double' && columnType.startsWith('double precision')) return 'double';
  return m[1];
}

/** The family of a base type (information_schema DATA_TYPE, or baseType() of COLUMN_TYPE). */
export function typeFamily(dataType: string): ValueKind {
  return Object.hasOwn(TYPE_FAMILY, dataType) ? TYPE_FAMILY[dataType]! : 'unsupported';
}
