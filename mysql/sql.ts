/**
 * Pure SQL text for MySQL/MariaDB, the one copy (capture, apply, rewind, failover): identifier quoting, value
 * literals and the row statement builders apply and rewind share. No I/O here; every function is unit-tested
 * without a server.
 *
 * Literal conventions assume the statement session (openSession in session.ts): character_set_connection
 * utf8mb4 and a sql_mode WITHOUT NO_BACKSLASH_ESCAPES, so string literals use backslash escapes. Values follow
 * record.ts:
 *   null        NULL
 *   bigint      decimal digits (integers, YEAR, BIT: numeric context assigns/compares BIT exactly, also BIT(64))
 *   number      an approximate literal that round-trips (shortest repr, always with an exponent); NaN/±Infinity
 *               cannot be stored in MySQL and are refused
 *   string      quoted; DECIMAL/NUMERIC text that looks like an exact number goes unquoted, so comparisons run in
 *               DECIMAL instead of DOUBLE (a quoted '123…' compared with a DECIMAL column can round)
 *   Uint8Array  X'hex' (BINARY(n) values shorter than n are zero-padded as the server stores them; BIT values
 *               as bytes become their big-endian number)
 */
import type { Column, Value } from '../record/record.ts';
import { TidemarkError } from '../core/errors.ts';

/** Target server family: changes how JSON is compared (MySQL's JSON type is not text). */
export type Flavor = 'mariadb' | 'mysql';

/**
 * A value that cannot be written as a literal. Code APPLY_VALUE: the applier's, as it always was; rewind re-codes
 * it REWIND_VALUE (rollback/errors.ts).
 */
export class ValueError extends TidemarkError {
  constructor(message: string, context: Record<string, string | number | bigint | null>) {
    super(message, { code: 'APPLY_VALUE', retriable: false, context });
    this.name = 'ValueError';
  }
}

const IDENT_SPECIAL = /[`\0]/;

/** `name` with backticks doubled. Names may hold any character but NUL (MySQL forbids it). */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new ValueError('empty identifier', {});
  // One scan for the common case (neither a backtick nor a NUL): this runs for every column of every statement.
  if (!IDENT_SPECIAL.test(name)) return '`' + name + '`';
  if (name.includes('\0')) throw new ValueError('identifier contains a NUL character', {});
  return '`' + name.replaceAll('`', '``') + '`';
}

/** `schema`.`table` */
export function qualified(schema: string, table: string): string {
  return quoteIdent(schema) + '.' + quoteIdent(table);
}

const ESCAPES: Record<string, string> = {
  '\0': '\\0',
  '\n': '\\n',
  '\r': '\\r',
  '\x1a': '\\Z',
  "'": "\\'",
  '\\': '\\\\',
};

const NEEDS_ESCAPE = /[\0\n\r\x1a'\\]/;

/**
 * A single-quoted string literal with backslash escapes. Refuses lone UTF-16 surrogates (they cannot be encoded).
 * Most values need no escape: a test first, and the replace only for those (3× faster per value than always
 * replacing, measured on 1M short strings; a guarded undo or an apply group quotes several per row).
 */
export function quoteString(s: string): string {
  if (!s.isWellFormed()) throw new ValueError('string value holds an unpaired UTF-16 surrogate', {});
  if (!NEEDS_ESCAPE.test(s)) return "'" + s + "'";
  return "'" + s.replace(/[\0\n\r\x1a'\\]/g, (c) => ESCAPES[c] ?? c) + "'";
}

/** Shortest round-tripping repr as an approximate-value literal (always with an exponent, never DECIMAL). */
export function floatLiteral(n: number): string {
  if (!Number.isFinite(n)) throw new ValueError(`cannot store ${n} in MySQL (no NaN/Infinity in FLOAT/DOUBLE)`, {});
  if (Object.is(n, -0)) return '-0e0';
  const s = String(n);
  return /e/i.test(s) ? s : s + 'e0';
}

export function hexLiteral(b: Uint8Array): string {
  return "X'" + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex').toUpperCase() + "'";
}

const EXACT_DECIMAL = /^-?(\d+(\.\d*)?|\.\d+)$/;
const BINARY_N = /^binary\((\d+)\)/i;

function bytesToBigint(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/** The SQL literal for one value of `col`. */
export function literal(v: Value, col: Column): string {
  if (v === null) return 'NULL';
  if (typeof v === 'bigint') return v.toString();
  // A FLOAT travels as the shortest decimal that reads back as the same float32 (0.1, 3.4028235e38). Written as
  // a DOUBLE literal that decimal is a different number: 3.4028235e38 is above FLOAT's maximum, and `f <=> 0.1e0`
  // never matches a stored 0.1f. The exact float32 value written as a double (0.10000000149011612) is both in
  // range and equal to what the column holds.
  if (typeof v === 'number') return floatLiteral(col.type === 'float' ? Math.fround(v) : v);
  if (typeof v === 'string') {
    if ((col.type === 'decimal' || col.type === 'numeric') && EXACT_DECIMAL.test(v)) return v;
    return quoteString(v);
  }
  if (v instanceof Uint8Array) {
    if (col.type === 'bit') return bytesToBigint(v).toString();
    const m = col.columnType ? BINARY_N.exec(col.columnType) : null;
    if (m?.[1] && v.length < Number(m[1])) {
      const padded = new Uint8Array(Number(m[1]));
      padded.set(v);
      return hexLiteral(padded);
    }
    return hexLiteral(v);
  }
  throw new ValueError(`unsupported value of type ${typeof v} for column ${col.name}`, { column: col.name });
}

/** Literal for a comparison against `col` (MySQL compares a JSON column with a JSON value, not with text). */
export function compareLiteral(v: Value, col: Column, flavor: Flavor): string {
  const lit = literal(v, col);
  if (flavor === 'mysql' && col.type === 'json' && v !== null) return `CAST(${lit} AS JSON)`;
  return lit;
}

/** UTF-8 size of a SQL fragment (what goes over the wire). */
export function sqlBytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

// ---- statement pieces ----------------------------------------------------------------------------------------

/** `(v1,v2,…)` for the given column indexes of a row. */
export function tuple(row: readonly Value[], cols: readonly Column[], idx: readonly number[]): string {
  const parts: string[] = [];
  for (const i of idx) parts.push(literal(row[i] ?? null, cols[i]!));
  return '(' + parts.join(',') + ')';
}

/** `INSERT INTO t (c1,c2) VALUES ` — rows are appended as tuples joined by ','. */
export function insertPrefix(schema: string, table: string, cols: readonly Column[], idx: readonly number[]): string {
  return `INSERT INTO ${qualified(schema, table)} (${idx.map((i) => quoteIdent(cols[i]!.name)).join(',')}) VALUES `;
}

export function buildInsert(
  schema: string,
  table: string,
  cols: readonly Column[],
  idx: readonly number[],
  rows: readonly (readonly Value[])[],
): string {
  return insertPrefix(schema, table, cols, idx) + rows.map((r) => tuple(r, cols, idx)).join(',');
}

/** Key list head for IN: `id` or (`a`,`b`). */
export function keyHead(cols: readonly Column[], pkIdx: readonly number[]): string {
  const names = pkIdx.map((i) => quoteIdent(cols[i]!.name));
  return names.length === 1 ? names[0]! : '(' + names.join(',') + ')';
}

/** One key inside IN (…): `5` or (`5`,'x'). */
export function keyItem(row: readonly Value[], cols: readonly Column[], pkIdx: readonly number[]): string {
  if (pkIdx.length === 1) return literal(row[pkIdx[0]!] ?? null, cols[pkIdx[0]!]!);
  return tuple(row, cols, pkIdx);
}

/** `DELETE FROM t WHERE <head> IN (` — items joined by ',' and then ')' close it. */
export function deleteInPrefix(
  schema: string,
  table: string,
  cols: readonly Column[],
  pkIdx: readonly number[],
): string {
  return `DELETE FROM ${qualified(schema, table)} WHERE ${keyHead(cols, pkIdx)} IN (`;
}

/** `c1 = v1 AND c2 = v2` over the key columns (PK values are never NULL). */
export function keyWhere(
  row: readonly Value[],
  cols: readonly Column[],
  pkIdx: readonly number[],
  flavor: Flavor,
): string {
  return pkIdx
    .map((i) => `${quoteIdent(cols[i]!.name)} = ${compareLiteral(row[i] ?? null, cols[i]!, flavor)}`)
    .join(' AND ');
}

/** `c1 <=> v1 AND …` over every column: NULL-safe whole-row match for tables without a primary key. */
export function fullRowWhere(row: readonly Value[], cols: readonly Column[], flavor: Flavor): string {
  return cols.map((c, i) => `${quoteIdent(c.name)} <=> ${compareLiteral(row[i] ?? null, c, flavor)}`).join(' AND ');
}

export function setList(row: readonly Value[], cols: readonly Column[], idx: readonly number[]): string {
  return idx.map((i) => `${quoteIdent(cols[i]!.name)} = ${literal(row[i] ?? null, cols[i]!)}`).join(', ');
}

function sameValue(a: Value | undefined, b: Value | undefined): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    // A view, not Buffer.from(a), which would copy the bytes for every comparison.
    return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
  }
  return a === b || (a === null && b === undefined) || (a === undefined && b === null);
}

/** updateColumns results by columns, then SET list, then changed-column mask (see updateColumns). */
const setListsByMask = new WeakMap<readonly Column[], WeakMap<readonly number[], Map<number, readonly number[]>>>();
const MASK_COLUMNS = 30;

/**
 * The columns an update must SET: those whose value differs between the images, plus every TIMESTAMP/DATETIME
 * column (the replica may declare ON UPDATE CURRENT_TIMESTAMP, which would otherwise move it to now). The row
 * was found by its before image (key, or whole row), so the result equals the after image while the server
 * parses and writes less. When nothing differs, every column is set.
 */
export function updateColumns(
  cols: readonly Column[],
  setIdx: readonly number[],
  before: readonly Value[],
  after: readonly Value[],
): readonly number[] {
  const temporal = (i: number) => cols[i]!.type === 'timestamp' || cols[i]!.type === 'datetime';
  if (setIdx.length > MASK_COLUMNS) {
    const changed = setIdx.filter((i) => !sameValue(before[i], after[i]));
    if (changed.length === 0) return setIdx;
    return setIdx.filter((i) => changed.includes(i) || temporal(i));
  }
  // The rows of a table mostly change the same columns: one list per mask of changed columns, shared (callers
  // treat it as read-only), instead of two new arrays per row — and a shared list lets the batchers compare
  // shapes by identity.
  let mask = 0;
  for (let j = 0; j < setIdx.length; j++) {
    const i = setIdx[j]!;
    if (!sameValue(before[i], after[i])) mask |= 1 << j;
  }
  if (mask === 0) return setIdx;
  let bySet = setListsByMask.get(cols);
  if (!bySet) {
    bySet = new WeakMap();
    setListsByMask.set(cols, bySet);
  }
  let byMask = bySet.get(setIdx);
  if (!byMask) {
    byMask = new Map();
    bySet.set(setIdx, byMask);
  }
  let list = byMask.get(mask);
  if (!list) {
    list = setIdx.filter((i, j) => (mask & (1 << j)) !== 0 || temporal(i));
    if (byMask.size >= 1024) byMask.clear();
    byMask.set(mask, list);
  }
  return list;
}

/**
 * One row update. With a key: `UPDATE t SET … WHERE pk = before-pk` (the key may change). Without (pkIdx null):
 * the whole before image with <=> and LIMIT 1 — duplicate rows are indistinguishable, exactly one is changed.
 * SET lists only the columns updateColumns() names.
 */
export function buildUpdateRow(
  schema: string,
  table: string,
  cols: readonly Column[],
  setIdx: readonly number[],
  pkIdx: readonly number[] | null,
  before: readonly Value[],
  after: readonly Value[],
  flavor: Flavor,
): string {
  const where = pkIdx ? keyWhere(before, cols, pkIdx, flavor) : fullRowWhere(before, cols, flavor);
  const set = setList(after, cols, updateColumns(cols, setIdx, before, after));
  return `UPDATE ${qualified(schema, table)} SET ${set} WHERE ${where}${pkIdx ? '' : ' LIMIT 1'}`;
}

/** One row delete by key, or (pkIdx null) by the whole before image with LIMIT 1. */
export function buildDeleteRow(
  schema: string,
  table: string,
  cols: readonly Column[],
  pkIdx: readonly number[] | null,
  before: readonly Value[],
  flavor: Flavor,
): string {
  const where = pkIdx ? keyWhere(before, cols, pkIdx, flavor) : fullRowWhere(before, cols, flavor);
  return `DELETE FROM ${qualified(schema, table)} WHERE ${where}${pkIdx ? '' : ' LIMIT 1'}`;
}

/** Human form of a key for errors: "id=5, name='x'" (values shortened). */
export function describeKey(row: readonly Value[], cols: readonly Column[], idx: readonly number[]): string {
  return idx
    .map((i) => {
      const c = cols[i]!;
      let lit: string;
      try {
        lit = literal(row[i] ?? null, c);
      } catch {
        lit = '?';
      }
      if (lit.length > 80) lit = lit.slice(0, 77) + '...';
      return `${c.name}=${lit}`;
    })
    .join(', ');
}

/** `USE `schema`` for DDL that ran with a default schema. */
export function useSchema(schema: string): string {
  return `USE ${quoteIdent(schema)}`;
}

/** Generated columns of a replica table (never written: the server computes them). */
export function generatedColumnsSql(schema: string, table: string): string {
  return (
    'SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS ' +
    `WHERE TABLE_SCHEMA = ${quoteString(schema)} AND TABLE_NAME = ${quoteString(table)} ` +
    "AND (EXTRA LIKE '%GENERATED%' OR EXTRA LIKE '%PERSISTENT%' OR EXTRA LIKE '%VIRTUAL%')"
  );
}

/** `SELECT 1 FROM t WHERE k1 = v1 AND … LIMIT 1` (or the whole row with <=>): does this row exist? */
export function buildExists(
  schema: string,
  table: string,
  keyCols: readonly Column[],
  key: readonly Value[],
  fullRow: boolean,
  flavor: Flavor,
): string {
  const where = fullRow
    ? fullRowWhere(key, keyCols, flavor)
    : keyWhere(
        key,
        keyCols,
        keyCols.map((_, i) => i),
        flavor,
      );
  return `SELECT 1 FROM ${qualified(schema, table)} WHERE ${where} LIMIT 1`;
}

/** Do the two images hold the same values in every column of `idx` (an update between them changes nothing)? */
export function sameValues(idx: readonly number[], a: readonly Value[], b: readonly Value[]): boolean {
  for (const i of idx) if (!sameValue(a[i], b[i])) return false;
  return true;
}

/** Does literal() write this value of `col` as a bare exact number (DECIMAL/NUMERIC text or an integer)? */
export function isExactNumberLiteral(v: Value, col: Column): boolean {
  if (typeof v === 'bigint') return true;
  return typeof v === 'string' && (col.type === 'decimal' || col.type === 'numeric') && EXACT_DECIMAL.test(v);
}
