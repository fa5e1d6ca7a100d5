/**
 * Sequences at the promotion of a PostgreSQL standby (issue #14, scope 4). PostgreSQL 15's logical decoding does
 * not carry sequence state: the apply wrote every row with its key given, so a serial or identity column's
 * sequence on the standby still stands where the DBA's schema left it, and the new primary's first INSERT without
 * the key would collide with a replicated row. promotePgServer calls resyncPgSequences while the server is still
 * read-only for clients (nobody else draws from the sequences), before the default is reset:
 *
 *   for every sequence outside pg_catalog, information_schema, pg_* and `tidemark`:
 *     OWNED BY an integer column (serial, identity, ALTER SEQUENCE … OWNED BY)
 *       the column's max (min for a negative increment) read; the sequence's next value (last_value, +increment
 *       when is_called) already past it, or an empty table: left alone; otherwise setval(seq, max, true), so the
 *       next nextval() is past every replicated row. A value beyond the sequence's bounds is not set (reported).
 *     not owned by a column (or by a non-integer one)
 *       its right value cannot be derived from the data: listed as not re-synchronised (a warning, never a
 *       failure: the application's own use of it decides; failover/README.md "PostgreSQL sites")
 *
 * A failed read or setval of one sequence (a privilege missing) is reported and the others go on: promotion is
 * not stopped by it. The account needs SELECT on the owning tables and USAGE/UPDATE on the sequences (the owner of
 * the tables has both: membership in the apply role that owns them is enough).
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { describeChain } from '../core/errors.ts';
import { wrapPgError } from '../postgres/errors.ts';
import { qualifiedName, quoteIdent } from '../postgres/sql.ts';
import type { Deadline } from './fence.ts';
import { pgRows } from './pg-fence.ts';

export const PG_SEQUENCES_SQL = {
  /** Every user sequence with its bounds and, when owned by a column, that column (deptype a: serial, i: identity). */
  list:
    'SELECT sn.nspname AS s, c.relname AS n, q.seqincrement::text AS inc, q.seqmin::text AS lo, q.seqmax::text AS hi, ' +
    'tn.nspname AS ts, t.relname AS t, a.attname AS col, ' +
    "(a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype))::text AS int " +
    'FROM pg_sequence q JOIN pg_class c ON c.oid = q.seqrelid JOIN pg_namespace sn ON sn.oid = c.relnamespace ' +
    "LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid " +
    "AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i') " +
    'LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace ' +
    'LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid ' +
    "WHERE c.relkind = 'S' AND sn.nspname NOT IN ('pg_catalog', 'information_schema', 'tidemark') " +
    "AND sn.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2",
  state: (seq: string) => `SELECT last_value::text AS last, is_called::text AS called FROM ${seq}`,
  /** The owning column's extreme in the direction the sequence goes (max up, min down). */
  extreme: (table: string, column: string, increment: bigint) =>
    `SELECT ${increment < 0n ? 'min' : 'max'}(${quoteIdent(column)})::text AS v FROM ${table}`,
  setval: 'SELECT setval($1::regclass, $2::bigint, true)::text AS v',
} as const;

export interface SequenceFacts {
  readonly schema: string;
  readonly name: string;
  readonly increment: bigint;
  readonly min: bigint;
  readonly max: bigint;
  /** The owning integer column; null when not owned by one. */
  readonly owner: { readonly schema: string; readonly table: string; readonly column: string } | null;
  /** Owned by a column that is not smallint/integer/bigint (named, for the report). */
  readonly nonIntegerOwner?: string;
}

export type SequenceDecision =
  | { readonly kind: 'setval'; readonly to: bigint; readonly next: bigint }
  | { readonly kind: 'past' | 'empty' }
  | { readonly kind: 'out-of-range'; readonly value: bigint };

/**
 * What to do with an owned sequence (pure): `extreme` is the column's max (min for a negative increment), null
 * for an empty table; `last`/`called` the sequence's state. setval(to, true) makes the next value to + increment.
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
  /** Owned sequences already past their column (or with an empty table): left alone. */
  readonly unchanged: number;
  /** Not owned by an integer column: not derivable from the data (warned). */
  readonly unowned: string[];
  /** Owned, but not re-synchronised: why, per sequence (warned). */
  readonly failed: string[];
}

/** One line for the promote step's detail (pure). */
export function describeSequenceReport(r: SequenceReport): string {
  if (r.changed.length + r.unchanged + r.unowned.length + r.failed.length === 0) return 'sequences: none';
  const parts = [
    `sequences: ${r.changed.length} re-synchronised` +
      (r.changed.length > 0 ? ` (${r.changed.map((c) => `${c.name} ${c.was} → ${c.to}`).join(', ')})` : ''),
    `${r.unchanged} already past their column or empty`,
  ];
  if (r.unowned.length > 0) {
    parts.push(`${r.unowned.length} not owned by a column, not re-synchronised: ${r.unowned.join(', ')}`);
  }
  if (r.failed.length > 0) parts.push(`${r.failed.length} failed: ${r.failed.join('; ')}`);
  return parts.join(', ');
}

function factsOf(r: Record<string, unknown>): SequenceFacts {
  const ownerName = r['col'] === null || r['col'] === undefined ? null : `${r['ts']}.${r['t']}.${r['col']}`;
  const integer = r['int'] === 'true' || r['int'] === true;
  return {
    schema: String(r['s']),
    name: String(r['n']),
    increment: BigInt(String(r['inc'])),
    min: BigInt(String(r['lo'])),
    max: BigInt(String(r['hi'])),
    owner:
      ownerName !== null && integer
        ? { schema: String(r['ts']), table: String(r['t']), column: String(r['col']) }
        : null,
    ...(ownerName !== null && !integer ? { nonIntegerOwner: ownerName } : {}),
  };
}

/** Re-synchronises the owned sequences of the database `c` is in (see the module comment). */
export async function resyncPgSequences(c: pg.Client, d: Deadline, log: Logger): Promise<SequenceReport> {
  const report: { -readonly [K in keyof SequenceReport]: SequenceReport[K] } = {
    changed: [],
    unchanged: 0,
    unowned: [],
    failed: [],
  };
  for (const f of (await pgRows(c, d, PG_SEQUENCES_SQL.list)).map(factsOf)) {
    const name = `${f.schema}.${f.name}`;
    if (!f.owner) {
      report.unowned.push(f.nonIntegerOwner ? `${name} (owned by non-integer ${f.nonIntegerOwner})` : name);
      continue;
    }
    const seq = qualifiedName(f.schema, f.name);
    try {
      const st = (await pgRows(c, d, PG_SEQUENCES_SQL.state(seq)))[0] ?? {};
      const v = (
        await pgRows(
          c,
          d,
          PG_SEQUENCES_SQL.extreme(qualifiedName(f.owner.schema, f.owner.table), f.owner.column, f.increment),
        )
      )[0]?.['v'];
      const called = st['called'] === 'true' || st['called'] === true;
      const x = decideSequence(
        f,
        BigInt(String(st['last'])),
        called,
        v === null || v === undefined ? null : BigInt(String(v)),
      );
      if (x.kind === 'setval') {
        await pgRows(c, d, PG_SEQUENCES_SQL.setval, [seq, x.to.toString()]);
        report.changed.push({ name, was: x.next, to: x.to });
        log.info({ sequence: name, was: String(x.next), to: String(x.to) }, 'promote: sequence re-synchronised');
      } else if (x.kind === 'out-of-range') {
        report.failed.push(`${name}: its column holds ${x.value}, beyond the sequence's bounds ${f.min}..${f.max}`);
      } else {
        report.unchanged++;
      }
    } catch (err) {
      if (d.left() === 0) throw err;
      report.failed.push(`${name}: ${describeChain(wrapPgError(err, `re-synchronising ${name}`))}`);
    }
  }
  if (report.unowned.length > 0 || report.failed.length > 0) {
    log.warn(
      { unowned: report.unowned, failed: report.failed },
      'promote: sequences not re-synchronised (not owned by a column, or failed): their next values may collide with replicated rows',
    );
  }
  return report;
}
