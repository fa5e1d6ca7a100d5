/**
 * Large multi-row INSERTs as `LOAD DATA LOCAL INFILE` (MariaDB; pure, no I/O): the rows become tab-separated text
 * that the applier streams to the server as the statement's local file (exec.ts, mysql2's infileStreamFactory;
 * nothing is ever read from disk, and only the apply session enables local files).
 *
 *   LOAD DATA LOCAL INFILE 'tidemark' INTO TABLE `s`.`t` CHARACTER SET utf8mb4
 *     FIELDS TERMINATED BY '\t' ENCLOSED BY '' ESCAPED BY '\\' LINES STARTING BY '' TERMINATED BY '\n'
 *     (`id`,`a`,@tidemark_v2,@tidemark_v3) SET `bin` = UNHEX(@tidemark_v2), `flags` = CAST(@tidemark_v3 AS UNSIGNED)
 *
 * Why: the server parses a field of text instead of an SQL literal. Measured on the spine benchmark's 300k-row
 * insert (apply/mysql/README.md, "Speed"): replica CPU 1.04 s as 1000-row INSERTs, 0.71 s as LOAD DATA — the
 * same as the server's own INSERT … SELECT of those rows (0.70 s).
 *
 * Values, per record.ts, written so the server stores what the INSERT literal (mysql/sql.ts) would:
 *   NULL             \N (a string "\N" is written escaped, \\N)
 *   integers         decimal digits
 *   YEAR, BIT        their number, through a variable: CAST(@v AS UNSIGNED) (a bare field is text: '0' would be
 *                    the year 2000, not 0000, and a BIT field would be taken as bytes)
 *   FLOAT / DOUBLE   the literal's shortest round-tripping text (FLOAT as its exact float32 value)
 *   DECIMAL          its exact text
 *   text, dates, ENUM label, SET   the string, with \ TAB LF CR NUL escaped by a backslash, as utf8mb4
 *   binary, spatial  hex through a variable: UNHEX(@v) (BINARY(n) pads itself on insert, as with X'…')
 * A row whose values do not fit these forms (ENUM index 0, a value of another kind than its column's family, a
 * string with a lone surrogate, NaN) is not loadable: line() returns null and the batcher sends that row in an
 * INSERT, which stores or refuses it exactly as before.
 *
 * What LOAD DATA LOCAL does differently, and how the caller keeps apply's guarantees (exec.ts):
 *   - duplicates are skipped, not errors (the server cannot stop the client's stream), and strict-mode errors
 *     become warnings (a value too long is cut). So the statement's row count AND its warning count are checked:
 *     any difference rolls the load back to its savepoint and runs the same rows as the INSERT (insertSql), which
 *     fails exactly as the INSERT path always did (1062 → APPLY_DIVERGED naming the key, 1406 → APPLY_FAILED, …).
 */
import { Buffer } from 'node:buffer';
import type { Column, Value } from '../../record/record.ts';
import { typeFamily } from '../../mysql/types.ts';
import { floatLiteral, qualified, quoteIdent } from '../../mysql/sql.ts';

/** The name the statement asks the client for; the applier serves its rows under this name only. */
export const LOAD_FILE = 'tidemark';

/** How one field is written: its text, or null when the value does not fit (the row then goes as an INSERT). */
type Field = (v: Value) => string | null;
/** How a field written by a Field reads back (its NULL handled before). */
type Read = (field: string) => Value;

export interface LoadShape {
  /** The LOAD DATA statement for the columns (the rows travel as its local file). */
  readonly sql: string;
  /** One row as a line of the file (newline included), or null when it is not loadable. */
  line(row: readonly Value[]): string | null;
  /**
   * The rows of a file back, as full rows (columns not written are null): what was given to line(), except that a
   * BIT value given as bytes comes back as its number (literal() writes both the same). For the INSERT of a load
   * that did not match and for naming keys, so the batcher need not keep every row of a statement alive.
   */
  parse(data: Uint8Array): Value[][];
}

const NEEDS_ESCAPE = /[\0\t\n\r\\]/;
const ESCAPE = /[\0\t\n\r\\]/g;
const ESCAPES: Record<string, string> = { '\0': '\\0', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\\': '\\\\' };
const EXACT_DECIMAL = /^-?(\d+(\.\d*)?|\.\d+)$/;

/** A string field: escaped; null for a lone surrogate (it cannot be encoded; the INSERT path refuses it). */
function text(s: string): string | null {
  if (!s.isWellFormed()) return null;
  return NEEDS_ESCAPE.test(s) ? s.replace(ESCAPE, (c) => ESCAPES[c]!) : s;
}

function bytesNumber(b: Uint8Array): string {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v.toString();
}

const NULL_FIELD = '\\N';

const integer: Field = (v) => (v === null ? NULL_FIELD : typeof v === 'bigint' ? v.toString() : null);
const bit: Field = (v) =>
  v === null ? NULL_FIELD : typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? bytesNumber(v) : null;
const float =
  (single: boolean): Field =>
  (v) => {
    if (v === null) return NULL_FIELD;
    if (typeof v !== 'number' || !Number.isFinite(v)) return null;
    return floatLiteral(single ? Math.fround(v) : v);
  };
const decimal: Field = (v) => (v === null ? NULL_FIELD : typeof v === 'string' && EXACT_DECIMAL.test(v) ? v : null);
const string: Field = (v) => (v === null ? NULL_FIELD : typeof v === 'string' ? text(v) : null);
const hex: Field = (v) =>
  v === null
    ? NULL_FIELD
    : v instanceof Uint8Array
      ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')
      : null;

const UNESCAPE = /\\(.)/gs;
const UNESCAPES: Record<string, string> = { '0': '\0', t: '\t', n: '\n', r: '\r', '\\': '\\' };
const readInteger: Read = (f) => BigInt(f);
const readNumber: Read = (f) => Number(f);
const readString: Read = (f) => (f.includes('\\') ? f.replace(UNESCAPE, (_, c: string) => UNESCAPES[c] ?? c) : f);
const readHex: Read = (f) => new Uint8Array(Buffer.from(f, 'hex'));

interface Codec {
  readonly field: Field;
  readonly read: Read;
  /** The expression its variable goes through (null: the field is written to the column directly). */
  readonly via: ((v: string) => string) | null;
}

function codecOf(col: Column): Codec | null {
  switch (typeFamily(col.type)) {
    case 'int':
      return { field: integer, read: readInteger, via: null };
    case 'year': // a bare field is text, and the text '0' is the year 2000; the number 0 is 0000, as INSERT writes it
      return { field: integer, read: readInteger, via: (v) => `CAST(${v} AS UNSIGNED)` };
    case 'bit':
      return { field: bit, read: readInteger, via: (v) => `CAST(${v} AS UNSIGNED)` };
    case 'float':
      return { field: float(true), read: readNumber, via: null };
    case 'double':
      return { field: float(false), read: readNumber, via: null };
    case 'decimal':
      return { field: decimal, read: (f) => f, via: null };
    case 'date':
    case 'datetime':
    case 'time':
    case 'text':
    case 'enum':
    case 'set':
      return { field: string, read: readString, via: null };
    case 'binary':
    case 'geometry':
      return { field: hex, read: readHex, via: (v) => `UNHEX(${v})` };
    case 'unsupported':
      return null;
  }
}

/** The LOAD DATA form of inserts into `schema.table` writing columns `writeIdx`, or null when a column has none. */
export function loadShape(
  schema: string,
  table: string,
  cols: readonly Column[],
  writeIdx: readonly number[],
): LoadShape | null {
  const fields: Field[] = [];
  const reads: Read[] = [];
  const targets: string[] = [];
  const sets: string[] = [];
  for (const i of writeIdx) {
    const col = cols[i]!;
    const f = codecOf(col);
    if (!f) return null;
    fields.push(f.field);
    reads.push(f.read);
    if (f.via) {
      const v = `@tidemark_v${i}`;
      targets.push(v);
      sets.push(`${quoteIdent(col.name)} = ${f.via(v)}`);
    } else targets.push(quoteIdent(col.name));
  }
  const sql =
    `LOAD DATA LOCAL INFILE '${LOAD_FILE}' INTO TABLE ${qualified(schema, table)} CHARACTER SET utf8mb4 ` +
    "FIELDS TERMINATED BY '\\t' ENCLOSED BY '' ESCAPED BY '\\\\' LINES STARTING BY '' TERMINATED BY '\\n' " +
    `(${targets.join(',')})${sets.length > 0 ? ` SET ${sets.join(', ')}` : ''}`;
  const idx = [...writeIdx];
  return {
    sql,
    line(row) {
      let out = '';
      for (let k = 0; k < idx.length; k++) {
        const f = fields[k]!(row[idx[k]!] ?? null);
        if (f === null) return null;
        out += k === 0 ? f : '\t' + f;
      }
      return out + '\n';
    },
    parse(data) {
      const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
      const lines = text.split('\n');
      lines.pop(); // every line ends with a newline: the split's last piece is empty
      return lines.map((line) => {
        const f = line.split('\t');
        const row: Value[] = cols.map(() => null);
        for (let k = 0; k < idx.length; k++) {
          const v = f[k] ?? NULL_FIELD;
          row[idx[k]!] = v === NULL_FIELD ? null : reads[k]!(v);
        }
        return row;
      });
    },
  };
}

/** A LoadFile's first buffer. */
const FIRST_BYTES = 64 << 10;

/**
 * The file of one LOAD DATA statement, written line by line straight into a buffer (no string per row kept: the
 * batcher's rows are many and short-lived). The buffer is allocated at the first line (FIRST_BYTES, doubling as
 * lines come, up to the capacity) and kept across reset() (a short statement that goes as an INSERT); take() hands
 * it over, the next line allocates a new one (the last statement may still be on its way).
 */
export class LoadFile {
  readonly #capacity: number;
  #buf: Buffer | null = null;
  #pos = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#pos;
  }

  /** Would `line` fit (an empty file takes any line: a larger row goes alone)? */
  fits(line: string): boolean {
    if (this.#pos === 0) return true;
    const room = this.#capacity - this.#pos;
    // A UTF-16 code unit is at most 3 bytes of UTF-8: count exactly only near the end.
    return line.length * 3 <= room || Buffer.byteLength(line, 'utf8') <= room;
  }

  add(line: string): void {
    const need = this.#pos + line.length * 3;
    if (!this.#buf || this.#buf.length < need) {
      // From FIRST_BYTES, doubling up to the capacity: a live stream's loads are small, and a capacity-sized
      // buffer per statement was external memory that V8 answered with full collections (issue #15).
      const grown = Math.min(this.#capacity, Math.max(FIRST_BYTES, (this.#buf?.length ?? 0) * 2));
      const bigger = Buffer.allocUnsafe(Math.max(grown, need));
      this.#buf?.copy(bigger, 0, 0, this.#pos);
      this.#buf = bigger;
    }
    this.#pos += this.#buf.write(line, this.#pos, 'utf8');
  }

  /** The bytes written; the buffer goes with them. */
  take(): Buffer {
    const out = this.#buf ? this.#buf.subarray(0, this.#pos) : Buffer.alloc(0);
    this.#buf = null;
    this.#pos = 0;
    return out;
  }

  /** Forgets what was written, keeping the buffer. */
  reset(): void {
    this.#pos = 0;
  }
}
