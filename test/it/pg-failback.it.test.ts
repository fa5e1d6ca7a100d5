/**
 * Failback of a PostgreSQL old primary (issue #14, scope 7), on 127.0.0.1 with two PostgreSQL 15 servers and the
 * processes as users run them:
 *
 *   1. `tidemark run --site primary` captures port 5520 and ships over TCP to `tidemark run --site dr1`, which
 *      applies to port 5521. dr1's run is stopped (the link is down): errant transactions committed on the primary
 *      are captured into its journal and never shipped; its run is stopped too and one more is committed (only in
 *      its capture slot). Its postgres is killed; `tidemark failover --to dr1`; dr1 writes the lineage row on its
 *      server; the application writes there.
 *   2. The old primary's postgres restarts (dr1's guard fences it). `tidemark failback` without --yes: the three
 *      errant transactions listed and written to a psql quarantine file, nothing changed; with --yes: rewound,
 *      the journal demoted to a mirror of dr1's, the branch point in tidemark.applied, the old slot dropped.
 *   3. The reversed topology (dr1 the primary, the old primary a standby) from a second config: the old primary
 *      receives dr1's changes from the branch point, and `tidemark verify` says it equals dr1.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

const SRC = { name: 'pgfb-src', port: 5520 };
const DST = { name: 'pgfb-dst', port: 5521 };
const SHIP_PORT = 7865;
const REVERSED_SHIP_PORT = 7866;
const FAILOVER = FAILOVER_ROLE;

let dir = '';
const runs: ChildProcess[] = [];
const clients: pg.Client[] = [];

async function admin(port: number): Promise<pg.Client> {
  const c = await pgAdmin(port, 'appdb');
  c.on('error', () => {});
  clients.push(c);
  return c;
}

const endpoint = appdbEndpoint;

function writeConfigs(): { config: string; reversed: string } {
  const portClosed = `! (exec 3<>/dev/tcp/127.0.0.1/${SRC.port}) 2>/dev/null && echo "old primary: port ${SRC.port} closed"`;
  const common = { ship: { plaintext: true, heartbeat_ms: 100 }, rollback: { index: false } };
  const capture = { kind: 'postgres', name: 'pg-main', publication: 'tidemark', slot: 'tidemark' };
  const config = {
    source: { ...capture, ...endpoint(SRC.port, CAPTURE_USER), admin: APPLY_USER },
    journal: { dir: join(dir, 'journal') },
    site: 'primary',
    ...common,
    standbys: [tcpStandby('dr1', SHIP_PORT, join(dir, 'dr1'))],
    targets: [{ name: 'dr1db', kind: 'postgres', site: 'dr1', ...endpoint(DST.port, APPLY_USER) }],
    failover: {
      mode: 'manual',
      account: FAILOVER,
      fence: { command: ['bash', '-c', portClosed], timeout_ms: 10_000 },
    },
    log: { level: 'info', file: join(dir, 'run.log') },
  };
  // dr1 the primary (its promoted journal, its server), the old primary's site a standby applying to its server.
  const reversed = {
    source: { ...capture, ...endpoint(DST.port, CAPTURE_USER) },
    journal: { dir: join(dir, 'dr1', 'pg-main') },
    site: 'dr1',
    ...common,
    standbys: [tcpStandby('primary', REVERSED_SHIP_PORT, join(dir, 'primary-standby'))],
    targets: [{ name: 'olddb', kind: 'postgres', site: 'primary', ...endpoint(SRC.port, APPLY_USER) }],
    log: { level: 'info', file: join(dir, 'reversed.log') },
  };
  writeFileSync(join(dir, 'tidemark.yaml'), stringify(config));
  writeFileSync(join(dir, 'reversed.yaml'), stringify(reversed));
  return { config: join(dir, 'tidemark.yaml'), reversed: join(dir, 'reversed.yaml') };
}

/** The warnings and errors of a log file (printed when a wait fails). */
function problems(file: string): string {
  if (!existsSync(file)) return `${file}: none`;
  const lines = readFileSync(file, 'utf8').split('\n');
  return lines
    .filter((l) => /"level":(40|50|60)/.test(l))
    .slice(-12)
    .join('\n');
}

async function rows(c: pg.Client): Promise<string[]> {
  return (await c.query('SELECT id, v FROM app.t ORDER BY id')).rows.map((r) => `${r.id}=${r.v}`);
}

async function until(what: string, ok: () => Promise<boolean>, ms: number, log: string): Promise<void> {
  const t0 = Date.now();
  while (!(await ok().catch(() => false))) {
    if (Date.now() - t0 > ms) {
      console.log(problems(log));
      throw new Error(`${what}: not within ${ms} ms`);
    }
    await sleep(200);
  }
}

const start = (config: string, site: string): ChildProcess => {
  const r = startRun(config, ['--site', site]);
  runs.push(r);
  return r;
};

describe('failback of a PostgreSQL old primary', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pgfb-'));
    await startPgFailoverPair(SRC, DST);
  }, 180_000);

  afterAll(async () => {
    for (const r of runs) await stopRun(r);
    for (const c of clients) await c.end().catch(() => undefined);
    stopPostgres(SRC.name);
    stopPostgres(DST.name);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('quarantines and rewinds the errant transactions; the old primary rejoins and verifies equal', async () => {
    const t0 = Date.now();
    const { config, reversed } = writeConfigs();
    const log = join(dir, 'run.log');
    let src = await admin(SRC.port);
    const dst = await admin(DST.port);
    for (let i = 1; i <= 10; i++) await src.query('INSERT INTO app.t VALUES ($1, $2)', [i, `v${i}`]);
    const primaryRun = start(config, 'primary');
    let drRun = start(config, 'dr1');
    await until('dr1 applied the first rows', async () => (await rows(dst)).length === 10, 60_000, log);
    const branch = await rows(dst);

    // Errant, captured into the primary's journal but never shipped: dr1's run is stopped.
    await stopRun(drRun);
    const lsn = async () => parseLsn((await src.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l);
    await src.query("INSERT INTO app.t VALUES (101, 'errant a'), (102, 'errant b')");
    const before = await lsn();
    await src.query("UPDATE app.t SET v = 'errant' WHERE id = 1; DELETE FROM app.t WHERE id = 2");
    const journal = join(dir, 'journal');
    const headLsn = async () => {
      const p = (await lastCommit(journal))?.position;
      return p?.kind === 'sequence' ? p.value : 0n;
    };
    await until('the errant transactions in the primary journal', async () => (await headLsn()) > before, 30_000, log);
    // Errant after its tidemark stopped: only in the capture slot.
    await stopRun(primaryRun);
    await src.query("INSERT INTO app.t VALUES (103, 'after the stop')");
    killPostgres(SRC.name);

    // Takeover by dr1; its run takes the primary role and writes the lineage row on its server.
    drRun = start(config, 'dr1');
    const f = await runCli(['failover', '-c', config, '--to', 'dr1'], { timeoutMs: 120_000 });
    expect(f.code, `${f.stdout}\n${f.stderr.slice(-2000)}`).toBe(0);
    const lineage = async () =>
      (await dst.query("SELECT site, branch_seq::text AS s FROM tidemark.failover_lineage WHERE source = 'pg-main'"))
        .rows[0];
    await until('the lineage row on the new primary', async () => (await lineage())?.site === 'dr1', 60_000, log);
    const app = await admin(DST.port);
    await app.query('SET ROLE tm_app');
    await app.query(
      "INSERT INTO app.t VALUES (201, 'on dr1'), (202, 'on dr1'); UPDATE app.t SET v = 'dr1' WHERE id = 3",
    );

    // The old primary's postgres is back: dr1's guard fences it.
    // No session of ours stays open meanwhile: the failover account cannot end a superuser's (fence not confirmed).
    startPostgres(SRC.name, SRC.port);
    const readOnly = () => pgReadOnly(SRC.port);
    await until('the old primary fenced by the guard', readOnly, 30_000, log);
    const fenced = async () => readFileSync(log, 'utf8').includes('old primary fenced');
    await until('the guard reported it', fenced, 20_000, log);
    src = await admin(SRC.port);

    // Failback, first without --yes: listed and quarantined, nothing changed.
    const quarantine = join(dir, 'quarantine.sql');
    const look = await runCli(['failback', '-c', config, '--quarantine', quarantine], { timeoutMs: 120_000 });
    console.log(`failback (look): ${look.stdout}`);
    expect(look.code, look.stderr.slice(-2000)).toBe(0);
    expect(look.stdout).toMatch(/3 errant transactions after LSN \d+: 3 insert, 1 update, 1 delete, 0 DDL/);
    expect(look.stdout).toMatch(/nothing changed/);
    expect(statSync(quarantine).mode & 0o777).toBe(0o600);
    const q = readFileSync(quarantine, 'utf8');
    expect(q).toContain('\\set ON_ERROR_STOP on');
    expect(q).toMatch(/INSERT INTO "app"\."t" \("id", "v"\) VALUES \('101'::integer, 'errant a'::text\)/);
    expect(q).toMatch(/INSERT INTO "app"\."t" \("id", "v"\) VALUES \('103'::integer, 'after the stop'::text\)/);
    expect(q).toMatch(/UPDATE "app"\."t" SET .*'errant'::text WHERE "id" = '1'::integer/);
    expect(q).toMatch(/DELETE FROM "app"\."t" WHERE "id" = '2'::integer/);
    expect((await rows(src)).filter((r) => Number(r.split('=')[0]) > 100)).toHaveLength(3);

    // With --yes: rewound, demoted, moved to where the reversed config expects this site's mirror.
    const mirror = join(dir, 'primary-standby', 'pg-main');
    const yes = ['failback', '-c', config, '--quarantine', `${quarantine}.2`, '--yes', '--mirror-dir', mirror];
    const done = await runCli(yes, { timeoutMs: 120_000 });
    console.log(`failback: ${done.stdout}`);
    expect(done.code, done.stderr.slice(-2000)).toBe(0);
    expect(await rows(src)).toEqual(branch);
    expect(await readOnly()).toBe(true);
    const applied = (await src.query("SELECT seq::text AS s, hold FROM tidemark.applied WHERE source = 'pg-main'"))
      .rows[0];
    expect(applied).toEqual({ s: (await lineage()).s, hold: null });
    expect((await src.query('SELECT count(*)::int AS n FROM pg_replication_slots')).rows[0].n).toBe(0);
    const again = await runCli(['failback', '-c', config, '--mirror-dir', mirror], { timeoutMs: 60_000 });
    expect(again.stdout).toMatch(/already a mirror/);

    // The reversed topology: the old primary applies dr1's changes from the branch point on.
    await stopRun(drRun);
    start(reversed, 'dr1');
    start(reversed, 'primary');
    await app.query("INSERT INTO app.t VALUES (203, 'after failback')");
    const rlog = join(dir, 'reversed.log');
    await until(
      'the old primary caught up',
      async () => (await rows(src)).join() === (await rows(dst)).join(),
      60_000,
      rlog,
    );
    expect(await rows(src)).toContain('203=after failback');
    // Already caught up (above). --wait-seconds short: verify's wait for "caught up" compares the journal with
    // pg_current_wal_lsn(), which WAL that capture never decodes (checkpoints) can leave ahead of it.
    const vargs = ['verify', '-c', reversed, '--target', 'olddb', '--json', '--wait-seconds', '5'];
    const v = await runCli(vargs, { timeoutMs: 90_000 });
    console.log(`verify: ${v.stdout.slice(-800)}`);
    expect(v.code, v.stderr.slice(-2000)).toBe(0);
    expect(v.stdout).toMatch(/"equal":\s*true/);
    console.log(`pg failback test: ${Date.now() - t0} ms`);
  }, 300_000);
});
