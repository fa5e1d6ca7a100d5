/**
 * The replication origin that marks tidemark's writes on a PostgreSQL target (apply/postgres README "Replication
 * origin"): every apply session sets up the origin `tidemark_<source name>/<database>` (created when missing), and
 * every target transaction records the source commit it ends with (pg_replication_origin_xact_setup). The WAL of those
 * transactions then carries the origin, pgoutput sends an Origin message with them, and a tidemark capture of this
 * database skips them (capture/postgres `skip_origins`): a failback or two-way topology never loops.
 *
 * The origin functions are superuser-only unless granted (PostgreSQL 14+): without the grants apply stops with
 * PG_PRIVILEGE naming them (set `replication_origin: false` for a target that is never captured).
 */
import type pg from 'pg';
import { TidemarkError } from '../../core/errors.ts';
import { sqlStateOf, wrapPgError } from '../../postgres/errors.ts';
import { formatLsn } from '../../postgres/lsn.ts';
import { quoteLiteral } from '../../postgres/sql.ts';
import type { AppliedState } from '../../engine/target.ts';

/** The prefix of every origin tidemark creates (capture/postgres skips these by default). */
export const ORIGIN_PREFIX = 'tidemark_';

/**
 * The origin of one source's writes into one target database. Origins are cluster-wide and held by one session at
 * a time, so two targets of the same source in one cluster (two databases) need two.
 */
export const originName = (source: string, database: string): string => `${ORIGIN_PREFIX}${source}/${database}`;

/** The functions the apply role must be allowed to run (in every target database: pg_proc is per database). */
export const ORIGIN_FUNCTIONS = [
  'pg_replication_origin_create(text)',
  'pg_replication_origin_session_setup(text)',
  'pg_replication_origin_xact_setup(pg_lsn, timestamptz)',
] as const;

/** The GRANT a DBA runs, for error messages and the README. */
export const originGrantSql = (role: string): string =>
  `GRANT EXECUTE ON FUNCTION ${ORIGIN_FUNCTIONS.map((f) => `pg_catalog.${f}`).join(', ')} TO ${role}`;

/** `'YYYY-MM-DD HH:MM:SS.ffffff+00'` for µs since the Unix epoch (a Date holds only ms). */
export function timestampText(us: bigint): string {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const iso = new Date(Number(ms)).toISOString(); // 2026-12-06T19:15:00.123Z
  const frac = (((us % 1_000_000n) + 1_000_000n) % 1_000_000n).toString().padStart(6, '0');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac}+00`;
}

/**
 * The statement that stamps the open transaction with the source commit it ends with: the commit's LSN for a
 * PostgreSQL source (its position), else the journal LSN (a MySQL source's binlog position is not an LSN); the
 * source commit time (now() when the journal has none).
 */
export function xactSetupSql(st: AppliedState): string {
  const p = st.position;
  const lsn = p && p.kind === 'sequence' && p.engine === 'postgres' ? p.value : st.lsn;
  const at = st.commitTimeUs === null ? 'now()' : `${quoteLiteral(timestampText(st.commitTimeUs))}::timestamptz`;
  return `SELECT pg_replication_origin_xact_setup(${quoteLiteral(formatLsn(lsn))}::pg_lsn, ${at})`;
}

const SETUP = 'SELECT pg_replication_origin_session_setup($1)';

/**
 * Sets the session's origin up, creating it when it does not exist. The origin is held by one session at a time:
 * another session still holding it (the previous apply session of a killed process, not yet ended) is retriable.
 */
export async function setupOrigin(
  client: pg.Client,
  o: { source: string; database: string; target: string; user: string },
): Promise<void> {
  const { target, user } = o;
  const name = originName(o.source, o.database);
  const fail = (err: unknown): never => {
    const state = sqlStateOf(err);
    if (state === '42501') {
      throw new TidemarkError(
        `target ${target}: the apply role ${user} may not use replication origins (they mark tidemark's writes so ` +
          `that a capture of this database skips them): as a superuser, in database of the target, run ` +
          `${originGrantSql(user)}; or set targets[].replication_origin: false for a target that is never captured`,
        { code: 'PG_PRIVILEGE', cause: err, context: { target, origin: name } },
      );
    }
    if (state === '55006') {
      throw new TidemarkError(
        `target ${target}: replication origin ${name} is in use by another session (a previous apply session ` +
          'still ending, or a second tidemark applying the same source): retrying',
        { code: 'PG_TRANSIENT', retriable: true, cause: err, context: { target, origin: name } },
      );
    }
    throw wrapPgError(err, `target ${target}: setting up replication origin ${name}`, { target });
  };
  try {
    await client.query(SETUP, [name]);
    return;
  } catch (err) {
    if (sqlStateOf(err) !== '42704') fail(err); // undefined_object: the origin does not exist yet
  }
  try {
    await client.query('SELECT pg_replication_origin_create($1)', [name]);
  } catch (err) {
    if (sqlStateOf(err) !== '23505') fail(err); // created meanwhile by another session: fine
  }
  try {
    await client.query(SETUP, [name]);
  } catch (err) {
    fail(err);
  }
}
