/**
 * Stopping tidemark's applier on a PostgreSQL target for good before it is promoted (the PostgreSQL counterpart of
 * promote-hold.ts): the hold column of its row in tidemark.applied is set ("promoted …"); the applier's store
 * matches no row from then on and it stays paused. An apply session stuck inside an unfinished transaction (the
 * rest never came) holds that row's lock: after a 1 s lock_timeout the apply role's other backends are terminated
 * through the failover account (their transaction rolls back) and the hold is tried again.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { setHoldSql } from '../apply/postgres/position.ts';
import { TidemarkError } from '../core/errors.ts';
import { sqlStateOf, wrapPgError } from '../postgres/errors.ts';
import { openPgClient, type PgEndpoint } from '../postgres/session.ts';
import { PG_FENCE_SQL } from './pg-fence.ts';

const HOLD_ATTEMPTS = 10;

export const PG_HOLD_SQL = {
  lockTimeout: 'SET lock_timeout = 1000',
  /** Backends of the apply role ($1) other than the holding session ($2) and ours. */
  terminateRole:
    'SELECT count(pg_terminate_backend(pid, 1000))::int AS n FROM pg_stat_activity WHERE usename = $1 AND pid <> $2::int AND pid <> pg_backend_pid()',
} as const;

async function withClient<T>(ep: PgEndpoint, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await openPgClient(ep, { applicationName: 'tidemark-promote' });
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Holds the target's row for `source` (see the module comment); `admin` terminates stuck apply sessions. */
export async function holdPgPromoted(
  target: PgEndpoint,
  admin: PgEndpoint,
  source: string,
  why: string,
  log: Logger,
): Promise<void> {
  await withClient(target, async (c) => {
    await c.query(PG_FENCE_SQL.sessionWritable);
    await c.query(PG_HOLD_SQL.lockTimeout);
    const self = Number((await c.query('SELECT pg_backend_pid() AS p')).rows[0]?.['p']);
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await c.query(setHoldSql, [source, why]);
        if (r.rowCount !== 1) {
          throw new TidemarkError(
            `${target.host}:${target.port} has no tidemark.applied row for ${source}: nothing was applied there`,
            {
              code: 'PROMOTE_FAILED',
            },
          );
        }
        return;
      } catch (err) {
        if (sqlStateOf(err) !== '55P03' || attempt >= HOLD_ATTEMPTS) throw wrapPgError(err, 'holding the applier');
        const n = await withClient(
          admin,
          async (a) => (await a.query(PG_HOLD_SQL.terminateRole, [target.user, self])).rows[0]?.['n'],
        );
        log.warn(
          { terminated: n },
          'promote: an apply session holds the position row (an unfinished transaction): terminated it',
        );
      }
    }
  });
}
