/**
 * Operability on a live pipeline (issue 11, items 11-13):
 *   - the newest source transactions touch only tables outside the include set: status says capture caught up,
 *     verify returns at once, and an undo on the source is neither refused for lag nor (dry run) for --yes;
 *     the multi-row undo SQL names its constructor's columns;
 *   - `tidemark run` SIGKILLed under a parent that does not reap it (a zombie, as in a container without an init)
 *     restarts at once; a second live `run`, or `run --only apply` on the same target, is refused at once naming
 *     the pid, before the metrics port;
 *   - verify says when a target was behind and how long it waited; status says when capture is not running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { admin } from '../fixtures/mariadb.ts';
import {
  CLI,
  caughtUpWhileRunning,
  cliOk,
  createTopology,
  nodeFirstPath,
  runCli,
  startRun,
  type Topology,
  stopTopology,
  stopRun,
} from '../fixtures/topology.ts';

const NAME = 'hFop';
const SRC_PORT = 3751;
const REP_PORT = 3752;
const METRICS_PORT = 3753;

let t: Topology;
let run: ChildProcess | undefined;
let src: mysql.Connection;
const parents: ChildProcess[] = [];

const cli = (args: string[], timeoutMs = 60_000) => runCli([...args, '-c', t.config], { timeoutMs });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one autocommitted statement on the source and returns its GTID (the transaction id tidemark shows). */
async function tx(sql: string): Promise<string> {
  await src.query(sql);
  const [rows] = await src.query<mysql.RowDataPacket[]>('SELECT @@last_gtid AS g');
  return String(rows[0]?.['g']);
}

async function status(): Promise<{ journal: { capture_caught_up: boolean | null; capture_running: boolean | null } }> {
  return JSON.parse(await cliOk(t.config, ['status', '--json']));
}

function procState(pid: number): string | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

beforeAll(async () => {
  t = await createTopology({
    name: NAME,
    sourcePort: SRC_PORT,
    replicaPort: REP_PORT,
    include: ['op.*'],
    extraYaml: `metrics:\n  port: ${METRICS_PORT}\n`,
  });
  // source.admin: the account undo uses on the source itself.
  const cfg = readFileSync(t.config, 'utf8');
  writeFileSync(
    t.config,
    cfg.replace(/(\n {2}server_id: .*\n)/, '$1  admin:\n    user: root\n    password: tidemark-root\n'),
  );
  src = await admin(SRC_PORT);
  await src.query('CREATE DATABASE op');
  await src.query('CREATE DATABASE other');
  await src.query('CREATE TABLE op.t (id INT PRIMARY KEY, v INT NOT NULL)');
  await src.query('INSERT INTO op.t VALUES (1, 10), (2, 20), (3, 30), (4, 40), (5, 50)');
  await src.query('CREATE TABLE other.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)');
  run = startRun(t.config);
  await caughtUpWhileRunning(t, run, 120_000);
}, 240_000);

afterAll(async () => {
  await stopRun(run);
  for (const p of parents) p.kill('SIGKILL');
  await stopTopology(null, [src], NAME);
});

it('(11) when the newest transactions touch only non-included tables, capture counts as caught up', async () => {
  const upd = await tx('UPDATE op.t SET v = v + 1');
  await caughtUpWhileRunning(t, run!, 60_000);
  for (let i = 0; i < 3; i++) await src.query('INSERT INTO other.t (v) VALUES (1)');

  // status: caught up (capture's read position), once capture has published it (at most a second or two).
  let st = await status();
  for (let i = 0; i < 20 && st.journal.capture_caught_up !== true; i++) {
    await sleep(250);
    st = await status();
  }
  expect(st.journal.capture_caught_up).toBe(true);
  expect(st.journal.capture_running).toBe(true);
  expect(await cliOk(t.config, ['status'])).toMatch(/capture {3}caught up with the source \(read up to /);
  // A binlog rotation ends no event group: the idle heartbeat's position covers it (heartbeats every 5 s).
  await src.query('FLUSH BINARY LOGS');
  st = await status();
  for (let i = 0; i < 60 && st.journal.capture_caught_up !== true; i++) {
    await sleep(250);
    st = await status();
  }
  expect(st.journal.capture_caught_up).toBe(true);

  // verify: no waiting for a position the journal never reaches.
  let started = Date.now();
  const v = await cliOk(t.config, ['verify', '--wait-seconds', '30']);
  expect(Date.now() - started).toBeLessThan(15_000);
  expect(v).toMatch(/target replica: EQUAL/);
  expect(v).not.toMatch(/behind/);

  // undo on the source: a dry run needs no --yes; its script's multi-row statement names the columns.
  const script = join(t.dir, 'undo.sql');
  const dry = await cli(['undo', '--target', NAME, '--tx', upd, '--dry-run', '--sql', script]);
  expect(dry.stderr).not.toMatch(/--yes/);
  expect(dry.code).toBe(0);
  const sql = readFileSync(script, 'utf8');
  expect(sql).toContain('/* key: k0 = `id`; held: c0 = `v`; written: n0 = `v` */');

  // … and the real one is not refused as "behind the source".
  started = Date.now();
  await cliOk(t.config, ['undo', '--target', NAME, '--tx', upd, '--yes']);
  expect(Date.now() - started).toBeLessThan(12_000);
  const [rows] = await src.query<mysql.RowDataPacket[]>('SELECT SUM(v) AS s FROM op.t');
  expect(Number(rows[0]?.['s'])).toBe(150);
  await caughtUpWhileRunning(t, run!, 60_000);
}, 120_000);

it('(12) restart after kill -9 under a parent that does not reap; a second run or applier is refused at once', async () => {
  await stopRun(run);
  // A parent that never waits for its `tidemark run` child (the shell execs into sleep): once killed, the child
  // stays a zombie.
  const parent = spawn('sh', ['-c', '"$0" run -c "$1" >/dev/null 2>&1 & echo $!; exec sleep 600', CLI, t.config], {
    env: { ...process.env, PATH: nodeFirstPath() },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  parents.push(parent);
  const pid = await new Promise<number>((resolve) => parent.stdout?.once('data', (d) => resolve(Number(String(d)))));
  const lockOf = (f: string) => {
    try {
      return readFileSync(join(t.dir, 'journal', f), 'utf8').trim();
    } catch {
      return null;
    }
  };
  for (let i = 0; i < 200 && (lockOf('LOCK') !== String(pid) || lockOf('apply-replica.lock') !== String(pid)); i++) {
    await sleep(100);
  }
  expect(lockOf('LOCK')).toBe(String(pid));
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && procState(pid) !== 'Z'; i++) await sleep(50);
  expect(procState(pid)).toBe('Z');

  // The zombie holds nothing: a new run starts at once and follows the source.
  run = startRun(t.config);
  await tx('INSERT INTO op.t VALUES (6, 60)');
  await caughtUpWhileRunning(t, run, 60_000);
  expect(procState(pid)).toBe('Z');

  // A live run holds the journal: a second one is refused at once, naming it, before the metrics port.
  let started = Date.now();
  const second = await cli(['run'], 30_000);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(second.code).not.toBe(0);
  expect(second.code).not.toBeNull();
  expect(second.stderr).toContain(`locked by process ${run.pid}`);
  expect(second.stderr).not.toMatch(/metrics/);

  // A second applier of the same target (on another metrics port): refused the same way, not taking turns
  // through the position table.
  const other = join(t.dir, 'other-metrics.yaml');
  writeFileSync(other, readFileSync(t.config, 'utf8').replace(`port: ${METRICS_PORT}`, `port: ${METRICS_PORT + 1}`));
  started = Date.now();
  const applier = await runCli(['run', '--only', 'apply', '-c', other], { timeoutMs: 30_000 });
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(applier.code).not.toBe(0);
  expect(applier.code).not.toBeNull();
  expect(applier.stderr).toContain(`target replica is already applied to by process ${run.pid}`);
  expect(run.exitCode).toBeNull();
}, 120_000);

it('(13) verify says a target was behind and for how long; status says capture is not running', async () => {
  await stopRun(run);
  await tx('INSERT INTO op.t VALUES (7, 70)');
  const st = await cliOk(t.config, ['status']);
  expect(st).toMatch(/capture {3}behind the source \(capture is not running\)/);
  const r = await cli(['verify', '--wait-seconds', '2']);
  expect(r.code).toBe(3);
  expect(r.stdout).toMatch(/target replica: DIFFERENT/);
  expect(r.stdout).toMatch(/behind the source: still not caught up after waiting \d+\.\d s \(--wait-seconds 2\)/);
}, 60_000);
