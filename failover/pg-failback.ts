/**
 * The PostgreSQL steps of `tidemark failback` (cli/commands/failback.ts) that MySQL does otherwise:
 *
 *   catch-up end      PostgreSQL keeps what the old primary committed after its tidemark stopped in the capture
 *                     slot (it retains everything not confirmed). Capture resumes from the journal's last commit and
 *                     reads the slot; but pg_current_wal_lsn() is not a point the stream ever reports on an idle
 *                     server (only commits move capture's read position). So a marker — a transactional logical
 *                     message `tidemark.failback`, no table row — is written after the fence: capture has read the
 *                     slot's whole tail once its read position passed the marker (an empty transaction to it).
 *   branch position   the old primary's row in tidemark.applied (apply/postgres/position.ts) says it holds the
 *                     branch point, not held: the reversed topology's applier goes on from there. Written through
 *                     the failover account (like MySQL's), which grants the table to source.admin, the role that
 *                     applies there afterwards.
 *   the slot          dropped once the journal is a mirror: nobody captures the old primary any more, and a slot
 *                     nobody reads retains WAL without end. A promotion of this server later creates it again.
 */
import type pg from 'pg';
import { createSql, ensureRowSql, POSITION_TABLE, setPointSql } from '../apply/postgres/position.ts';
import { sleep, TidemarkError } from '../core/errors.ts';
import type { AppliedState } from '../engine/target.ts';
import { wrapPgError } from '../postgres/errors.ts';
import { parseLsn } from '../postgres/lsn.ts';
import { openPgClient, type PgEndpoint } from '../postgres/session.ts';
import { quoteIdent } from '../postgres/sql.ts';
import { PG_FENCE_SQL } from './pg-fence.ts';

export const PG_FAILBACK_SQL = {
  /**
   * A transactional logical message ($1 the prefix: 'tidemark.failback', or the switchover's, which capture
   * journals): decoded as a transaction of its own, after everything committed before it.
   */
  marker: 'SELECT pg_logical_emit_message(true, $1, $2)::text AS lsn',
  slot: 'SELECT active FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()',
  dropSlot: 'SELECT pg_drop_replication_slot($1)',
} as const;

const SLOT_WAIT_MS = 15_000;

async function withClient<T>(ep: PgEndpoint, what: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await openPgClient(ep, { applicationName: 'tidemark-failback' });
  try {
    return await fn(c);
  } catch (err) {
    throw err instanceof TidemarkError ? err : wrapPgError(err, `${what} on ${ep.host}:${ep.port}`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** A transactional logical message with this prefix on the server; returns its LSN. */
export function emitPgMarker(ep: PgEndpoint, prefix: string, text: string): Promise<bigint> {
  return withClient(ep, `writing the ${prefix} marker`, async (c) => {
    const r = await c.query(PG_FAILBACK_SQL.marker, [prefix, text]);
    return parseLsn(String((r.rows[0] as { lsn: unknown } | undefined)?.lsn));
  });
}

/** Writes the catch-up marker on the (fenced) old primary; returns its LSN: capture reading past it read the tail. */
export function emitPgCatchUpMarker(ep: PgEndpoint, text: string): Promise<bigint> {
  return emitPgMarker(ep, 'tidemark.failback', text);
}

/**
 * The old primary's tidemark.applied row holds `state` (the branch point), no hold: apply goes on from there.
 * Through the failover account (the schema `tidemark` there is usually its own: the monitor's heartbeat table),
 * creating the table when missing; `grantTo` (source.admin, the role that applies there in the new topology) then
 * gets USAGE on the schema and SELECT, INSERT, UPDATE on the table.
 */
export async function setPgBranchPosition(
  ep: PgEndpoint,
  source: string,
  state: AppliedState,
  grantTo: string | null,
): Promise<void> {
  await withClient(ep, 'setting the branch position in tidemark.applied', async (c) => {
    await c.query(PG_FENCE_SQL.sessionWritable);
    await c.query('BEGIN');
    for (const sql of createSql) await c.query(sql);
    if (grantTo !== null) {
      await c.query(`GRANT USAGE ON SCHEMA tidemark TO ${quoteIdent(grantTo)}`);
      await c.query(`GRANT SELECT, INSERT, UPDATE ON ${POSITION_TABLE} TO ${quoteIdent(grantTo)}`);
    }
    await c.query(ensureRowSql, [source]);
    const r = await c.query(setPointSql(source, state, null));
    if (r.rowCount !== 1) {
      throw new TidemarkError(`tidemark.applied on ${ep.host}:${ep.port} has no row for ${source}`, {
        code: 'FAILOVER_STATE',
      });
    }
    await c.query('COMMIT');
  });
}

/**
 * Drops the old primary's capture slot (failover account: REPLICATION). A walsender still ending (the catch-up's
 * stream just closed) keeps it active for a moment: waited for. Returns what was done, for the output.
 */
export function dropPgSlot(ep: PgEndpoint, slot: string, signal: AbortSignal): Promise<string> {
  return withClient(ep, `dropping replication slot ${slot}`, async (c) => {
    const until = Date.now() + SLOT_WAIT_MS;
    for (;;) {
      const row = (await c.query(PG_FAILBACK_SQL.slot, [slot])).rows[0] as { active: unknown } | undefined;
      if (!row) return `replication slot ${slot} is gone already`;
      if (row.active !== true && row.active !== 't') {
        await c.query(PG_FAILBACK_SQL.dropSlot, [slot]);
        return `replication slot ${slot} dropped (nothing captures this server any more)`;
      }
      if (Date.now() > until) {
        throw new TidemarkError(
          `replication slot ${slot} on ${ep.host}:${ep.port} is in use: stop what reads it (tidemark run at this ` +
            'site?) and run tidemark failback again',
          { code: 'FAILBACK_BUSY' },
        );
      }
      await sleep(250, signal);
    }
  });
}
