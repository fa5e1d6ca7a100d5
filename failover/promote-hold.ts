/**
 * The statements a takeover runs around promotion on MySQL/MariaDB servers, apart from promote/demote itself
 * (promote.ts): holding the promoted target's applier for good, and making the old primary writable again when
 * a switchover does not complete. node/failover-takeover.ts binds them to the config's servers.
 */
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { PROMOTED_HOLD, setHoldSql } from '../apply/mysql/position-table.ts';
import { describeChain } from '../core/errors.ts';
import { type MysqlEndpoint, openSession } from '../mysql/session.ts';

export { PROMOTED_HOLD };

const HOLD_ATTEMPTS = 10;

/**
 * Holds the target's position row for good ("promoted …"): its applier stops at its next group. An applier
 * stuck inside an unfinished transaction at the mirror's end (the rest never came) holds that row's lock: after
 * a 1 s lock wait its sessions are killed through the failover account `admin` (their transaction rolls back)
 * and the hold is tried again; the applier reconnects, finds the hold and stays paused. The same works from
 * `tidemark failover`, which runs in another process than the applier.
 */
export async function holdPromoted(
  target: MysqlEndpoint & { readonly name: string },
  admin: MysqlEndpoint,
  source: string,
  why: string,
  log: Logger,
): Promise<void> {
  const conn = await openSession(target, { apply: false });
  try {
    await conn.query('SET SESSION innodb_lock_wait_timeout = 1');
    for (let attempt = 1; ; attempt++) {
      try {
        await conn.query(setHoldSql(source, why));
        return;
      } catch (err) {
        const errno = (err as { errno?: number }).errno ?? (err as { cause?: { errno?: number } }).cause?.errno;
        if (errno !== 1205 || attempt >= HOLD_ATTEMPTS) throw err;
        const killed = await killSessionsOf(admin, target.user, conn.threadId ?? -1);
        log.warn(
          { killed },
          `promote: an apply session holds ${target.name}'s position row (an unfinished transaction): killed it`,
        );
      }
    }
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** Kills the sessions of `user` on the server except `keep`; returns how many. */
async function killSessionsOf(ep: MysqlEndpoint, user: string, keep: number): Promise<number> {
  const conn = await openSession(ep, { apply: false });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> ? AND ID <> CONNECTION_ID()',
      [user, keep],
    );
    for (const r of rows) await conn.query(`KILL ${Number(r['ID'])}`).catch(() => undefined);
    return rows.length;
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** A switchover that did not complete: the fenced primary is made writable again (or the log says how). */
export async function unfence(primary: MysqlEndpoint, account: string, log: Logger): Promise<void> {
  try {
    const conn = await openSession(primary, { apply: false });
    try {
      await conn.query('SET GLOBAL read_only = OFF');
    } finally {
      await conn.end().catch(() => undefined);
    }
    log.warn('switchover not completed: the primary is writable again');
  } catch (err) {
    log.error(
      { err: describeChain(err) },
      `switchover not completed and the primary could not be made writable again: set read_only=OFF on it by hand (account ${account})`,
    );
  }
}
