/**
 * Promoting a PostgreSQL standby's target (issue #14, takeover step promote for `kind: postgres`), after its
 * applier was held (holdPgPromoted) so tidemark writes nothing more there. The promotion position is where capture
 * from the new primary starts: the consistent point of a logical slot created while the server is still read-only
 * by default, so every client write lies after it. Failback without a full copy rests on it. The order:
 *
 *   1. SET default_transaction_read_only = off    our own session (the DDL and ALTER SYSTEM below must run)
 *      SHOW wal_level                             not `logical`: refused before anything changed
 *                                                 (PROMOTE_NOT_CAPTURABLE: the new primary could not be captured)
 *   2. sequences                                 every sequence set past the values of its integer columns (the
 *                                                 one that owns it, those whose DEFAULT is nextval() of it):
 *                                                 logical decoding does not carry sequences (pg-sequences.ts);
 *                                                 the ones nothing reads back listed as not re-synchronised
 *   3. the publication (source.publication)      kept when it exists; else CREATE PUBLICATION … FOR TABLE every
 *                                                 user table of the database (not the tidemark schema): made BEFORE
 *                                                 the slot, so decoding from the slot's start finds it
 *   4. the slot (source.slot)                     an inactive leftover of that name is dropped (its position is
 *      pg_create_logical_replication_slot         not this promotion's); an active one is refused;
 *        (slot, 'pgoutput') → lsn                 the returned consistent point is the promotion position
 *   5. ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf()    clients may write from here on
 *   6. SHOW default_transaction_read_only = off in a new session (polled until the postmaster reloaded); still on
 *      at the deadline: it is set elsewhere (postgresql.conf, ALTER DATABASE/ROLE): the error says so.
 *
 * Privileges of the failover account on the target: REPLICATION (the slot), CREATE on the database and ownership of
 * the tables (the publication, and the sequences' setval; membership in the apply role that created them is enough), ALTER SYSTEM ON
 * PARAMETER default_transaction_read_only, EXECUTE on pg_reload_conf(). A superuser has them all.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { TidemarkError } from '../core/errors.ts';
import { quoteIdent } from '../postgres/sql.ts';
import { formatLsn, parseLsn } from '../postgres/lsn.ts';
import type { PgEndpoint } from '../postgres/session.ts';
import { sequencePosition, type SequencePosition } from '../record/position.ts';
import { Deadline } from './fence.ts';
import { promoteFailure } from './promote.ts';
import { awaitSetting, PG_FENCE_SQL, pgClose, pgConnectWithin, pgRows } from './pg-fence.ts';
import { describeSequenceReport, resyncPgSequences } from './pg-sequences.ts';
import type { StepReport } from './plan.ts';

export interface PgPromotionPosition {
  readonly engine: 'postgres';
  /** The slot's consistent point: capture from the new primary starts here. */
  readonly lsn: bigint;
  readonly slot: string;
  readonly publication: string;
}

export interface PgPromoteOptions {
  readonly slot: string;
  readonly publication: string;
  readonly timeoutMs: number;
  readonly log: Logger;
}

export const PG_PROMOTE_SQL = {
  walLevel: 'SHOW wal_level',
  publicationExists: 'SELECT 1 FROM pg_publication WHERE pubname = $1',
  userTables:
    "SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') " +
    "AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tidemark') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2",
  slot: 'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
  dropSlot: 'SELECT pg_drop_replication_slot($1)',
  createSlot: "SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')",
} as const;

/** CREATE PUBLICATION for the given tables (pure); no tables: an empty publication (tables added later). */
export function createPublicationSql(publication: string, tables: readonly { s: string; t: string }[]): string {
  const list = tables.map((x) => `${quoteIdent(x.s)}.${quoteIdent(x.t)}`).join(', ');
  return `CREATE PUBLICATION ${quoteIdent(publication)}${list ? ` FOR TABLE ${list}` : ''}`;
}

export function toPgSourcePosition(p: PgPromotionPosition): SequencePosition {
  return sequencePosition('postgres', p.lsn);
}

export function formatPgPromotionPosition(p: PgPromotionPosition): string {
  return `${formatLsn(p.lsn)} (slot ${p.slot}, publication ${p.publication})`;
}

/** Steps 3-4: the publication, then the slot; returns the slot's consistent point. */
async function createCapturePoint(
  c: pg.Client,
  d: Deadline,
  o: PgPromoteOptions,
): Promise<{ lsn: bigint; made: string }> {
  let made = `publication ${o.publication} kept`;
  if ((await pgRows(c, d, PG_PROMOTE_SQL.publicationExists, [o.publication])).length === 0) {
    const tables = (await pgRows(c, d, PG_PROMOTE_SQL.userTables)).map((r) => ({
      s: String(r['s']),
      t: String(r['t']),
    }));
    await pgRows(c, d, createPublicationSql(o.publication, tables));
    made = `publication ${o.publication} created for ${tables.length} table(s)`;
  }
  const slot = (await pgRows(c, d, PG_PROMOTE_SQL.slot, [o.slot]))[0];
  if (slot) {
    if (slot['active'] === 't' || slot['active'] === true) {
      throw new TidemarkError(
        `replication slot ${o.slot} is in use on the server being promoted: stop its reader first`,
        {
          code: 'PROMOTE_FAILED',
          retriable: true,
        },
      );
    }
    await pgRows(c, d, PG_PROMOTE_SQL.dropSlot, [o.slot]);
    made += `, leftover slot ${o.slot} dropped`;
  }
  const lsn = parseLsn(String((await pgRows(c, d, PG_PROMOTE_SQL.createSlot, [o.slot]))[0]?.['lsn']));
  return { lsn, made };
}

/** Makes the server writable with a capture point (see the header); throws PROMOTE_* naming the step. */
export async function promotePgServer(
  ep: PgEndpoint,
  o: PgPromoteOptions,
): Promise<StepReport & { position: PgPromotionPosition }> {
  const where = `${ep.host}:${ep.port}`;
  const log = o.log.child({ component: 'promote', server: where, engine: 'postgres' });
  const deadline = new Deadline(o.timeoutMs, `promote ${where}`);
  let c: pg.Client | undefined;
  let step = 'connect';
  try {
    c = await pgConnectWithin(ep, deadline, 'tidemark-promote');
    const wasRo = String((await pgRows(c, deadline, PG_FENCE_SQL.show))[0]?.['default_transaction_read_only']);
    await pgRows(c, deadline, PG_FENCE_SQL.sessionWritable);
    step = 'checking wal_level';
    const wal = String((await pgRows(c, deadline, PG_PROMOTE_SQL.walLevel))[0]?.['wal_level']);
    if (wal !== 'logical') {
      throw new TidemarkError(
        `${where} has wal_level=${wal}: its changes could not be captured after promotion; set wal_level=logical (a restart) before promoting it`,
        { code: 'PROMOTE_NOT_CAPTURABLE' },
      );
    }
    step = 're-synchronising sequences';
    const sequences = describeSequenceReport(await resyncPgSequences(c, deadline, log));
    step = 'creating the publication and the slot';
    const point = await createCapturePoint(c, deadline, o);
    step = PG_FENCE_SQL.reset;
    await pgRows(c, deadline, PG_FENCE_SQL.reset);
    await pgRows(c, deadline, PG_FENCE_SQL.reload);
    step = 'confirming default_transaction_read_only = off in a new session';
    await awaitSetting(ep, deadline, 'off');
    const position: PgPromotionPosition = {
      engine: 'postgres',
      lsn: point.lsn,
      slot: o.slot,
      publication: o.publication,
    };
    log.info(
      { position: formatPgPromotionPosition(position), sequences },
      'promoted: default_transaction_read_only off',
    );
    return {
      position,
      detail: `${where} writable (default_transaction_read_only was ${wasRo}), promotion position ${formatPgPromotionPosition(position)}; ${point.made}; ${sequences}`,
    };
  } catch (err) {
    log.warn({ step, err: String(err) }, 'promote failed');
    const hint = step.startsWith('confirming')
      ? ': it is still on, set elsewhere (postgresql.conf, ALTER DATABASE/ROLE … SET)?'
      : '';
    throw promoteFailure(err, ep, step, hint);
  } finally {
    deadline.clear();
    await pgClose(c);
  }
}
