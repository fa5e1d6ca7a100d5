/**
 * Fencing the old primary (issue #5, takeover steps fence-db and fence-hook): make sure it accepts no more
 * writes before a standby is promoted — never two writable primaries.
 *
 * fenceServer, when the old primary answers (each statement bounded by one deadline, `timeoutMs`):
 *
 *   SET SESSION lock_wait_timeout = <seconds left>   SET GLOBAL read_only waits for the global read lock behind
 *                                                   running writes and LOCK TABLES; while it waits it blocks new
 *                                                   writers. Bounded on the server too, not only here.
 *   kill pass 1 (kill_sessions)                      every other client session: a long write or a LOCK TABLES
 *                                                   would otherwise hold read_only up for its whole duration
 *   SET GLOBAL read_only = ON                        an open transaction's COMMIT now fails (ER_OPTION_PREVENTS…)
 *   kill pass 2 (kill_sessions)                      sessions that connected in between
 *   SELECT @@global.read_only                        confirmed only when it reads 1 (and every kill succeeded)
 *
 * Sessions spared: our own, replication and system threads (`system user`, `event_scheduler`, Slave_* and
 * Daemon commands: they are not clients and cannot be fenced by KILL), and `Binlog Dump` threads: they only
 * read, and letting the old site's capture stream the tail of the binlog keeps those last transactions in its
 * journal for the reconciliation after the takeover. Killing them would not make the fence any tighter.
 *
 * LIMIT — MariaDB has no super_read_only. `read_only` does not stop accounts holding READ_ONLY ADMIN (ALL
 * PRIVILEGES includes it; on 10.11 SUPER no longer does): their sessions are killed here, but such an account
 * that reconnects can write again. Give applications accounts without READ_ONLY ADMIN, or use a fence hook
 * (power off, cut the port) that also covers them. The report names the accounts that hold it, when visible.
 *
 * The fence account needs READ_ONLY ADMIN (SET GLOBAL read_only), PROCESS (see other users' sessions: without
 * it the kill list would be silently incomplete, so the fence is then not confirmed) and CONNECTION ADMIN (KILL).
 */
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { describeChain, TidemarkError } from '../core/errors.ts';
import { isRetriableDbError, serverFields } from '../mysql/errors.ts';
import { type MysqlEndpoint, openSession } from '../mysql/session.ts';
import { describeResult, runCommand } from './command.ts';
import { eventJson } from './hooks.ts';
import type { FenceReport } from './plan.ts';

/** One deadline for a whole database operation; when it passes, the connection is destroyed. */
export class Deadline {
  readonly #until: number;
  readonly #ms: number;
  readonly #expired: Promise<never>;
  #timer: NodeJS.Timeout | undefined;
  #onExpire: (() => void) | undefined;

  constructor(ms: number, what: string) {
    this.#ms = ms;
    this.#until = performance.now() + ms;
    this.#expired = new Promise<never>((_, reject) => {
      this.#timer = setTimeout(() => {
        reject(new TidemarkError(`${what}: no answer within ${ms} ms`, { code: 'DB_TIMEOUT', retriable: true }));
        this.#onExpire?.();
      }, ms);
    });
    this.#expired.catch(() => {});
  }

  get ms(): number {
    return this.#ms;
  }

  left(): number {
    return Math.max(0, this.#until - performance.now());
  }

  onExpire(fn: () => void): void {
    this.#onExpire = fn;
  }

  race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.#expired]);
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

/** Did a connection attempt fail because the server is not there (network, refused, timed out)? */
export function isUnreachable(err: unknown): boolean {
  return isRetriableDbError(err);
}

/**
 * Opens a session bounded by the deadline (handshake and session setup). On expiry a late connection is closed
 * as soon as it arrives; the connection is destroyed when the deadline passes later on.
 */
export async function connectWithin(ep: MysqlEndpoint, deadline: Deadline): Promise<mysql.Connection> {
  const ms = Math.max(1, Math.round(deadline.left()));
  // A spread drops the non-enumerable password (core/secret.ts withPassword): carry it over, still hidden.
  const bounded = { ...ep, connect_timeout_ms: Math.min(ep.connect_timeout_ms ?? ms, ms) };
  const pending = openSession(Object.defineProperty(bounded, 'password', { value: ep.password, enumerable: false }), {
    apply: false,
  });
  try {
    const conn = await deadline.race(pending);
    deadline.onExpire(() => conn.destroy());
    return conn;
  } catch (err) {
    pending.then((c) => c.destroy()).catch(() => {});
    throw err;
  }
}

export async function queryRows(
  conn: mysql.Connection,
  deadline: Deadline,
  sql: string,
  values: unknown[] = [],
): Promise<mysql.RowDataPacket[]> {
  const [rows] = await deadline.race(conn.query<mysql.RowDataPacket[]>(sql, values));
  return rows;
}

/** The first message of an error chain, with the server's errno when there is one. */
export function reason(err: unknown): string {
  const errno = serverFields(err).errno;
  return `${describeChain(err)}${errno !== undefined ? ` (errno ${errno})` : ''}`;
}

export async function closeQuietly(conn: mysql.Connection | undefined): Promise<void> {
  if (!conn) return;
  await Promise.race([conn.end().catch(() => conn.destroy()), new Promise((r) => setTimeout(r, 1000))]);
  conn.destroy();
}

/** Commands of threads that are not client sessions, or must be spared (see the header). */
const SPARED_COMMANDS = new Set(['Binlog Dump', 'Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker', 'Killed']);
const SPARED_USERS = new Set(['system user', 'event_scheduler']);

export interface ProcessRow {
  readonly id: string;
  readonly user: string;
  readonly command: string;
}

/** Which of the process list's threads a fence kills (pure). */
export function sessionsToKill(rows: readonly ProcessRow[], selfId: string): ProcessRow[] {
  return rows.filter((r) => r.id !== selfId && !SPARED_USERS.has(r.user) && !SPARED_COMMANDS.has(r.command));
}

interface KillTally {
  killed: number;
  gone: number;
  spared: number;
  failed: string[];
}

async function killPass(conn: mysql.Connection, deadline: Deadline, selfId: string, t: KillTally): Promise<void> {
  const rows = await queryRows(
    conn,
    deadline,
    'SELECT ID AS id, USER AS user, COMMAND AS command FROM information_schema.PROCESSLIST',
  );
  const all = rows.map((r) => ({ id: String(r['id']), user: String(r['user']), command: String(r['command']) }));
  const victims = sessionsToKill(all, selfId);
  t.spared = all.length - victims.length - 1;
  for (const v of victims) {
    try {
      await queryRows(conn, deadline, `KILL CONNECTION ${BigInt(v.id)}`);
      t.killed++;
    } catch (err) {
      if (serverFields(err).errno === 1094)
        t.gone++; // unknown thread: it ended by itself
      else if (serverFields(err).errno !== undefined) t.failed.push(`${v.user}#${v.id}: ${reason(err)}`);
      else throw err;
    }
  }
}

/** Does the current account hold `privilege` globally (directly; roles are not looked at)? */
async function hasGlobalPrivilege(conn: mysql.Connection, deadline: Deadline, privilege: string): Promise<boolean> {
  const rows = await queryRows(
    conn,
    deadline,
    "SELECT COUNT(*) AS n FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = ? AND GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')",
    [privilege],
  );
  return Number(rows[0]?.['n'] ?? 0) > 0;
}

/**
 * Accounts that read_only does not stop (best effort: only those this account may see — with the documented
 * grants, no SELECT on `mysql`, that is itself).
 */
async function readOnlyAdmins(conn: mysql.Connection, deadline: Deadline): Promise<string[]> {
  try {
    const rows = await queryRows(
      conn,
      deadline,
      "SELECT DISTINCT GRANTEE AS g FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = 'READ_ONLY ADMIN' ORDER BY 1",
    );
    return rows.map((r) => String(r['g']).replaceAll("'", ''));
  } catch {
    return [];
  }
}

export interface FenceOptions {
  readonly killSessions: boolean;
  /** Bound of the whole fence: connect, every statement. */
  readonly timeoutMs: number;
  readonly log: Logger;
}

/**
 * Fences a MariaDB server (see the header). Never throws: an unreachable server or a failed statement is a
 * FenceReport with `confirmed: false` and the reason.
 */
export async function fenceServer(ep: MysqlEndpoint, opts: FenceOptions): Promise<FenceReport> {
  const where = `${ep.host}:${ep.port}`;
  const log = opts.log.child({ component: 'fence', server: where });
  const deadline = new Deadline(opts.timeoutMs, `fence ${where}`);
  let conn: mysql.Connection | undefined;
  try {
    conn = await connectWithin(ep, deadline);
  } catch (err) {
    deadline.clear();
    const word = isUnreachable(err) ? 'unreachable' : 'cannot connect';
    log.warn({ err: reason(err) }, `fence: ${where} ${word}`);
    return { confirmed: false, detail: `${word}: ${reason(err)}` };
  }
  const tally: KillTally = { killed: 0, gone: 0, spared: 0, failed: [] };
  let step = 'session setup';
  try {
    const self = String((await queryRows(conn, deadline, 'SELECT CONNECTION_ID() AS id'))[0]?.['id']);
    const wasRo = Number((await queryRows(conn, deadline, 'SELECT @@global.read_only AS ro'))[0]?.['ro']) === 1;
    await queryRows(conn, deadline, 'SET SESSION lock_wait_timeout = ?', [
      Math.max(1, Math.floor(deadline.left() / 1000)),
    ]);
    let seesAll = true;
    if (opts.killSessions) {
      step = 'privilege check';
      seesAll = await hasGlobalPrivilege(conn, deadline, 'PROCESS');
      step = 'killing sessions before read_only';
      await killPass(conn, deadline, self, tally);
    }
    step = 'SET GLOBAL read_only = ON';
    await queryRows(conn, deadline, 'SET GLOBAL read_only = ON');
    log.info({ wasReadOnly: wasRo }, 'fence: read_only = ON');
    if (opts.killSessions) {
      step = 'killing sessions after read_only';
      await killPass(conn, deadline, self, tally);
      log.info({ killed: tally.killed, spared: tally.spared, failed: tally.failed.length }, 'fence: sessions killed');
    }
    step = 'confirming read_only';
    const ro = Number((await queryRows(conn, deadline, 'SELECT @@global.read_only AS ro'))[0]?.['ro']);
    const admins = await readOnlyAdmins(conn, deadline);
    const problems: string[] = [];
    if (ro !== 1) problems.push(`@@global.read_only reads ${ro} after SET GLOBAL read_only = ON`);
    if (!seesAll) problems.push("this account lacks PROCESS: other users' sessions were not visible, not killed");
    if (tally.failed.length > 0) problems.push(`could not kill ${tally.failed.join(', ')}`);
    const parts = [
      `read_only=ON on ${where}${wasRo ? ' (was ON already)' : ''}`,
      opts.killSessions
        ? `${tally.killed} session(s) killed${tally.gone ? `, ${tally.gone} ended by themselves` : ''}, ` +
          `${tally.spared} replication/system/binlog-dump thread(s) spared`
        : 'sessions not killed (kill_sessions off)',
      'no super_read_only in MariaDB: accounts with READ_ONLY ADMIN can still write' +
        (admins.length > 0
          ? ` (those this account can see: ${admins.slice(0, 5).join(', ')}${admins.length > 5 ? ', …' : ''})`
          : ''),
      ...problems,
    ];
    if (problems.length > 0) log.warn({ problems }, 'fence: not confirmed');
    return { confirmed: problems.length === 0, detail: parts.join('; ') };
  } catch (err) {
    log.warn({ step, err: reason(err) }, 'fence: failed');
    const done = tally.killed > 0 ? ` (${tally.killed} session(s) killed before that)` : '';
    return { confirmed: false, detail: `${step} failed on ${where}: ${reason(err)}${done}` };
  } finally {
    deadline.clear();
    await closeQuietly(conn);
  }
}

/**
 * Is the server writable (`@@global.read_only` = 0)? null when it cannot be reached within `timeoutMs` (network,
 * refused, timed out); any other error (login refused, privileges) is thrown: it needs fixing, not waiting.
 */
export async function isWritable(ep: MysqlEndpoint, timeoutMs: number): Promise<boolean | null> {
  const deadline = new Deadline(timeoutMs, `read_only of ${ep.host}:${ep.port}`);
  let conn: mysql.Connection | undefined;
  try {
    conn = await connectWithin(ep, deadline);
    const rows = await queryRows(conn, deadline, 'SELECT @@global.read_only AS ro');
    return Number(rows[0]?.['ro']) === 0;
  } catch (err) {
    if (isUnreachable(err)) return null;
    throw err;
  } finally {
    deadline.clear();
    await closeQuietly(conn);
  }
}

export interface FenceHookOptions {
  readonly timeoutMs: number;
  /** Sent as JSON on the hook's stdin (the takeover's context: old primary, winner, …). */
  readonly event: object;
  readonly signal?: AbortSignal;
  readonly log?: Logger;
}

/** Runs the fence hook; exit 0 confirms the fence. Never throws. */
export async function fenceHook(argv: readonly string[], opts: FenceHookOptions): Promise<FenceReport> {
  try {
    const r = await runCommand(argv, {
      stdin: `${eventJson(opts.event)}\n`,
      timeoutMs: opts.timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const said = r.stdout.trim().split('\n').at(-1)?.slice(0, 300) ?? '';
    if (r.code === 0) {
      opts.log?.info({ command: argv[0], ms: r.durationMs }, 'fence hook confirmed');
      return {
        confirmed: true,
        detail: `fence hook ${argv[0]} exited 0 in ${r.durationMs} ms${said ? `: ${said}` : ''}`,
      };
    }
    opts.log?.warn({ command: argv[0] }, `fence hook failed: ${describeResult(argv, r)}`);
    return { confirmed: false, detail: `fence hook ${describeResult(argv, r)}${said ? ` (said: ${said})` : ''}` };
  } catch (err) {
    opts.log?.warn({ command: argv[0] }, `fence hook failed: ${describeChain(err)}`);
    return { confirmed: false, detail: `fence hook: ${describeChain(err)}` };
  }
}
