/**
 * The takeover probes and the witness against a real MariaDB (issue #5): the heartbeat write, a fenced
 * (read-only) primary seen as a failure, a blocked write bounded by the probe timeout, and the witness following
 * a primary that is killed (healthy → suspect → failed within the thresholds) and restarted (healthy again),
 * served to a standby over mutual TLS. The probes and the witness use failover/README.md's failover account with
 * exactly its documented grants (on `tidemark` and the heartbeat table's schema; no root); root only sets up,
 * inspects and holds the lock.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MysqlEndpoint } from '../../mysql/session.ts';
import { HeartbeatProbe, heartbeatProbe, READ_ONLY_MESSAGE } from '../../failover/probes.ts';
import { startWitness } from '../../failover/witness.ts';
import { fetchWitnessView } from '../../failover/witness-client.ts';
import { loadSiteTls, makeCerts } from '../../ship/tcp/certs.ts';
import { admin, killInstance, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { captureLog } from '../fixtures/ship-link.ts';
import { ACCOUNTS, failoverAccountSql } from '../fixtures/takeover-lab-files.ts';

const PRIMARY = { name: 'fw_primary', port: 3621 };

function endpoint(user: string, password: string): MysqlEndpoint {
  const ep = { host: '127.0.0.1', port: PRIMARY.port, user };
  Object.defineProperty(ep, 'password', { value: password, enumerable: false });
  return ep;
}
/** failover.account: the heartbeat tables' schemas hb_it and hb_ro are its heartbeat schemas. */
const failover = endpoint(ACCOUNTS.failover.user, ACCOUNTS.failover.password);

let conn: mysql.Connection;

beforeAll(async () => {
  startInstance(PRIMARY.name, PRIMARY.port, { fresh: true });
  conn = await admin(PRIMARY.port);
  await conn.query(failoverAccountSql(['hb_it', 'hb_ro']).join(';\n'));
});

afterAll(async () => {
  await conn?.end().catch(() => {});
  stopInstance(PRIMARY.name);
});

async function row(table: string, writer: string): Promise<{ seq: string; us: string } | undefined> {
  await conn.query("SET time_zone = '+00:00'"); // ts holds UTC
  const [rows] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT seq, CAST(UNIX_TIMESTAMP(ts) * 1000000 AS UNSIGNED) AS us FROM ${table} WHERE writer = ?`,
    [writer],
  );
  const r = rows[0];
  return r ? { seq: String(r['seq']), us: String(r['us']) } : undefined;
}

describe('heartbeat probe on MariaDB', () => {
  it('creates the table once and writes its row: seq counts, ts is the primary time it reports', async () => {
    await conn.query('DROP DATABASE IF EXISTS hb_it');
    const a = await heartbeatProbe(failover, { table: 'hb_it.heartbeat', writer: 'it-fo', timeoutMs: 5000 });
    if (!a.ok) throw new Error(a.error);
    expect(Math.abs((a.primaryTimeUs ?? 0) / 1000 - Date.now())).toBeLessThan(5000);
    expect(await row('hb_it.heartbeat', 'it-fo')).toEqual({ seq: '1', us: String(a.primaryTimeUs) });

    const b = await heartbeatProbe(failover, { table: 'hb_it.heartbeat', writer: 'it-fo', timeoutMs: 5000 });
    if (!b.ok) throw new Error(b.error);
    expect(b.primaryTimeUs).toBeGreaterThan(a.primaryTimeUs ?? 0);
    expect(await row('hb_it.heartbeat', 'it-fo')).toEqual({ seq: '2', us: String(b.primaryTimeUs) });
    const [cols] = await conn.query<mysql.RowDataPacket[]>(
      "SELECT column_name AS c, column_type AS t FROM information_schema.columns WHERE table_schema = 'hb_it' ORDER BY ordinal_position",
    );
    expect(cols.map((c) => `${c['c']} ${c['t']}`)).toEqual([
      'writer varchar(64)',
      'ts datetime(6)',
      'seq bigint(20) unsigned',
    ]);
  });

  it('a fenced (read_only) primary is a failure, for a plain account and for one that could write through', async () => {
    await conn.query('DROP DATABASE IF EXISTS hb_ro');
    await conn.query("DROP USER IF EXISTS 'hb'@'127.0.0.1'");
    await conn.query("CREATE USER 'hb'@'127.0.0.1' IDENTIFIED BY 'hb-pw'");
    // SELECT: ON DUPLICATE KEY UPDATE reads the row (seq = seq + 1); no READ_ONLY ADMIN, no SUPER.
    await conn.query("GRANT SELECT, INSERT, UPDATE, CREATE ON `hb_ro`.* TO 'hb'@'127.0.0.1'");
    const hb = endpoint('hb', 'hb-pw');
    const opts = { table: 'hb_ro.heartbeat', writer: 'it-hb', timeoutMs: 5000 };
    const first = await heartbeatProbe(hb, opts);
    expect(first).toMatchObject({ ok: true });
    try {
      await conn.query('SET GLOBAL read_only = ON');
      const fenced = await heartbeatProbe(hb, opts);
      expect(fenced).toEqual({ ok: false, error: `127.0.0.1:${PRIMARY.port}: ${READ_ONLY_MESSAGE}` });
      // The failover account holds READ_ONLY ADMIN: MariaDB would let it write, the probe must still see the
      // fence (and not write).
      const asFailover = await heartbeatProbe(failover, { ...opts, writer: 'it-fo' });
      expect(asFailover).toEqual({ ok: false, error: `127.0.0.1:${PRIMARY.port}: ${READ_ONLY_MESSAGE}` });
      expect(await row('hb_ro.heartbeat', 'it-fo')).toBeUndefined();
      expect((await row('hb_ro.heartbeat', 'it-hb'))?.seq).toBe('1');
    } finally {
      await conn.query('SET GLOBAL read_only = OFF');
    }
    expect(await heartbeatProbe(hb, opts)).toMatchObject({ ok: true });
    expect((await row('hb_ro.heartbeat', 'it-hb'))?.seq).toBe('2');
  });

  it('a write blocked on the server is bounded by the timeout; the next probe reconnects', async () => {
    const p = new HeartbeatProbe(failover, { table: 'hb_it.heartbeat', writer: 'it-block', timeoutMs: 600 });
    const lock = await admin(PRIMARY.port);
    try {
      expect(await p.probe()).toMatchObject({ ok: true });
      await lock.query('FLUSH TABLES WITH READ LOCK');
      const t0 = Date.now();
      const blocked = await p.probe();
      expect(blocked).toEqual({ ok: false, error: `127.0.0.1:${PRIMARY.port}: no answer within 600 ms` });
      expect(Date.now() - t0).toBeLessThan(2000);
      await lock.query('UNLOCK TABLES');
      expect(await p.probe()).toMatchObject({ ok: true });
    } finally {
      p.close();
      await lock.end();
    }
  });
});

describe('witness on MariaDB', () => {
  it('healthy → suspect → failed within the thresholds after a kill, healthy after the restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tidemark-fw-'));
    const ac = new AbortController();
    const log = captureLog();
    let finished: Promise<void> | undefined;
    try {
      await makeCerts({ dir, ca: 'ca-fw', sites: ['witness', 'dr1'] });
      const monitor = {
        suspect_after: 1,
        fail_after_count: 3,
        fail_after_ms: 1500,
        recover_after: 2,
        suspect_interval_ms: 200,
        probe_timeout_ms: 1000,
        overall: 'all' as const,
        heartbeat: { table: 'hb_it.heartbeat', critical: true },
        tcp: [{ name: 'mariadb', address: `127.0.0.1:${PRIMARY.port}`, critical: true }],
      };
      const w = await startWitness({
        primary: failover,
        monitor,
        calendar: { time_zone: 'UTC', default_interval_ms: 300, windows: [] },
        listen: '127.0.0.1:0',
        tls: await loadSiteTls(dir, 'witness'),
        log: log.log,
        signal: ac.signal,
      });
      finished = w.finished;
      const dr1 = await loadSiteTls(dir, 'dr1');
      const view = () => fetchWitnessView(`127.0.0.1:${w.address().port}`, { tls: dr1, timeoutMs: 2000 });
      // `successes`: at least this many successes in a row per probe (a monitor starts healthy before its first
      // probe answers: waiting for "healthy" alone could return before any probe ran).
      const waitFor = async (state: string, ms: number, successes = 0): Promise<number> => {
        const t0 = Date.now();
        for (;;) {
          const v = await view();
          if (v.state === state && v.report.probes.every((p) => p.state === state && p.successes >= successes))
            return Date.now();
          if (Date.now() - t0 > ms)
            throw new Error(`witness not ${state} within ${ms} ms: ${JSON.stringify(v.report)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      await waitFor('healthy', 5000, 1);
      expect((await view()).report.probes[0]?.successes).toBeGreaterThan(0);

      const killedAt = Date.now();
      killInstance(PRIMARY.name);
      const failedAt = await waitFor('failed', 8000);
      // Not before fail_after_ms of failures, and soon after: one healthy interval, the run, a suspect interval,
      // a probe timeout, and slack for this 2-core machine.
      expect(failedAt - killedAt).toBeGreaterThanOrEqual(monitor.fail_after_ms);
      expect(failedAt - killedAt).toBeLessThan(300 + 1500 + 200 + 1000 + 1500);
      const failed = await view();
      expect(failed.report.probes.find((p) => p.name === 'heartbeat')?.lastError).toMatch(/127\.0\.0\.1:3621/);
      expect(JSON.stringify(failed.report)).not.toContain(ACCOUNTS.failover.password);

      startInstance(PRIMARY.name, PRIMARY.port);
      const restartedAt = Date.now();
      const healthyAt = await waitFor('healthy', 10_000);
      expect(healthyAt - restartedAt).toBeLessThan(5000);

      const overall = log.lines
        .map((l) => String(l['msg']))
        .filter((m) => / overall \w+ → /.test(m))
        .map((m) => /overall (\w+ → \w+)/.exec(m)?.[1]);
      console.log(
        log.lines
          .map((l) => String(l['msg']))
          .filter((m) => m.includes(' → '))
          .join('\n'),
      );
      expect(overall).toEqual(['healthy → suspect', 'suspect → failed', 'failed → healthy']);
      // The connection the kill broke while idle was replaced, not reused: the errors are the server's absence.
      expect(log.text()).not.toMatch(/closed state/);
      await conn.end().catch(() => {});
      conn = await admin(PRIMARY.port);
      expect(await row('hb_it.heartbeat', 'witness')).toBeDefined();
    } finally {
      ac.abort();
      await finished;
      startInstance(PRIMARY.name, PRIMARY.port);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
