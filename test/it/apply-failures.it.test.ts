/**
 * A target that cannot apply does not stop `tidemark run` (issue 11, items 9, 10 and 13): one `run` with two
 * targets, on real MariaDB.
 *   1. A duplicate key on one replica: capture and the other target go on, `status` shows the failure with the way
 *      past it, `tidemark skip` refuses a wrong seq and skips the failing transaction (audited); verify then shows
 *      exactly that row, and is EQUAL once it is corrected by hand.
 *   2. Another duplicate, then `run --rebaseline`: the failed target jumps to the new baseline; verify EQUAL.
 *   3. The replica set read_only=1: run goes on and warns naming the target; apply resumes when it is writable.
 *   4. The journal deleted while the replicas hold positions in it: the targets stop naming the recovery (before,
 *      run ended, or — once the new journal passed the old position — applied it without its baseline), and
 *      `tidemark skip --to-baseline` restarts them from the new journal's baseline.
 * Before the fix each of these ended `tidemark run` at the first apply error.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, resetSchemas, startInstance } from '../fixtures/mariadb.ts';
import {
  cliOk,
  createTopology,
  exited,
  runCli,
  startRun,
  type Topology,
  stopTopology,
  stopRun,
} from '../fixtures/topology.ts';

const NAME = 'hCaf';
const SRC_PORT = 3721;
const REP_PORT = 3722;
const REP2_PORT = 3723;
const REP2 = `${NAME}rep2`;

let t: Topology;
let run: ChildProcess;
let src: mysql.Connection;
let rep: mysql.Connection;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An apply account without READ_ONLY ADMIN/SUPER, so read_only=1 stops it as it stops an application. */
const ACCOUNT = [
  "CREATE USER IF NOT EXISTS 'hc_apply'@'127.0.0.1' IDENTIFIED BY 'apply-pw'",
  'GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, CREATE VIEW, SHOW VIEW, TRIGGER, ' +
    "CREATE ROUTINE, ALTER ROUTINE, EXECUTE, LOCK TABLES ON *.* TO 'hc_apply'@'127.0.0.1'",
];

const target = (name: string, port: number) => `  - name: ${name}
    host: 127.0.0.1
    port: ${port}
    user: hc_apply
    password: apply-pw
    batch:
      max_transactions: 50
      max_wait_ms: 200
`;

interface TargetDoc {
  name: string;
  error: string | null;
  applied: { seq: string; phase: string } | null;
  /** Absent before the fix. */
  apply?: { state: string; error: string | null; next_seq: string | null; applier_pid: number | null };
}
interface StatusDoc {
  journal: { head: { seq: string } | null };
  targets: TargetDoc[];
}

async function status(): Promise<StatusDoc> {
  return JSON.parse(await cliOk(t.config, ['status', '--json'])) as StatusDoc;
}

async function targetDoc(name: string): Promise<TargetDoc> {
  const d = (await status()).targets.find((x) => x.name === name);
  if (!d) throw new Error(`no target ${name} in status`);
  return d;
}

async function gtidOf(port: number, sql: string): Promise<string | null> {
  const c = await admin(port);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>(sql);
    return rows[0]?.['g'] == null ? null : String(rows[0]['g']);
  } catch {
    return null;
  } finally {
    await c.end();
  }
}

/** The replica at `port` applied everything the source executed (and is past any baseline). */
async function caughtUp(port: number): Promise<boolean> {
  const s = await gtidOf(SRC_PORT, 'SELECT @@gtid_binlog_pos AS g');
  const r = await gtidOf(port, "SELECT gtid AS g FROM tidemark.applied_position WHERE phase <> 'baseline'");
  return s !== null && s === r;
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (run.exitCode !== null || run.signalCode !== null) {
      const err = (run as ChildProcess & { lastStderr?: () => string }).lastStderr?.() ?? '';
      throw new Error(`tidemark run exited (${run.exitCode ?? run.signalCode}) while waiting for ${what}: ${err}`);
    }
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

const logText = () => readFileSync(join(t.dir, 'tidemark.log'), 'utf8');

async function verify(targetName: string): Promise<{ code: number | null; out: string }> {
  const r = await runCli(['verify', '-c', t.config, '--target', targetName, '--wait-seconds', '30']);
  return { code: r.code, out: r.stdout + r.stderr };
}

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['hc.*'] });
  startInstance(REP2, REP2_PORT, { fresh: true });
  const r2 = await admin(REP2_PORT);
  await resetSchemas(r2);
  for (const q of ACCOUNT) await r2.query(q);
  await r2.end();
  rep = await admin(REP_PORT);
  for (const q of ACCOUNT) await rep.query(q);
  const yaml = readFileSync(t.config, 'utf8').replace(
    /targets:\n(?: {2}- name: replica\n(?: {4}.*\n)+)/,
    `targets:\n${target('replica', REP_PORT)}${target('second', REP2_PORT)}`,
  );
  expect(yaml).toContain('name: second');
  writeFileSync(t.config, yaml);
  src = await admin(SRC_PORT);
  await src.query('CREATE DATABASE hc');
  await src.query('CREATE TABLE hc.t (id INT PRIMARY KEY, v VARCHAR(20))');
  await src.query("INSERT INTO hc.t VALUES (1,'a'),(2,'b'),(3,'c')");
  run = startRun(t.config);
  await waitFor('both targets caught up', async () => (await caughtUp(REP_PORT)) && (await caughtUp(REP2_PORT)));
}, 180_000);

afterAll(async () => {
  await stopTopology(run, [src, rep], NAME, [REP2]);
});

describe('a failed target', () => {
  it('leaves capture and the other target running, shows in status, and tidemark skip gets it past', async () => {
    await rep.query("INSERT INTO hc.t VALUES (100, 'conflict')");
    await src.query("INSERT INTO hc.t VALUES (100, 'src')");
    await src.query("INSERT INTO hc.t VALUES (101, 'after')");
    await waitFor('replica marked failed', async () => (await targetDoc('replica')).apply?.state === 'failed');
    const failed = await targetDoc('replica');
    expect(failed.error).toMatch(/Duplicate entry '100'/);
    expect(failed.error).toMatch(/tidemark skip --target replica --seq \d+/);
    expect(failed.error).toMatch(/--rebaseline/);
    expect(failed.apply?.applier_pid).toBe(run.pid);
    const next = failed.apply?.next_seq ?? null;
    expect(next).not.toBeNull();

    // Capture goes on (the journal grows) and so does the other target.
    const head = BigInt((await status()).journal.head?.seq ?? '0');
    await src.query("INSERT INTO hc.t VALUES (102, 'more')");
    await waitFor('second target current', () => caughtUp(REP2_PORT));
    expect(BigInt((await status()).journal.head?.seq ?? '0')).toBeGreaterThan(head);
    expect(await caughtUp(REP_PORT)).toBe(false);

    // skip refuses a transaction the target is not stopped at, then skips the failing one.
    const wrong = await runCli(['skip', '-c', t.config, '--target', 'replica', '--seq', `${BigInt(next!) + 1000n}`]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/not right before seq/);
    const out = await cliOk(t.config, ['skip', '--target', 'replica', '--seq', next!, '--reason', 'hC test']);
    expect(out).toMatch(/skipped transaction seq \d+–\d+ .*hc\.t insert 1/);
    const audit = join(t.dir, 'journal', 'audit.log');
    expect(existsSync(audit)).toBe(true);
    const line = JSON.parse(readFileSync(audit, 'utf8').trim().split('\n').pop()!) as Record<string, unknown>;
    expect(line).toMatchObject({ action: 'skip', target: 'replica', reason: 'hC test', seq: next });

    // The running run retries at once and continues.
    await waitFor('replica current after skip', () => caughtUp(REP_PORT), 30_000);
    expect((await targetDoc('replica')).apply?.state).toBe('ok');
    const differs = await verify('replica');
    expect(differs.code).toBe(3);
    expect(differs.out).toMatch(/hc.*t/);
    await rep.query("UPDATE hc.t SET v = 'src' WHERE id = 100");
    const equal = await verify('replica');
    expect(equal.code, equal.out).toBe(0);
    expect(equal.out).toMatch(/EQUAL/);
  }, 120_000);

  it('run --rebaseline re-baselines a failed target (it jumps to the new baseline)', async () => {
    await rep.query("INSERT INTO hc.t VALUES (200, 'conflict')");
    await src.query("INSERT INTO hc.t VALUES (200, 'src')");
    await src.query("INSERT INTO hc.t VALUES (201, 'after')");
    // (Before the fix the run ended here; the rebaseline below then stopped at the same entry again.)
    const stopped = async () => run.exitCode !== null || (await targetDoc('replica')).apply?.state === 'failed';
    for (let i = 0; i < 240 && !(await stopped()); i++) await sleep(250);
    await stopRun(run);
    run = startRun(t.config, ['--rebaseline']);
    await waitFor('both targets current after the rebaseline', async () => {
      return (await caughtUp(REP_PORT)) && (await caughtUp(REP2_PORT));
    });
    expect(logText()).toMatch(/a newer baseline starts at journal LSN \d+: the target jumps to it/);
    for (const name of ['replica', 'second']) {
      const v = await verify(name);
      expect(v.code, v.out).toBe(0);
    }
    expect((await targetDoc('replica')).apply?.state).toBe('ok');
  }, 120_000);

  it('waits for a read-only replica, warning with its name, and resumes when it is writable', async () => {
    await rep.query('SET GLOBAL read_only = 1');
    try {
      await src.query("INSERT INTO hc.t VALUES (300, 'ro')");
      await waitFor('replica waiting', async () => (await targetDoc('replica')).apply?.state === 'waiting');
      expect((await targetDoc('replica')).apply?.error).toMatch(/target replica is read-only/);
      expect(logText()).toMatch(/target replica is read-only \(read_only=1\)/);
      await src.query("INSERT INTO hc.t VALUES (301, 'ro2')");
      await waitFor('second target current', () => caughtUp(REP2_PORT));
      expect(await caughtUp(REP_PORT)).toBe(false);
    } finally {
      await rep.query('SET GLOBAL read_only = 0');
    }
    await waitFor('replica current after read_only=0', () => caughtUp(REP_PORT), 30_000);
    expect((await targetDoc('replica')).apply?.state).toBe('ok');
    const v = await verify('replica');
    expect(v.code, v.out).toBe(0);
  }, 120_000);

  it('a deleted journal stops the targets naming the recovery; skip --to-baseline restarts them', async () => {
    run.kill('SIGTERM');
    await exited(run);
    await src.query("INSERT INTO hc.t VALUES (400, 'while stopped')");
    rmSync(join(t.dir, 'journal'), { recursive: true, force: true });
    run = startRun(t.config);
    await waitFor('replica failed on the new journal', async () => {
      const doc = await status();
      const d = doc.targets.find((x) => x.name === 'replica');
      return doc.journal.head !== null && d?.apply?.state === 'failed';
    });
    const d = await targetDoc('replica');
    expect(d.error).toMatch(/does not match journal .*: the journal was deleted or replaced/);
    expect(d.error).toMatch(/tidemark skip --target replica --to-baseline/);
    for (const name of ['replica', 'second']) {
      const out = await cliOk(t.config, ['skip', '--target', name, '--to-baseline', '--reason', 'journal lost']);
      expect(out).toMatch(/moved to the baseline starting at journal LSN 1 /);
    }
    await waitFor('both targets current from the new journal', async () => {
      return (await caughtUp(REP_PORT)) && (await caughtUp(REP2_PORT));
    });
    for (const name of ['replica', 'second']) {
      const v = await verify(name);
      expect(v.code, v.out).toBe(0);
    }
  }, 120_000);
});
