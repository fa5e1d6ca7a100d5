/**
 * The PostgreSQL takeover executors against real PostgreSQL 15 (issue #14, scope 7), run as a least-privilege
 * failover role (pg_signal_backend, pg_read_all_stats, ALTER SYSTEM ON PARAMETER default_transaction_read_only,
 * EXECUTE pg_reload_conf; on the promoted server also REPLICATION, CREATE on the database and membership in the
 * apply role that owns the tables):
 *   - fence (port 5495): a superuser's session it may not terminate → not confirmed, naming it; then, without it,
 *     confirmed: the open transaction's session is gone (its insert never committed), the idle session is gone,
 *     a new client session cannot write (25006), a walsender is spared; the monitor's heartbeat probe reads it as
 *     failed (read-only); unfence makes it writable again and the probe writes its row;
 *   - hold + promote (port 5496): an apply session stuck in a transaction on the position row is terminated and
 *     the hold set; the promotion creates the publication and the slot while read-only, then opens the server; a
 *     client write after it is decodable from the slot (captured from the promotion point on).
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql, ensureRowSql, selectSql } from '../../apply/postgres/position.ts';
import { silentLogger } from '../../core/log.ts';
import { fencePgServer, unfencePgServer } from '../../failover/pg-fence.ts';
import { holdPgPromoted } from '../../failover/pg-hold.ts';
import { PgHeartbeatProbe } from '../../failover/pg-probe.ts';
import { promotePgServer } from '../../failover/pg-promote.ts';
import { parseLsn } from '../../postgres/lsn.ts';
import { openPgClient } from '../../postgres/session.ts';
import { APPLY_USER, CAPTURE_USER, pgAdmin, startPostgres, stopPostgres } from '../fixtures/postgres.ts';

const FENCED = { name: 'pgto-fenced', port: 5495 };
const PROMOTED = { name: 'pgto-promoted', port: 5496 };
const FAILOVER = { user: 'tm_failover', password: 'failover-pw' };
const APP = { user: 'tm_app', password: 'app-pw' };
const log = silentLogger;

const ep = (port: number, who: { user: string; password: string }) =>
  Object.defineProperty({ host: '127.0.0.1', port, user: who.user, database: 'appdb' }, 'password', {
    value: who.password,
    enumerable: false,
  }) as { host: string; port: number; user: string; database: string; password: string };

const FAILOVER_ROLE = `
  CREATE ROLE tm_failover LOGIN REPLICATION PASSWORD '${FAILOVER.password}' IN ROLE pg_signal_backend, pg_read_all_stats;
  GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only TO tm_failover;
  CREATE ROLE tm_app LOGIN PASSWORD '${APP.password}';`;

async function setup(port: number): Promise<pg.Client> {
  const root = await pgAdmin(port);
  root.on('error', () => {});
  await root.query(FAILOVER_ROLE);
  await root.query('CREATE DATABASE appdb');
  await root.end();
  const db = await pgAdmin(port, 'appdb');
  db.on('error', () => {});
  // Function privileges are per database: in the one the failover account connects to.
  await db.query('GRANT EXECUTE ON FUNCTION pg_reload_conf() TO tm_failover');
  return db;
}

const opened: pg.Client[] = [];
async function session(port: number, who: { user: string; password: string }): Promise<pg.Client> {
  const c = await openPgClient(ep(port, who));
  opened.push(c);
  return c;
}

const alive = (c: pg.Client) =>
  c.query('SELECT 1').then(
    () => true,
    () => false,
  );

describe('PostgreSQL fence, hold and promote', () => {
  let fencedRoot: pg.Client;
  let promotedRoot: pg.Client;

  beforeAll(async () => {
    startPostgres(FENCED.name, FENCED.port, { fresh: true });
    startPostgres(PROMOTED.name, PROMOTED.port, { fresh: true });
    fencedRoot = await setup(FENCED.port);
    await fencedRoot.query(`CREATE TABLE public.t (id int PRIMARY KEY); GRANT INSERT, SELECT ON public.t TO tm_app;
      GRANT SELECT ON public.t TO tidemark_cap; GRANT CREATE ON DATABASE appdb TO tm_failover; CREATE PUBLICATION tidemark FOR TABLE public.t`);
    promotedRoot = await setup(PROMOTED.port);
    await promotedRoot.query(`GRANT CREATE ON DATABASE appdb TO tidemark_apply, tm_failover; GRANT tidemark_apply TO tm_failover;
      CREATE SCHEMA app AUTHORIZATION tidemark_apply; GRANT USAGE ON SCHEMA app TO tm_app`);
    const apply = await session(PROMOTED.port, APPLY_USER);
    for (const sql of createSql) await apply.query(sql);
    await apply.query(ensureRowSql, ['pgsrc']);
    await apply.query(`CREATE TABLE app.t (id int PRIMARY KEY, v text); GRANT INSERT ON app.t TO tm_app`);
    // A replica is read-only for clients by default.
    await promotedRoot.query('ALTER SYSTEM SET default_transaction_read_only = on');
    await promotedRoot.query('SELECT pg_reload_conf()');
  }, 180_000);

  afterAll(async () => {
    for (const c of [...opened, fencedRoot, promotedRoot]) await c?.end().catch(() => undefined);
    stopPostgres(FENCED.name);
    stopPostgres(PROMOTED.name);
  });

  it('fences: client backends terminated (not a superuser one it may not end), writes refused, walsender spared', async () => {
    const walsender = await openPgClient(ep(FENCED.port, CAPTURE_USER), { replication: 'database' });
    opened.push(walsender);
    // A superuser's session: pg_signal_backend may not end it.
    const first = await fencePgServer(ep(FENCED.port, FAILOVER), { killSessions: true, timeoutMs: 10_000, log });
    console.log(`fence with a superuser session open: ${first.detail}`);
    expect(first.confirmed).toBe(false);
    expect(first.detail).toMatch(/client backends are left: pid \d+ \(postgres.*must be a superuser/);
    await fencedRoot.end();
    // The first fence left the default read-only: a client overriding it (the documented limit) still writes
    // until the fence ends its session; another one sits idle.
    const idle = await session(FENCED.port, APP);
    const open = await session(FENCED.port, APP);
    await open.query('BEGIN READ WRITE');
    await open.query('INSERT INTO public.t VALUES (1)');

    const t0 = performance.now();
    const r = await fencePgServer(ep(FENCED.port, FAILOVER), { killSessions: true, timeoutMs: 10_000, log });
    console.log(`fence: ${r.detail} in ${Math.round(performance.now() - t0)} ms`);
    expect(r).toMatchObject({
      confirmed: true,
      detail: expect.stringMatching(/2 client backend\(s\) terminated, none left/),
    });
    expect(await alive(idle)).toBe(false);
    expect(await alive(open)).toBe(false);
    expect((await walsender.query('IDENTIFY_SYSTEM')).rows).toHaveLength(1);

    const late = await session(FENCED.port, APP);
    await expect(late.query('INSERT INTO public.t VALUES (2)')).rejects.toMatchObject({ code: '25006' });
    fencedRoot = await pgAdmin(FENCED.port, 'appdb');
    fencedRoot.on('error', () => {});
    expect((await fencedRoot.query('SELECT count(*)::int AS n FROM public.t')).rows[0].n).toBe(0);

    // The monitor's heartbeat probe: a fenced primary counts as failed, a writable one as up (its row written).
    const probe = new PgHeartbeatProbe(ep(FENCED.port, FAILOVER), {
      table: 'tidemark.heartbeat',
      writer: 'dr1',
      timeoutMs: 5000,
    });
    expect(await probe.probe()).toMatchObject({ ok: false, error: expect.stringMatching(/read-only \(fenced\?\)/) });

    expect(await unfencePgServer(ep(FENCED.port, FAILOVER), { timeoutMs: 10_000, log })).toMatch(
      /off in a new session/,
    );
    const again = await session(FENCED.port, APP);
    await again.query('INSERT INTO public.t VALUES (3)');
    expect(await probe.probe()).toMatchObject({ ok: true });
    expect(await probe.probe()).toMatchObject({ ok: true });
    probe.close();
    expect(
      (await fencedRoot.query("SELECT seq::int AS n FROM tidemark.heartbeat WHERE writer = 'dr1'")).rows[0].n,
    ).toBe(2);
  }, 60_000);

  it('holds the applier (terminating a stuck apply session) and promotes with a slot at the promotion point', async () => {
    const stuck = await session(PROMOTED.port, APPLY_USER);
    await stuck.query('BEGIN READ WRITE');
    await stuck.query("UPDATE tidemark.applied SET phase = 'stream' WHERE source = 'pgsrc'");
    await holdPgPromoted(ep(PROMOTED.port, APPLY_USER), ep(PROMOTED.port, FAILOVER), 'pgsrc', 'promoted: dr1', log);
    expect(await alive(stuck)).toBe(false);
    expect((await promotedRoot.query(selectSql, ['pgsrc'])).rows[0].hold).toBe('promoted: dr1');

    const before = await session(PROMOTED.port, APP);
    await expect(before.query("INSERT INTO app.t VALUES (1, 'x')")).rejects.toMatchObject({ code: '25006' });
    const p = await promotePgServer(ep(PROMOTED.port, FAILOVER), {
      slot: 'tidemark',
      publication: 'tidemark',
      timeoutMs: 15_000,
      log,
    });
    console.log(`promote: ${p.detail}`);
    expect(p.detail).toMatch(/was on\), promotion position .*publication tidemark created for 1 table/);
    const slot = (
      await promotedRoot.query(
        "SELECT confirmed_flush_lsn::text AS c, plugin FROM pg_replication_slots WHERE slot_name = 'tidemark'",
      )
    ).rows[0];
    expect(slot.plugin).toBe('pgoutput');
    expect(parseLsn(slot.c)).toBe(p.position.lsn);

    const after = await session(PROMOTED.port, APP);
    const at = parseLsn((await after.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l as string);
    expect(at).toBeGreaterThanOrEqual(p.position.lsn);
    await after.query("INSERT INTO app.t VALUES (1, 'after promotion')");
    const changes = await promotedRoot.query(
      "SELECT count(*)::int AS n FROM pg_logical_slot_peek_binary_changes('tidemark', NULL, NULL, 'proto_version', '1', 'publication_names', 'tidemark')",
    );
    expect(changes.rows[0].n).toBeGreaterThanOrEqual(3); // begin, relation, insert, commit
  }, 60_000);
});
