/**
 * Fencing an old PostgreSQL primary (issue #14, takeover step fence-db for `source.kind: postgres`): make sure it
 * accepts no more writes before a standby is promoted. Each step runs under one deadline (`timeoutMs`; the
 * sessions carry it as statement_timeout too) and fails with a FENCE_STEP error naming the step:
 *
 *   session A   SET default_transaction_read_only = off   our own session only (ALTER SYSTEM must be allowed)
 *               ALTER SYSTEM SET default_transaction_read_only = on
 *               SELECT pg_reload_conf()                   the postmaster and every backend re-read the config
 *   session B   SHOW default_transaction_read_only        a NEW session (forked after the postmaster reloaded)
 *               polled until it reads `on`; then         reads on: every backend started from now on is read-only
 *               SELECT clock_timestamp()                  by default — T, the fence point
 *   session A   terminate every client backend started   an open read-write transaction keeps writing after a
 *               at or before T (pg_terminate_backend,     reload (the default applies to the next transaction only),
 *               waiting up to 1 s for each)               and a session may have SET the default off itself
 *   session C   SHOW default_transaction_read_only = on   a new session again; confirmed only when it reads on
 *               and no client backend started at or      AND none of those backends is left (polled until the
 *               before T is left                          deadline: a terminated backend exits asynchronously)
 *
 * Spared: our own sessions, and everything that is not a `client backend` — walsenders (the old site's capture may
 * stream the tail of the WAL into its journal, kept for the reconciliation after the takeover), autovacuum,
 * background workers. A superuser's backend is terminated too when the fence account may (a superuser fence
 * account); with pg_signal_backend only, PostgreSQL refuses it and the fence is NOT confirmed, naming it.
 *
 * LIMIT — `default_transaction_read_only` is a default: any session can `SET default_transaction_read_only = off`
 * or `BEGIN READ WRITE` and write. The fence ends every session that existed; a client that connects again and
 * overrides the default can write. Applications must not do that, or use a fence hook (power off, cut the port).
 *
 * The fence account (failover.account on a PostgreSQL site) needs: LOGIN, pg_signal_backend (terminate),
 * pg_read_all_stats (see every session's backend_type and start: without it the list would be silently
 * incomplete, so the fence is then not confirmed), `GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only`
 * and `GRANT EXECUTE ON FUNCTION pg_reload_conf()`. Never throws: a failure is an unconfirmed FenceReport.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { describeChain, TidemarkError } from '../core/errors.ts';
import { wrapPgError } from '../postgres/errors.ts';
import { openPgClient, type PgEndpoint } from '../postgres/session.ts';
import { Deadline } from './fence.ts';
import type { FenceReport } from './plan.ts';

export const PG_FENCE_SQL = {
  sessionWritable: 'SET default_transaction_read_only = off',
  set: 'ALTER SYSTEM SET default_transaction_read_only = on',
  reset: 'ALTER SYSTEM RESET default_transaction_read_only',
  reload: 'SELECT pg_reload_conf()',
  show: 'SHOW default_transaction_read_only',
  now: 'SELECT clock_timestamp()::text AS t',
  /** Client backends other than ours ($1 our pids as int[]); backend_type NULL: not visible to this role. */
  clients:
    'SELECT pid::text AS pid, usename, application_name AS app, backend_type AS type, ' +
    "(backend_start <= $2::timestamptz) AS before FROM pg_stat_activity WHERE pid <> ALL($1::int[]) AND (backend_type = 'client backend' OR backend_type IS NULL)",
  terminate: 'SELECT pg_terminate_backend($1::int, 1000) AS ok',
} as const;

export interface PgFenceOptions {
  /** Terminate the client backends (failover.fence.kill_sessions); off: confirmed on the setting alone. */
  readonly killSessions: boolean;
  readonly timeoutMs: number;
  readonly log: Logger;
}

export interface ClientBackend {
  readonly pid: string;
  readonly user: string | null;
  readonly app: string | null;
  /** null: this role cannot see the backend's type (no pg_read_all_stats). */
  readonly type: string | null;
  /** Started at or before the fence point (the moment new sessions were read-only by default). */
  readonly before: boolean;
}

/** The backends a fence must end (pure): started at or before the fence point; invisible ones count too. */
export function backendsToEnd(rows: readonly ClientBackend[]): ClientBackend[] {
  return rows.filter((r) => r.before || r.type === null);
}

export function describeBackends(rows: readonly ClientBackend[]): string {
  return rows
    .slice(0, 5)
    .map((r) =>
      r.type === null
        ? `pid ${r.pid} (not visible: grant pg_read_all_stats)`
        : `pid ${r.pid} (${r.user ?? '?'}${r.app ? `, ${r.app}` : ''})`,
    )
    .join(', ')
    .concat(rows.length > 5 ? ` and ${rows.length - 5} more` : '');
}

/** A PostgreSQL session bounded by the deadline: connect raced against it, statement_timeout set to what is left. */
export async function pgConnectWithin(ep: PgEndpoint, deadline: Deadline, app: string): Promise<pg.Client> {
  const ms = Math.max(1, Math.round(deadline.left()));
  const bounded = Object.defineProperty(
    { ...ep, connect_timeout_ms: Math.min(ep.connect_timeout_ms ?? ms, ms) },
    'password',
    {
      value: ep.password,
      enumerable: false,
    },
  );
  const pending = openPgClient(bounded, { applicationName: app });
  try {
    const c = await deadline.race(pending);
    deadline.onExpire(() => void c.end().catch(() => undefined));
    await deadline.race(c.query(`SET statement_timeout = ${Math.max(1, Math.round(deadline.left()))}`));
    return c;
  } catch (err) {
    pending.then((c) => c.end()).catch(() => {});
    throw err;
  }
}

export async function pgRows(
  c: pg.Client,
  deadline: Deadline,
  sql: string,
  values: unknown[] = [],
): Promise<Record<string, unknown>[]> {
  return (await deadline.race(c.query(sql, values))).rows as Record<string, unknown>[];
}

export async function pgClose(c: pg.Client | undefined): Promise<void> {
  if (c) await Promise.race([c.end().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
}

/** Runs one named step; any failure becomes FENCE_STEP naming it (the server's error as the cause). */
export async function pgStep<T>(where: string, step: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const cause = err instanceof TidemarkError ? err : wrapPgError(err, step);
    throw new TidemarkError(`${where}: ${step} failed: ${describeChain(cause)}`, {
      code: 'FENCE_STEP',
      retriable: true,
      cause,
      context: { step },
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls a new session until SHOW default_transaction_read_only reads `want`; returns the server time then. */
export async function awaitSetting(ep: PgEndpoint, deadline: Deadline, want: 'on' | 'off'): Promise<string> {
  for (;;) {
    const c = await pgConnectWithin(ep, deadline, 'tidemark-fence');
    try {
      const v = String((await pgRows(c, deadline, PG_FENCE_SQL.show))[0]?.['default_transaction_read_only']);
      if (v === want) return String((await pgRows(c, deadline, PG_FENCE_SQL.now))[0]?.['t']);
      if (deadline.left() < 100)
        throw new TidemarkError(`default_transaction_read_only reads ${v} in a new session, not ${want}`, {
          code: 'FENCE_STEP',
        });
    } finally {
      await pgClose(c);
    }
    await sleep(50);
  }
}

async function listClients(c: pg.Client, deadline: Deadline, ours: number[], at: string): Promise<ClientBackend[]> {
  return (await pgRows(c, deadline, PG_FENCE_SQL.clients, [ours, at])).map((r) => ({
    pid: String(r['pid']),
    user: (r['usename'] as string | null) ?? null,
    app: (r['app'] as string | null) ?? null,
    type: (r['type'] as string | null) ?? null,
    before: r['before'] === 't' || r['before'] === true,
  }));
}

const pidOf = async (c: pg.Client, d: Deadline) =>
  Number((await pgRows(c, d, 'SELECT pg_backend_pid() AS p'))[0]?.['p']);

/** Fences the server (see the header). Never throws: an unconfirmed report says which step failed and why. */
export async function fencePgServer(ep: PgEndpoint, opts: PgFenceOptions): Promise<FenceReport> {
  const where = `${ep.host}:${ep.port}`;
  const log = opts.log.child({ component: 'fence', server: where, engine: 'postgres' });
  const deadline = new Deadline(opts.timeoutMs, `fence ${where}`);
  let a: pg.Client | undefined;
  let check: pg.Client | undefined;
  try {
    a = await pgStep(where, 'connect', () => pgConnectWithin(ep, deadline, 'tidemark-fence'));
    const conn = a;
    await pgStep(where, PG_FENCE_SQL.set, async () => {
      await pgRows(conn, deadline, PG_FENCE_SQL.sessionWritable);
      await pgRows(conn, deadline, PG_FENCE_SQL.set);
    });
    await pgStep(where, PG_FENCE_SQL.reload, () => pgRows(conn, deadline, PG_FENCE_SQL.reload));
    const at = await pgStep(where, 'waiting for new sessions to be read-only', () => awaitSetting(ep, deadline, 'on'));
    const ours = [await pidOf(conn, deadline)];
    let ended = 0;
    const refused: string[] = [];
    if (opts.killSessions) {
      const victims = backendsToEnd(
        await pgStep(where, 'listing client backends', () => listClients(conn, deadline, ours, at)),
      );
      for (const v of victims.filter((x) => x.type !== null)) {
        try {
          await pgRows(conn, deadline, PG_FENCE_SQL.terminate, [Number(v.pid)]);
          ended++;
        } catch (err) {
          if (deadline.left() === 0) throw err;
          refused.push(`pid ${v.pid} (${v.user ?? '?'}): ${describeChain(wrapPgError(err, 'pg_terminate_backend'))}`);
        }
      }
    }
    check = await pgStep(where, 'connect (confirm)', () => pgConnectWithin(ep, deadline, 'tidemark-fence'));
    const c = check;
    ours.push(await pidOf(c, deadline));
    const ro = String(
      (await pgStep(where, PG_FENCE_SQL.show, () => pgRows(c, deadline, PG_FENCE_SQL.show)))[0]?.[
        'default_transaction_read_only'
      ],
    );
    if (ro !== 'on')
      return { confirmed: false, detail: `${where}: default_transaction_read_only reads ${ro} in a new session` };
    if (!opts.killSessions) {
      return {
        confirmed: true,
        detail: `${where}: default_transaction_read_only = on (client backends not terminated: failover.fence.kill_sessions is off)`,
      };
    }
    let left = backendsToEnd(await listClients(c, deadline, ours, at));
    while (left.length > 0 && refused.length === 0 && deadline.left() > 150) {
      await sleep(100);
      left = backendsToEnd(await listClients(c, deadline, ours, at));
    }
    if (left.length > 0) {
      const why = refused.length > 0 ? `; refused: ${refused.slice(0, 3).join('; ')}` : '';
      return {
        confirmed: false,
        detail: `${where}: default_transaction_read_only = on but client backends are left: ${describeBackends(left)}${why}`,
      };
    }
    log.info({ terminated: ended }, 'fenced: default_transaction_read_only = on, client backends terminated');
    return {
      confirmed: true,
      detail: `${where}: default_transaction_read_only = on, ${ended} client backend(s) terminated, none left`,
    };
  } catch (err) {
    log.warn({ err: describeChain(err) }, 'fence not confirmed');
    return { confirmed: false, detail: describeChain(err) };
  } finally {
    deadline.clear();
    await pgClose(a);
    await pgClose(check);
  }
}

/** Makes a fenced (or demoted) server writable again: ALTER SYSTEM RESET + reload, confirmed in a new session. */
export async function unfencePgServer(ep: PgEndpoint, opts: { timeoutMs: number; log: Logger }): Promise<string> {
  const where = `${ep.host}:${ep.port}`;
  const deadline = new Deadline(opts.timeoutMs, `unfence ${where}`);
  let a: pg.Client | undefined;
  try {
    a = await pgConnectWithin(ep, deadline, 'tidemark-fence');
    await pgRows(a, deadline, PG_FENCE_SQL.sessionWritable);
    await pgRows(a, deadline, PG_FENCE_SQL.reset);
    await pgRows(a, deadline, PG_FENCE_SQL.reload);
    await awaitSetting(ep, deadline, 'off');
    return `${where}: default_transaction_read_only reset (off in a new session)`;
  } finally {
    deadline.clear();
    await pgClose(a);
  }
}

/**
 * Whether the server takes writes by default (SHOW default_transaction_read_only = off, and not in recovery); null
 * when it cannot be reached. The PostgreSQL counterpart of fence.ts isWritable.
 */
export async function isPgWritable(ep: PgEndpoint, timeoutMs: number): Promise<boolean | null> {
  const deadline = new Deadline(timeoutMs, `default_transaction_read_only of ${ep.host}:${ep.port}`);
  let c: pg.Client | undefined;
  try {
    c = await pgConnectWithin(ep, deadline, 'tidemark-fence');
    const r = (
      await pgRows(c, deadline, 'SELECT current_setting($1) AS ro, pg_is_in_recovery()::text AS rec', [
        'default_transaction_read_only',
      ])
    )[0];
    return r?.['ro'] === 'off' && r?.['rec'] === 'false';
  } catch (err) {
    const e = err instanceof TidemarkError ? err : wrapPgError(err, 'read-only check');
    if (e.retriable) return null;
    throw e;
  } finally {
    deadline.clear();
    await pgClose(c);
  }
}
