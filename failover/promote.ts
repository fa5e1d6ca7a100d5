/**
 * Promoting the winning standby's server (takeover step promote, after the caller stopped its applier) and
 * demoting a server again (failback).
 *
 * The promotion position is where the other standbys start capturing from the new primary: everything in its
 * binlog after it must reach them, nothing before it. The order, and why:
 *
 *   1. SELECT @@log_bin, @@read_only        no binlog: refused before anything changed (the new primary could
 *                                            not be captured by the other standbys; set log_bin=ON)
 *   2. SHOW MASTER STATUS                    ┐ the position, read while the server is still read-only (or at
 *      SELECT @@global.gtid_binlog_pos       │ least before we open it to clients); the binlog end is re-read
 *      SHOW MASTER STATUS                    ┘ and the three reads retried until both ends agree, so the file,
 *                                              offset and GTID describe the same point without any global lock
 *                                              (FLUSH TABLES WITH READ LOCK is not used)
 *   3. SET GLOBAL read_only = OFF            clients may write from here on
 *   4. SELECT @@read_only, SHOW MASTER STATUS confirm writable; report how far the binlog moved meanwhile
 *   5. ALTER EVENT … ENABLE                  every SLAVESIDE_DISABLED event (an event the source had enabled, kept
 *                                            off while this was a replica: mysql/objects.ts) runs again; logged per
 *                                            event. After the position, so the other standbys follow it (their
 *                                            apply disables it again there). A failure here is a warning in the
 *                                            report: the server is already the primary.
 *
 * Reading after step 3 would be racy the wrong way: a client write landing between OFF and the read would sit
 * before the position and never reach the other standbys. Read before, anything written after the read (by an
 * account with READ_ONLY ADMIN, or by anyone when the replica was not read-only) lies after the position and is
 * captured. The caller must have stopped tidemark's applier on this server first: its transactions must all
 * be before the position (they came through the journal the other standbys already have).
 *
 * Privileges: READ_ONLY ADMIN (read_only), BINLOG MONITOR (SHOW MASTER STATUS); for step 5 EVENT on the replicated
 * schemas and SET USER (the ALTER keeps each event's definer).
 */
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import type { MysqlEndpoint } from '../mysql/session.ts';
import { TidemarkError } from '../core/errors.ts';
import type { MysqlPosition } from '../record/position.ts';
import { closeQuietly, connectWithin, Deadline, queryRows, reason } from './fence.ts';
import { enableEventSql, SLAVESIDE_DISABLED_EVENTS_SQL } from '../mysql/objects.ts';
import type { StepReport } from './plan.ts';

export interface PromotionPosition {
  /** @@gtid_binlog_pos at the promotion point ("" when the binlog holds no GTID yet). */
  readonly gtid: string;
  readonly file: string;
  readonly offset: bigint;
}

export interface PromoteReport extends StepReport {
  readonly position: PromotionPosition;
}

export interface PromoteOptions {
  /** Bound of the whole operation: connect and every statement. */
  readonly timeoutMs: number;
  readonly log: Logger;
}

/** How often the position sandwich is retried while the binlog keeps moving. */
const POSITION_ATTEMPTS = 5;

export function toSourcePosition(p: PromotionPosition): MysqlPosition {
  return { kind: 'mysql', binlog: { file: p.file, offset: p.offset }, ...(p.gtid ? { gtid: p.gtid } : {}) };
}

export function formatPromotionPosition(p: PromotionPosition): string {
  return `${p.file}:${p.offset}${p.gtid ? ` (gtid ${p.gtid})` : ''}`;
}

async function binlogEnd(conn: mysql.Connection, deadline: Deadline): Promise<{ file: string; offset: bigint }> {
  const rows = await queryRows(conn, deadline, 'SHOW MASTER STATUS');
  const r = rows[0];
  if (!r || typeof r['File'] !== 'string' || r['File'] === '') {
    throw new TidemarkError('SHOW MASTER STATUS returned no binlog file (is log_bin ON?)', { code: 'PROMOTE_FAILED' });
  }
  return { file: r['File'], offset: BigInt(String(r['Position'])) };
}

/** The binlog end and the GTID position at one point (see the header, step 2). */
export async function readPosition(conn: mysql.Connection, deadline: Deadline): Promise<PromotionPosition> {
  for (let attempt = 1; attempt <= POSITION_ATTEMPTS; attempt++) {
    const before = await binlogEnd(conn, deadline);
    const gtid = String((await queryRows(conn, deadline, 'SELECT @@global.gtid_binlog_pos AS g'))[0]?.['g'] ?? '');
    const after = await binlogEnd(conn, deadline);
    if (before.file === after.file && before.offset === after.offset) return { gtid, ...after };
  }
  throw new TidemarkError(
    `the binlog kept moving during ${POSITION_ATTEMPTS} position reads: something still writes to the server ` +
      'being promoted (is the applier stopped?)',
    { code: 'PROMOTE_FAILED', retriable: true },
  );
}

/** Step 5: the events kept SLAVESIDE_DISABLED on the replica enabled; what happened, for the report. */
async function enableReplicaEvents(conn: mysql.Connection, deadline: Deadline, log: Logger): Promise<string> {
  const names: string[] = [];
  try {
    for (const r of await queryRows(conn, deadline, SLAVESIDE_DISABLED_EVENTS_SQL)) {
      const o = { schema: String(r['s']), name: String(r['n']), definer: String(r['d']) };
      await queryRows(conn, deadline, enableEventSql(o));
      names.push(`${o.schema}.${o.name}`);
      log.info({ event: `${o.schema}.${o.name}` }, 'promoted: replicated event enabled');
    }
  } catch (err) {
    log.warn({ enabled: names, err: String(err) }, 'promoted, but enabling the replicated events failed');
    return `; enabling the replicated events failed after ${names.length} (${reason(err)}): ALTER EVENT … ENABLE by hand`;
  }
  return names.length > 0 ? `; events enabled: ${names.join(', ')}` : '';
}

/**
 * A promote failure as PROMOTE_FAILED naming the step (`hint` appended); a PROMOTE_* error passes through. Shared
 * with pg-promote.ts.
 */
export function promoteFailure(
  err: unknown,
  ep: { host: string; port: number },
  step: string,
  hint = '',
): TidemarkError {
  if (err instanceof TidemarkError && err.code.startsWith('PROMOTE_')) return err;
  return new TidemarkError(`promote ${ep.host}:${ep.port}: ${step} failed${hint}`, {
    code: 'PROMOTE_FAILED',
    cause: err,
    retriable: err instanceof TidemarkError && err.retriable,
    context: { host: ep.host, port: ep.port, step },
  });
}

/**
 * Makes the server writable and returns the promotion position (see the header for the order). Throws a
 * TidemarkError naming the step on any failure: a promote that failed before step 3 changed nothing.
 */
export async function promoteServer(ep: MysqlEndpoint, opts: PromoteOptions): Promise<PromoteReport> {
  const where = `${ep.host}:${ep.port}`;
  const log = opts.log.child({ component: 'promote', server: where });
  const deadline = new Deadline(opts.timeoutMs, `promote ${where}`);
  let conn: mysql.Connection | undefined;
  let step = 'connect';
  try {
    conn = await connectWithin(ep, deadline);
    step = 'checking log_bin';
    const pre = (await queryRows(conn, deadline, 'SELECT @@global.log_bin AS lb, @@global.read_only AS ro'))[0];
    if (Number(pre?.['lb']) !== 1) {
      throw new TidemarkError(
        `${where} has no binary log (log_bin=OFF): the other standbys could not capture from it; ` +
          'set log_bin=ON (with binlog_format=ROW) before promoting it',
        { code: 'PROMOTE_FAILED' },
      );
    }
    const wasRo = Number(pre?.['ro']) === 1;
    step = 'reading the promotion position';
    const position = await readPosition(conn, deadline);
    step = 'SET GLOBAL read_only = OFF';
    await queryRows(conn, deadline, 'SET GLOBAL read_only = OFF');
    step = 'confirming read_only = OFF';
    const ro = Number((await queryRows(conn, deadline, 'SELECT @@global.read_only AS ro'))[0]?.['ro']);
    if (ro !== 0)
      throw new TidemarkError(`@@global.read_only reads ${ro} after SET GLOBAL read_only = OFF`, {
        code: 'PROMOTE_FAILED',
      });
    const now = await binlogEnd(conn, deadline);
    const moved =
      now.file !== position.file
        ? `; the binlog has rotated since (now ${now.file}:${now.offset})`
        : now.offset !== position.offset
          ? `; ${now.offset - position.offset} binlog bytes written since (after the position: captured)`
          : '';
    log.info({ position: formatPromotionPosition(position), wasReadOnly: wasRo }, 'promoted: read_only = OFF');
    step = 'enabling events';
    const events = await enableReplicaEvents(conn, deadline, log);
    return {
      position,
      detail: `${where} writable (read_only was ${wasRo ? 'ON' : 'OFF already'}), promotion position ${formatPromotionPosition(position)}${moved}${events}`,
    };
  } catch (err) {
    log.warn({ step, err: String(err) }, 'promote failed');
    throw promoteFailure(err, ep, step);
  } finally {
    deadline.clear();
    await closeQuietly(conn);
  }
}

/** Makes the server read-only again (failback: the old primary rejoining as a standby). Throws on failure. */
export async function demoteServer(ep: MysqlEndpoint, opts: PromoteOptions): Promise<StepReport> {
  const where = `${ep.host}:${ep.port}`;
  const deadline = new Deadline(opts.timeoutMs, `demote ${where}`);
  let conn: mysql.Connection | undefined;
  try {
    conn = await connectWithin(ep, deadline);
    await queryRows(conn, deadline, 'SET SESSION lock_wait_timeout = ?', [
      Math.max(1, Math.floor(deadline.left() / 1000)),
    ]);
    await queryRows(conn, deadline, 'SET GLOBAL read_only = ON');
    const ro = Number((await queryRows(conn, deadline, 'SELECT @@global.read_only AS ro'))[0]?.['ro']);
    if (ro !== 1)
      throw new TidemarkError(`@@global.read_only reads ${ro} after SET GLOBAL read_only = ON`, {
        code: 'DEMOTE_FAILED',
      });
    opts.log.child({ component: 'promote', server: where }).info('demoted: read_only = ON');
    return {
      detail: `${where} read-only (accounts with READ_ONLY ADMIN can still write: MariaDB has no super_read_only)`,
    };
  } catch (err) {
    if (err instanceof TidemarkError && err.code === 'DEMOTE_FAILED') throw err;
    throw new TidemarkError(`demote ${where} failed`, {
      code: 'DEMOTE_FAILED',
      cause: err,
      context: { host: ep.host, port: ep.port },
    });
  } finally {
    deadline.clear();
    await closeQuietly(conn);
  }
}
