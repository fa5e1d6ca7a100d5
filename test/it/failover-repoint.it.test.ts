/**
 * Takeover with two standbys (issue #5, "repoint the remaining standbys … no gap"), on real MariaDB servers over
 * loopback: a primary (rp) ships over TLS to dr1 and dr2, each applying to its own server. The primary dies (its
 * tidemark and its mariadbd); `tidemark failover --to dr1` promotes dr1 (fenced by the fence hook). dr1's running
 * `tidemark run --site dr1` then turns its mirror into the primary journal, captures from its server from the
 * promotion position and ships to dr2, whose receiver adopts the new journal (it branched from the one dr2
 * mirrors, at or after dr2's position). The application writes on at dr1: dr2 follows without a baseline, and
 * `tidemark verify` (with the config of the new topology) says dr2's server equals dr1's. tidemark's configs use
 * only the least-privilege accounts of README.md with exactly their documented grants (no root).
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SHOP_SCHEMA } from '../../bench/workload.ts';
import { admin, stopInstance } from '../fixtures/mariadb.ts';
import { ACCOUNTS, documentedAccountsSql } from '../fixtures/takeover-lab-files.ts';
import {
  lineText,
  makeSiteCerts,
  SiteRun,
  SteadyLoad,
  seedCounter,
  startFreshInstances,
  testSeed,
  verify,
  waitCaughtUp,
  waitForLog,
  workDir,
  writeSitesConfig,
} from '../fixtures/sites.ts';
import { runCli } from '../fixtures/topology.ts';

const NAME = 'repoint';
const DB = 'shop_rp';
const PRIMARY = { name: 'rp_primary', port: 3645 };
const DR1 = { name: 'rp_dr1', port: 3646 };
const DR2 = { name: 'rp_dr2', port: 3647 };
const SHIP = { dr1: 7671, dr2: 7672 };

const dir = workDir(NAME);
const seed = testSeed();
const nextSeed = seedCounter(seed * 7);
const runs: SiteRun[] = [];

function failoverYaml(): string {
  return `failover:
  mode: manual
  account: { user: ${ACCOUNTS.failover.user}, password: ${ACCOUNTS.failover.password} }
  fence: { command: ["true"], timeout_ms: 5000 }
  # No witness here: a long fail_after_ms keeps the primary's guard from self-fencing while the sites start.
  monitor: { fail_after_ms: 15000, suspect_interval_ms: 200, probe_timeout_ms: 500, heartbeat: { table: rp_ha.heartbeat } }
`;
}

beforeAll(async () => {
  console.log(`failover-repoint: seed ${seed}`);
  await startFreshInstances([PRIMARY, DR1, DR2]);
  // tidemark's accounts with exactly their documented grants (README.md, failover/README.md), on every server:
  // the failover account, the apply account (the standbys' servers are writable here: no READ_ONLY ADMIN) and
  // the local scripts' tidemark_cap (capture, also on dr1 once promoted). No root in tidemark's configs.
  const accounts = documentedAccountsSql({
    replicated: [DB, 'rp_ha'],
    heartbeatSchema: 'rp_ha',
    readOnlyStandbys: false,
  });
  for (const s of [PRIMARY, DR1, DR2]) {
    const a = await admin(s.port);
    for (const sql of ['SET sql_log_bin = 0', ...accounts]) await a.query(sql);
    await a.end();
  }
  const c = await admin(PRIMARY.port);
  for (const sql of SHOP_SCHEMA(DB)) await c.query(sql);
  // The monitors' heartbeat table is captured (like the switchover's): every write on the primary reaches the
  // standbys, so "caught up" can compare GTIDs exactly. Created before capture starts: the baseline carries it.
  await c.query('CREATE DATABASE rp_ha');
  await c.query(
    'CREATE TABLE rp_ha.heartbeat (writer VARCHAR(64) PRIMARY KEY, ts DATETIME(6) NOT NULL, seq BIGINT UNSIGNED NOT NULL)',
  );
  await c.end();
  await makeSiteCerts(join(dir, 'certs'), 'rp', ['primary', 'dr1', 'dr2']);
});

afterAll(async () => {
  await SteadyLoad.stopAll();
  await Promise.allSettled(runs.map((r) => r.stop(5000)));
});

it('the other standby follows the promoted one from its position, without a baseline, and verifies equal', async () => {
  const t0 = Date.now();
  const cfg = writeSitesConfig({
    file: join(dir, 'tidemark.yaml'),
    source: { name: 'rp', port: PRIMARY.port, include: [`${DB}.*`, 'rp_ha.*'] },
    ship: { certsDir: './certs' },
    standbys: [
      { name: 'dr1', address: `127.0.0.1:${SHIP.dr1}`, listen: `127.0.0.1:${SHIP.dr1}`, journalDir: './dr1' },
      { name: 'dr2', address: `127.0.0.1:${SHIP.dr2}`, listen: `127.0.0.1:${SHIP.dr2}`, journalDir: './dr2' },
    ],
    targets: [
      { name: 'r1', port: DR1.port, site: 'dr1' },
      { name: 'r2', port: DR2.port, site: 'dr2' },
    ],
    applyAccount: ACCOUNTS.apply,
  });
  appendFileSync(cfg, failoverYaml());
  // The new topology, for verify afterwards: dr1 the primary (its former mirror the journal), dr2 its standby.
  const after = writeSitesConfig({
    file: join(dir, 'tidemark.dr1.yaml'),
    source: { name: 'rp', port: DR1.port, include: [`${DB}.*`] },
    journalDir: './dr1/rp',
    site: 'dr1',
    ship: { certsDir: './certs' },
    standbys: [{ name: 'dr2', address: `127.0.0.1:${SHIP.dr2}`, listen: `127.0.0.1:${SHIP.dr2}`, journalDir: './dr2' }],
    targets: [{ name: 'r2', port: DR2.port, site: 'dr2' }],
    applyAccount: ACCOUNTS.apply,
  });
  const log = (s: string) => join(dir, 'logs', `${s}.log`);
  const primary = new SiteRun(cfg, 'primary', log('primary')).start();
  const dr1 = new SiteRun(cfg, 'dr1', log('dr1')).start();
  const dr2 = new SiteRun(cfg, 'dr2', log('dr2')).start();
  runs.push(primary, dr1, dr2);

  const load = new SteadyLoad(PRIMARY.port, DB, nextSeed, { txPerSecond: 100 });
  await new Promise((r) => setTimeout(r, 5000));
  await load.stop();
  const legs = (port: number) => [
    { name: 'dr1', sourcePort: port, sourceName: 'rp', replicaPort: DR1.port },
    { name: 'dr2', sourcePort: port, sourceName: 'rp', replicaPort: DR2.port },
  ];
  await waitCaughtUp(legs(PRIMARY.port), runs, 90_000);
  console.log(`repoint: both standbys caught up at ${Date.now() - t0} ms`);
  // dr2 a little behind dr1 at the takeover: its receiver is down while the primary commits more.
  await dr2.stop();
  const more = new SteadyLoad(PRIMARY.port, DB, nextSeed, { txPerSecond: 100 });
  await new Promise((r) => setTimeout(r, 2000));
  await more.stop();
  await waitCaughtUp(legs(PRIMARY.port).slice(0, 1), [primary, dr1], 60_000);

  // The primary site dies.
  await primary.kill();
  stopInstance(PRIMARY.name);
  console.log(`repoint: primary killed at ${Date.now() - t0} ms`);
  const f = await runCli(['failover', '-c', cfg, '--to', 'dr1'], { timeoutMs: 120_000 });
  console.log(`failover: exit ${f.code}\n${f.stdout}\n${f.stderr.slice(-1500)}`);
  expect(f.code).toBe(0);
  expect(f.stdout).toMatch(/repoint +ok/);
  await waitForLog(dr1, (l) => /runs as the primary/.test(String(l.msg)), 30_000, 'dr1 runs as the primary');
  dr2.start();

  // The application writes on at dr1; dr2 follows.
  const onNew = new SteadyLoad(DR1.port, DB, nextSeed, { txPerSecond: 100 });
  await new Promise((r) => setTimeout(r, 5000));
  await onNew.stop();
  await waitCaughtUp(legs(DR1.port).slice(1), [dr1, dr2], 90_000);
  console.log(`repoint: dr2 caught up with dr1 at ${Date.now() - t0} ms`);
  const v = await verify(after, ['r2']);
  console.log(`repoint: verified at ${Date.now() - t0} ms`);
  expect(v.doc?.equal, v.out).toBe(true);
  // No baseline at dr2 after the takeover: its receiver adopted the branched journal and went on.
  const dr2Lines = dr2.lines().map(lineText).join('\n');
  expect(dr2Lines).toMatch(
    /continues journal [0-9a-f-]+ after LSN \d+ \(a promoted standby\); this mirror \(head LSN \d+\) now follows it/,
  );
  expect(dr2Lines).not.toMatch(/baseline starts|rebaseline/i);
  const promotion = JSON.parse(readFileSync(join(dir, 'dr1', 'failover', 'promotion.json'), 'utf8'));
  expect(promotion.journal.branchLsn).toMatch(/^\d+$/);
  const c = await admin(DR1.port);
  try {
    const [rows] = await c.query(
      'SELECT site, CAST(branch_lsn AS CHAR) AS lsn FROM tidemark.failover_lineage WHERE source = ?',
      ['rp'],
    );
    expect(rows).toEqual([{ site: 'dr1', lsn: promotion.journal.branchLsn }]);
  } finally {
    await c.end();
  }
  console.log(`repoint test: ${Date.now() - t0} ms`);
});
