/**
 * The type-aware comparison of one table across two engines (MariaDB ↔ PostgreSQL verify, issue #14 item 8). Pure:
 * the I/O is two `ChunkReader`s (mysql/cross-read.ts, postgres/cross-read.ts) that read a table in key order, in
 * chunks after a key, as each engine's own text. Each value is normalised here to one canonical text per
 * `CanonKind` (the kinds the type mappings name: apply/postgres/from-mysql.ts, apply/mysql/from-postgres.ts), so
 * `2024-01-02 03:04:05.500000` (MariaDB DATETIME(6)) and `2024-01-02 03:04:05.5` (PostgreSQL timestamp) compare
 * equal, `t` and `1` (bool ↔ TINYINT(1)) too, while a value that differs in any digit, byte or character differs.
 * The two key-ordered streams are merged (both engines order keys the same way: integers by value, text and bytes by
 * their bytes, dates and times chronologically — the readers choose the ORDER BY that makes it so), so a row missing
 * or extra on one side and a changed row are each found; memory is one chunk per side.
 */
import { TidemarkError } from '../core/errors.ts';
import type { TableRef } from './source.ts';
import type { Difference, DifferenceKind, TableResult } from './target.ts';

/** How a mapped column's values are compared. */
export type CanonKind =
  | 'int'
  | 'bool'
  | 'decimal'
  | 'float4'
  | 'float8'
  | 'text'
  | 'bytes'
  | 'date'
  | 'datetime'
  | 'time'
  | 'bits';

/** Kinds a key column may have (their order is the same in both engines and here). */
export const KEY_KINDS: ReadonlySet<CanonKind> = new Set(['int', 'text', 'bytes', 'date', 'datetime']);

/** What a reader returns per cell: text, a number (MySQL FLOAT/DOUBLE read in binary), or NULL. */
export type RawCell = string | number | null;

/** Reads `limit` rows after `after` (canonical key values; null: from the start), in key order. */
export type ChunkReader = (after: readonly string[] | null, limit: number) => Promise<readonly (readonly RawCell[])[]>;

const negZero = (n: number) => (Object.is(n, -0) ? '-0' : String(n));

function trimFraction(s: string): string {
  const m = /^(.*?)(\.\d*?)0*$/.exec(s);
  if (!m) return s;
  return m[2] === '.' ? m[1]! : `${m[1]}${m[2]}`;
}

/** A decimal's canonical text: no leading zeros, no trailing fraction zeros, no "-0". Non-numbers stay as they are. */
export function canonDecimal(s: string): string {
  const m = /^([+-]?)0*(\d*)(?:\.(\d*?)0*)?$/.exec(s.trim());
  if (!m) return s;
  const int = m[2] === '' ? '0' : m[2]!;
  const frac = m[3] ?? '';
  const body = frac === '' ? int : `${int}.${frac}`;
  return m[1] === '-' && body !== '0' ? `-${body}` : body;
}

/** A TIME / interval `[-]h…:mm:ss[.f]` canonically (hours without leading zeros, no trailing fraction zeros). */
function canonTime(s: string): string {
  const m = /^(-?)(\d+):(\d\d):(\d\d)(\.\d+)?$/.exec(s);
  if (!m) return s; // an interval with days or months: kept as written, so it differs from any TIME
  return trimFraction(`${m[1]}${BigInt(m[2]!)}:${m[3]}:${m[4]}${m[5] ?? ''}`);
}

function canonBool(s: string): string {
  if (s === 't' || s === 'true' || s === '1') return '1';
  if (s === 'f' || s === 'false' || s === '0') return '0';
  return `?${s}`;
}

/** One cell's canonical text (null stays null). */
export function canonical(kind: CanonKind, v: RawCell): string | null {
  if (v === null) return null;
  switch (kind) {
    case 'float4':
      return negZero(Math.fround(typeof v === 'number' ? v : Number(v)));
    case 'float8':
      return negZero(typeof v === 'number' ? v : Number(v));
    case 'int':
      return /^-?\d+$/.test(String(v)) ? BigInt(String(v)).toString() : `?${v}`;
    case 'bits': // binary digits (PostgreSQL bit text, MariaDB BIN()), leading zeros aside
      return /^[01]+$/.test(String(v)) ? BigInt(`0b${v}`).toString(2) : `?${v}`;
    case 'bool':
      return canonBool(String(v));
    case 'decimal':
      return canonDecimal(String(v));
    case 'bytes':
      return String(v).toLowerCase();
    case 'datetime':
      return trimFraction(String(v));
    case 'time':
      return canonTime(String(v));
    default:
      return String(v);
  }
}

/** Orders two canonical key values of `kind` as both engines order them. */
export function compareKey(kind: CanonKind, a: string, b: string): number {
  if (kind === 'int') {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (kind === 'text') return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  return a < b ? -1 : a > b ? 1 : 0; // bytes (lower-case hex), date, datetime: text order is the engines' order
}

export interface CrossTableSpec {
  readonly schema: string;
  readonly table: string;
  /** Compared columns, in the order both readers return them. */
  readonly columns: readonly { readonly name: string; readonly kind: CanonKind }[];
  /** Indexes of the key columns in `columns`, in key order. */
  readonly key: readonly number[];
}

/** The key kinds of a spec, refused (VERIFY_SHAPE) when a key column's kind has no common order. */
export function keyKinds(spec: CrossTableSpec): CanonKind[] {
  if (spec.key.length === 0) {
    throw new TidemarkError(`${spec.schema}.${spec.table}: cross-engine verify needs a primary key`, {
      code: 'VERIFY_SHAPE',
      context: { schema: spec.schema, table: spec.table },
    });
  }
  return spec.key.map((i) => {
    const c = spec.columns[i]!;
    if (!KEY_KINDS.has(c.kind)) {
      throw new TidemarkError(
        `${spec.schema}.${spec.table}: key column ${c.name} compares as ${c.kind}, which the two engines do not order ` +
          'alike; cross-engine verify takes integer, text, binary, date and datetime keys',
        { code: 'VERIFY_SHAPE', context: { schema: spec.schema, table: spec.table, column: c.name } },
      );
    }
    return c.kind;
  });
}

export interface CrossCompareResult {
  readonly rows: number;
  readonly replicaRows: number;
  readonly chunks: number;
  readonly differences: Difference[];
  readonly differenceCount: number;
}

/** Pulls canonical rows from a reader, chunk by chunk. */
async function* canonicalRows(
  spec: CrossTableSpec,
  read: ChunkReader,
  chunkRows: number,
  onChunk: () => void,
): AsyncGenerator<(string | null)[]> {
  let after: string[] | null = null;
  for (;;) {
    const raw = await read(after, chunkRows);
    onChunk();
    for (const r of raw) {
      const row = spec.columns.map((c, i) => canonical(c.kind, r[i] ?? null));
      yield row;
      after = spec.key.map((i) => row[i] ?? '');
    }
    if (raw.length < chunkRows) return;
  }
}

/** Merges the source's and the target's key-ordered rows and lists what differs (up to `maxDifferences`). */
export async function compareTable(
  spec: CrossTableSpec,
  source: ChunkReader,
  target: ChunkReader,
  o: { readonly chunkRows: number; readonly maxDifferences?: number },
): Promise<CrossCompareResult> {
  const kinds = keyKinds(spec);
  const max = o.maxDifferences ?? 100;
  let chunks = 0;
  const s = canonicalRows(spec, source, o.chunkRows, () => chunks++);
  const t = canonicalRows(spec, target, o.chunkRows, () => {});
  const keyOf = (row: readonly (string | null)[]) => spec.key.map((i) => row[i] ?? '');
  const cmp = (a: readonly string[], b: readonly string[]) => {
    for (let i = 0; i < a.length; i++) {
      const c = compareKey(kinds[i]!, a[i]!, b[i]!);
      if (c !== 0) return c;
    }
    return 0;
  };
  const differences: Difference[] = [];
  let count = 0;
  let rows = 0;
  let replicaRows = 0;
  const note = (k: readonly string[], kind: DifferenceKind) => {
    count++;
    if (differences.length < max) {
      const key = spec.key.map((i, j) => `${spec.columns[i]!.name}=${k[j]}`).join(', ');
      differences.push({ pk: [...k], key, kind });
    }
  };
  let a = await s.next();
  let b = await t.next();
  while (!a.done || !b.done) {
    if (b.done || (!a.done && cmp(keyOf(a.value), keyOf(b.value)) < 0)) {
      note(keyOf(a.value!), 'missing');
      rows++;
      a = await s.next();
    } else if (a.done || cmp(keyOf(a.value), keyOf(b.value)) > 0) {
      note(keyOf(b.value), 'extra');
      replicaRows++;
      b = await t.next();
    } else {
      if (a.value.some((v, i) => v !== b.value![i])) note(keyOf(a.value), 'changed');
      rows++;
      replicaRows++;
      a = await s.next();
      b = await t.next();
    }
  }
  return { rows, replicaRows, chunks, differences, differenceCount: count };
}

/** One table's comparison plan, or why its columns cannot be compared (a missing table, an unmapped type). */
export type CrossPlan =
  | { readonly spec: CrossTableSpec; readonly source: ChunkReader; readonly target: ChunkReader }
  | { readonly columnsDiffer: string };

export interface CrossVerifyOptions {
  /** Reads both sides' columns and builds the readers (called in each attempt's snapshots). */
  readonly plan: (t: TableRef) => Promise<CrossPlan>;
  /** Opens a read snapshot on each side; returns the function that ends them. */
  readonly snapshot: () => Promise<() => Promise<void>>;
  readonly chunkRows: number;
  /** A table that differs is compared again, up to this many times in all (replication lag), `delayMs` apart. */
  readonly attempts?: number;
  readonly delayMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function verifyOne(t: TableRef, o: CrossVerifyOptions): Promise<TableResult> {
  const end = await o.snapshot();
  try {
    const p = await o.plan(t);
    const empty = { ...t, chunks: 0, rows: 0, replicaRows: 0, differences: [], differenceCount: 0 };
    if ('columnsDiffer' in p) return { ...empty, equal: false, columnsDiffer: p.columnsDiffer };
    const r = await compareTable(p.spec, p.source, p.target, { chunkRows: o.chunkRows });
    return { ...t, ...r, equal: r.differenceCount === 0 };
  } finally {
    await end();
  }
}

/** Compares each table across the engines (type-aware), re-checking a differing one after a delay. */
export async function verifyCross(tables: readonly TableRef[], o: CrossVerifyOptions): Promise<TableResult[]> {
  const out: TableResult[] = [];
  for (const t of tables) {
    let r = await verifyOne(t, o);
    for (let n = 1; !r.equal && r.columnsDiffer === undefined && n < (o.attempts ?? 4); n++) {
      await sleep(o.delayMs ?? 1000);
      r = await verifyOne(t, o);
    }
    out.push(r);
  }
  return out;
}
