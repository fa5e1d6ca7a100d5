/**
 * Sequences at the promotion of a PostgreSQL standby (issue #14, scope 4). PostgreSQL 15's logical decoding does
 * not carry sequence state: the apply wrote every row with its key given, so a sequence on the standby still stands
 * where the DBA's schema left it, and the new primary's first INSERT that draws from it would collide with a
 * replicated row. promotePgServer calls resyncPgSequences while the server is still read-only for clients (nobody
 * else draws from the sequences), before the default is reset:
 *
 *   for every sequence outside pg_catalog, information_schema, pg_* and `tidemark`, its columns: the integer column
 *   that OWNS it (serial, identity, ALTER SEQUENCE … OWNED BY) and every integer column whose DEFAULT is exactly
 *   nextval() of it (a sequence made by CREATE SEQUENCE and shared by several tables, say)
 *     with columns: their max (min for a negative increment) read, the furthest of them taken; the sequence's
 *       next value (last_value, +increment when is_called) already past it, or empty tables: left alone; otherwise
 *       setval(seq, that value, true), so the next nextval() is past every replicated row. A value beyond the
 *       sequence's bounds is not set (reported). Other uses of it (a text column's DEFAULT 'T-' || nextval(…), an
 *       expression) cannot be read back: named in the report (`partial`).
 *     without: its right value cannot be derived from the data (an application that calls nextval() itself):
 *       listed as not re-synchronised (a warning, never a failure: failover/README.md "PostgreSQL sites")
 *
 * A failed read or setval of one sequence (a privilege missing) is reported and the others go on: promotion is
 * not stopped by it. The account needs SELECT on the tables of those columns and USAGE/UPDATE on the sequences (the
 * owner of the tables has both: membership in the apply role that owns them is enough).
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { describeChain } from '../core/errors.ts';
import { wrapPgError } from '../postgres/errors.ts';
import { qualifiedName, quoteIdent } from '../postgres/sql.ts';
import type { Deadline } from './fence.ts';
import { pgRows } from './pg-fence.ts';

export const PG_SEQUENCES_SQL = {
  /**
   * Every user sequence with its bounds, one row per column that uses it (none: one row of NULLs): the column that
   * owns it (pg_depend deptype a: serial, i: identity) and each column whose DEFAULT depends on it; `plain` when the
   * column owns it or its default is exactly nextval() of it (a serial column is both: one row).
   */
  list:
    'SELECT sn.nspname AS s, c.relname AS n, q.seqincrement::text AS inc, q.seqmin::text AS lo, q.seqmax::text AS hi, ' +
    'tn.nspname AS ts, t.relname AS t, a.attname AS col, ' +
    "(a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype))::text AS int, u.plain::text AS plain " +
    'FROM pg_sequence q JOIN pg_class c ON c.oid = q.seqrelid JOIN pg_namespace sn ON sn.oid = c.relnamespace ' +
    'LEFT JOIN LATERAL (SELECT rel, att, bool_or(plain) AS plain FROM (' +
    'SELECT d.refobjid AS rel, d.refobjsubid AS att, true AS plain FROM pg_depend d ' +
    "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass " +
    "AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i') " +
    'UNION ALL SELECT ad.adrelid, ad.adnum, ' +
    "pg_get_expr(ad.adbin, ad.adrelid) = format('nextval(%L::regclass)', c.oid::regclass::text) " +
    'FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid ' +
    "WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid" +
    ') uses GROUP BY rel, att) u ON true ' +
    'LEFT JOIN pg_class t ON t.oid = u.rel LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace ' +
    'LEFT JOIN pg_attribute a ON a.attrelid = u.rel AND a.attnum = u.att ' +
    "WHERE c.relkind = 'S' AND sn.nspname NOT IN ('pg_catalog', 'information_schema', 'tidemark') " +
    "AND sn.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2, 6, 7, 8",
  state: (seq: string) => `SELECT last_value::text AS last, is_called::text AS called FROM ${seq}`,
  /** The owning column's extreme in the direction the sequence goes (max up, min down). */
  extreme: (table: string, column: string, increment: bigint) =>
    `SELECT ${increment < 0n ? 'min' : 'max'}(${quoteIdent(column)})::text AS v FROM ${table}`,
  setval: 'SELECT setval($1::regclass, $2::bigint, true)::text AS v',
} as const;

/** A table column (schema, table, column names). */
export interface ColumnRef {
  readonly schema: string;
  readonly table: string;
  readonly column: string;
}

export interface SequenceFacts {
  readonly schema: string;
  readonly name: string;
  readonly increment: bigint;
  readonly min: bigint;
  readonly max: bigint;
  /** The integer columns whose values it gave: the one that owns it, those whose DEFAULT is exactly nextval() of it. */
  readonly columns: readonly ColumnRef[];
  /** Other columns that use it, which cannot be read back (a non-integer type, an expression default), described. */
  readonly others: readonly string[];
}

export type SequenceDecision =
  | { readonly kind: 'setval'; readonly to: bigint; readonly next: bigint }
  | { readonly kind: 'past' | 'empty' }
  | { readonly kind: 'out-of-range'; readonly value: bigint };

/**
 * What to do with a sequence (pure): `extreme` is the furthest value of its columns (max, or min for a negative
 * increment), null when they are all empty; `last`/`called` the sequence's state. setval(to, true) makes the next value to + increment.
 */
export function decideSequence(
  f: Pick<SequenceFacts, 'increment' | 'min' | 'max'>,
  last: bigint,
  called: boolean,
  extreme: bigint | null,
): SequenceDecision {
  if (extreme === null) return { kind: 'empty' };
  const next = called ? last + f.increment : last;
  const up = f.increment > 0n;
  if (up ? extreme < next : extreme > next) return { kind: 'past' };
  if (extreme > f.max || extreme < f.min) return { kind: 'out-of-range', value: extreme };
  return { kind: 'setval', to: extreme, next };
}

export interface SequenceReport {
  /** setval done: the sequence, the value its next nextval() would have given, the value set. */
  readonly changed: { readonly name: string; readonly was: bigint; readonly to: bigint }[];
  /** Sequences already past their columns (or whose columns are empty): left alone. */
  readonly unchanged: number;
  /** Without an integer column to read back (owned by none, no DEFAULT of one is nextval() of it): warned. */
  readonly unowned: string[];
  /** Re-synchronised from their columns, but also used where the value cannot be read back (warned). */
  readonly partial: string[];
  /** With columns, but not re-synchronised: why, per sequence (warned). */
  readonly failed: string[];
}

/** One line for the promote step's detail (pure). */
export function describeSequenceReport(r: SequenceReport): string {
  if (r.changed.length + r.unchanged + r.unowned.length + r.failed.length === 0) return 'sequences: none';
  const parts = [
    `sequences: ${r.changed.length} re-synchronised` +
      (r.changed.length > 0 ? ` (${r.changed.map((c) => `${c.name} ${c.was} → ${c.to}`).join(', ')})` : ''),
    `${r.unchanged} already past their columns or empty`,
  ];
  if (r.unowned.length > 0) {
    parts.push(
      `${r.unowned.length} with no integer column to read back (not owned by one, no DEFAULT nextval() of it), ` +
        `not re-synchronised: ${r.unowned.join(', ')}`,
    );
  }
  if (r.partial.length > 0) parts.push(`${r.partial.length} also used where not read back: ${r.partial.join(', ')}`);
  if (r.failed.length > 0) parts.push(`${r.failed.length} failed: ${r.failed.join('; ')}`);
  return parts.join(', ');
}

const isTrue = (v: unknown): boolean => v === 'true' || v === true;

/** The list query's rows (one per sequence and column using it, in sequence order), one fact per sequence. */
export function sequenceFacts(rows: readonly Record<string, unknown>[]): SequenceFacts[] {
  const out: { -readonly [K in keyof SequenceFacts]: SequenceFacts[K] }[] = [];
  for (const r of rows) {
    const schema = String(r['s']);
    const name = String(r['n']);
    let f = out.at(-1);
    if (!f || f.schema !== schema || f.name !== name) {
      f = {
        schema,
        name,
        increment: BigInt(String(r['inc'])),
        min: BigInt(String(r['lo'])),
        max: BigInt(String(r['hi'])),
        columns: [],
        others: [],
      };
      out.push(f);
    }
    if (r['col'] === null || r['col'] === undefined) continue;
    const col: ColumnRef = { schema: String(r['ts']), table: String(r['t']), column: String(r['col']) };
    const at = `${col.schema}.${col.table}.${col.column}`;
    if (!isTrue(r['int'])) f.others = [...f.others, `non-integer ${at}`];
    else if (!isTrue(r['plain'])) f.others = [...f.others, `expression default of ${at}`];
    else f.columns = [...f.columns, col];
  }
  return out;
}

/** The furthest of the columns' extremes in the sequence's direction; null when every column is empty. */
function furthest(values: readonly (bigint | null)[], increment: bigint): bigint | null {
  let x: bigint | null = null;
  for (const v of values) if (v !== null && (x === null || (increment < 0n ? v < x : v > x))) x = v;
  return x;
}

/** Re-synchronises the sequences of the database `c` is in from their columns (see the module comment). */
export async function resyncPgSequences(c: pg.Client, d: Deadline, log: Logger): Promise<SequenceReport> {
  const report: { -readonly [K in keyof SequenceReport]: SequenceReport[K] } = {
    changed: [],
    unchanged: 0,
    unowned: [],
    partial: [],
    failed: [],
  };
  for (const f of sequenceFacts(await pgRows(c, d, PG_SEQUENCES_SQL.list))) {
    const name = `${f.schema}.${f.name}`;
    if (f.columns.length === 0) {
      report.unowned.push(f.others.length > 0 ? `${name} (${f.others.join(', ')})` : name);
      continue;
    }
    if (f.others.length > 0) report.partial.push(`${name} (${f.others.join(', ')})`);
    const seq = qualifiedName(f.schema, f.name);
    try {
      const st = (await pgRows(c, d, PG_SEQUENCES_SQL.state(seq)))[0] ?? {};
      const extremes: (bigint | null)[] = [];
      for (const col of f.columns) {
        const sql = PG_SEQUENCES_SQL.extreme(qualifiedName(col.schema, col.table), col.column, f.increment);
        const v = (await pgRows(c, d, sql))[0]?.['v'];
        extremes.push(v === null || v === undefined ? null : BigInt(String(v)));
      }
      const x = decideSequence(f, BigInt(String(st['last'])), isTrue(st['called']), furthest(extremes, f.increment));
      if (x.kind === 'setval') {
        await pgRows(c, d, PG_SEQUENCES_SQL.setval, [seq, x.to.toString()]);
        report.changed.push({ name, was: x.next, to: x.to });
        log.info({ sequence: name, was: String(x.next), to: String(x.to) }, 'promote: sequence re-synchronised');
      } else if (x.kind === 'out-of-range') {
        report.failed.push(`${name}: its columns hold ${x.value}, beyond the sequence's bounds ${f.min}..${f.max}`);
      } else {
        report.unchanged++;
      }
    } catch (err) {
      if (d.left() === 0) throw err;
      report.failed.push(`${name}: ${describeChain(wrapPgError(err, `re-synchronising ${name}`))}`);
    }
  }
  if (report.unowned.length > 0 || report.partial.length > 0 || report.failed.length > 0) {
    log.warn(
      { unowned: report.unowned, partial: report.partial, failed: report.failed },
      'promote: sequences not re-synchronised, or not wholly (no integer column to read back, or failed): their next values may collide with replicated rows',
    );
  }
  return report;
}
