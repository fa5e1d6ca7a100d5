/**
 * Manual takeover of a PostgreSQL pair (issue #14, scope 7), the processes as users run them: `tidemark run
 * --site primary` captures PostgreSQL 15 on port 5495 and ships over plaintext TCP (port 5497) to `tidemark run
 * --site dr1`, which applies to PostgreSQL on port 5496. The primary's postgres is killed (and its site's run
 * stopped); `tidemark failover --to dr1` fences (the fence hook checks that the port is closed), drains, holds
 * the applier, promotes (publication + slot at the promotion point, default_transaction_read_only reset) and
 * records promotion.json; dr1's run then captures the new primary from the slot: a client write there becomes
 * durable in dr1's journal. The old primary's postgres, restarted, comes back writable and dr1's guard fences it.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { lastCommit } from '../../journal/index.ts';
import { parseLsn } from '../../postgres/lsn.ts';
import { APPLY_USER, CAPTURE_USER, killPostgres, pgAdmin, startPostgres, stopPostgres } from '../fixtures/postgres.ts';
import { appdbEndpoint, FAILOVER_ROLE, pgReadOnly, startPgFailoverPair, tcpStandby } from '../fixtures/pg-failover.ts';
import { sleep } from '../fixtures/sites.ts';
import { runCli, startRun, stopRun } from '../fixtures/topology.ts';

const SRC = { name: 'pgto-src', port: 5495 };
const DST = { name: 'pgto-dst', port: 5496 };
const SHIP_PORT = 5497;
const FAILOVER = FAILOVER_ROLE;
const ROWS = 30;

let dir = '';
let primaryRun: ChildProcess | null = null;
let drRun: ChildProcess | null = null;
const clients: pg.Client[] = [];

async function admin(port: number, db = 'appdb'): Promise<pg.Client> {
  const c = await pgAdmin(port, db);
  c.on('error', () => {});
  clients.push(c);
  return c;
}

function writeConfig(): string {
  const pg = appdbEndpoint;
  const portClosed = `! (exec 3<>/dev/tcp/127.0.0.1/${SRC.port}) 2>/dev/null && echo "old primary: port ${SRC.port} closed"`;
  const doc = {
    source: {
      kind: 'postgres',
      name: 'pg-main',
      ...pg(SRC.port, CAPTURE_USER),
      publication: 'tidemark',
      slot: 'tidemark',
    },
    journal: { dir: join(dir, 'journal') },
    site: 'primary',
    ship: { plaintext: true, heartbeat_ms: 100 },
    standbys: [tcpStandby('dr1', SHIP_PORT, join(dir, 'dr1'))],
    targets: [{ name: 'dr1db', kind: 'postgres', site: 'dr1', ...pg(DST.port, APPLY_USER) }],
    rollback: { index: false },
    failover: {
      mode: 'manual',
      account: FAILOVER,
      fence: { command: ['bash', '-c', portClosed], timeout_ms: 10_000 },
    },
    log: { level: 'info', file: join(dir, 'run.log') },
  };
  const file = join(dir, 'tidemark.yaml');
  writeFileSync(file, stringify(doc));
  return file;
}

/** The warnings and errors of the runs' log (printed when a wait fails). */
function problems(): string {
  const err = [primaryRun, drRun].map(
    (r) => `exit ${r?.exitCode}: ${(r as { lastStderr?: () => string } | null)?.lastStderr?.() ?? ''}`,
  );
  const lines = [
    ...err,
    ...(existsSync(join(dir, 'run.log')) ? readFileSync(join(dir, 'run.log'), 'utf8').split('\n') : []),
  ];
  return lines
    .filter((l) => /"level":(40|50|60)|^exit/.test(l))
    .slice(-15)
    .join('\n');
}

async function count(c: pg.Client): Promise<number> {
  return Number((await c.query('SELECT count(*) AS n FROM app.t')).rows[0].n);
}

describe('manual takeover of a PostgreSQL pair', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pgto-'));
    await startPgFailoverPair(SRC, DST);
  }, 180_000);

  afterAll(async () => {
    await stopRun(primaryRun);
    await stopRun(drRun);
    for (const c of clients) await c.end().catch(() => undefined);
    stopPostgres(SRC.name);
    stopPostgres(DST.name);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fences the dead primary, promotes dr1, and captures the writes made on it', async () => {
    const config = writeConfig();
    const src = await admin(SRC.port);
    const dst = await admin(DST.port);
    for (let i = 1; i <= ROWS / 2; i++) await src.query('INSERT INTO app.t VALUES ($1, $2)', [i, `before ${i}`]);
    primaryRun = startRun(config, ['--site', 'primary']);
    drRun = startRun(config, ['--site', 'dr1']);
    for (let i = ROWS / 2 + 1; i <= ROWS; i++) await src.query('INSERT INTO app.t VALUES ($1, $2)', [i, `during ${i}`]);
    const t0 = Date.now();
    while ((await count(dst).catch(() => 0)) < ROWS && Date.now() - t0 < 60_000 && drRun?.exitCode === null)
      await sleep(250);
    if ((await count(dst)) < ROWS) console.log(problems());
    expect(await count(dst)).toBe(ROWS);

    // The primary's site is lost: its postgres killed, its tidemark stopped.
    killPostgres(SRC.name);
    await stopRun(primaryRun);
    primaryRun = null;

    const r = await runCli(['failover', '-c', config, '--to', 'dr1'], { timeoutMs: 120_000 });
    console.log(r.stdout);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stdout).toMatch(/fence-hook +ok.*port 5495 closed/);
    expect(r.stdout).toMatch(/promote +ok.*default_transaction_read_only was on\), promotion position/);
    expect(r.stdout).toMatch(/dr1 is the primary now, at [0-9A-F]+\/[0-9A-F]+ \(slot tidemark\)/);
    const promotion = JSON.parse(readFileSync(join(dir, 'dr1', 'failover', 'promotion.json'), 'utf8'));
    expect(promotion).toMatchObject({
      standby: 'dr1',
      mode: 'manual',
      position: { engine: 'postgres', slot: 'tidemark' },
    });
    expect(Number(promotion.appliedLsn)).toBeGreaterThan(0);
    const held = await dst.query("SELECT hold FROM tidemark.applied WHERE source = 'pg-main'");
    expect(held.rows[0].hold).toMatch(/^promoted/);

    // Writes on the new primary succeed, as the application's role.
    const app = await pgAdmin(DST.port, 'appdb'); // superuser only to read the LSN afterwards
    clients.push(app);
    app.on('error', () => {});
    await app.query('SET ROLE tm_app');
    const lsnNow = async () => parseLsn((await dst.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l);
    expect(BigInt(promotion.position.lsn)).toBeLessThanOrEqual(await lsnNow());
    let before = 0n;
    for (let i = ROWS + 1; i <= ROWS + 5; i++) {
      before = await lsnNow();
      await app.query('INSERT INTO app.t VALUES ($1, $2)', [i, `on dr1 ${i}`]);
    }

    // dr1's run picked up the promotion: it captures the new primary from the slot into its (promoted) journal;
    // the last insert's commit ends after \`before\`, and nothing else is published.
    const journal = join(dir, 'dr1', 'pg-main');
    const t1 = Date.now();
    let head = await lastCommit(journal);
    const at = () => (head?.position?.kind === 'sequence' ? head.position.value : 0n);
    while (at() <= before && Date.now() - t1 < 60_000) {
      await sleep(250);
      head = await lastCommit(journal);
    }
    console.log(
      `dr1's journal: last commit ${head?.txId} at ${at()} (> ${before}) ${Date.now() - t1} ms after the writes`,
    );
    expect(at()).toBeGreaterThan(before);
    expect(head?.rowCount).toBe(1n);

    // The old primary's postgres restarted comes back writable: the promoted site's guard fences it
    // (default_transaction_read_only through the failover account, its client backends terminated).
    startPostgres(SRC.name, SRC.port);
    const readOnly = () => pgReadOnly(SRC.port);
    const t2 = Date.now();
    while (!(await readOnly()) && Date.now() - t2 < 30_000) await sleep(250);
    console.log(`the old primary restarted: read-only again ${Date.now() - t2} ms later`);
    expect(await readOnly()).toBe(true);
    // The guard logs once its fence is confirmed (after the setting took effect): waited for.
    const fencedLine = () =>
      readFileSync(join(dir, 'run.log'), 'utf8')
        .split('\n')
        .findLast((l) => l.includes('old primary fenced'));
    const t3 = Date.now();
    while (!fencedLine() && Date.now() - t3 < 20_000) await sleep(250);
    expect(fencedLine()).toMatch(/127\.0\.0\.1:5495: default_transaction_read_only = on, \d+ client backend/);
  }, 300_000);
});
