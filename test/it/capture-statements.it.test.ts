/**
 * What ROW-format capture cannot take as rows, end to end through the real CLI on MariaDB 10.11 (issue #11):
 *   - a multi-table DROP naming a table outside the include set drops only the included ones on the replica
 *   - XA: two-phase XA on other schemas is skipped; on an included table it stops capture naming the XID, the
 *     table and the way out (resolve, then --rebaseline), which works
 *   - stream commit times never go below the baseline's (log never goes backwards)
 *   - statement-logged DML (SET SESSION binlog_format=STATEMENT) on other tables is ignored, on an included
 *     table (UPDATE, LOAD DATA) it stops capture naming table, statement kind and position; a global
 *     binlog_format change while streaming is reported
 * One topology for the file; the tests run in order and hand the running pipeline on.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MysqlCapture } from '../../capture/mysql/capture.ts';
import { MemorySink, memoryLogger, sourceConfig } from '../fixtures/capture-kit.ts';
import { admin } from '../fixtures/mariadb.ts';
import {
  caughtUpWhileRunning,
  cliOk,
  createTopology,
  exited,
  startRun,
  type Topology,
  stopTopology,
} from '../fixtures/topology.ts';

const NAME = 'hA';
const SRC_PORT = 3701;
const REP_PORT = 3702;

let t: Topology;
let src: mysql.Connection;
let run: ChildProcess | null = null;

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['app.*'] });
  src = await admin(SRC_PORT);
  await src.query(
    'CREATE DATABASE app; CREATE DATABASE other; ' +
      'CREATE TABLE app.t (id INT PRIMARY KEY, v INT); CREATE TABLE other.x (id INT PRIMARY KEY, v INT); ' +
      'INSERT INTO other.x VALUES (1, 1)',
  );
  // A table of the same name outside the include set, on both sides, with its own data on the replica.
  await src.query('CREATE TABLE other.src (id INT PRIMARY KEY)');
  const rep = await admin(REP_PORT);
  await rep.query(
    'CREATE DATABASE other; CREATE TABLE other.src (id INT PRIMARY KEY); INSERT INTO other.src VALUES (42)',
  );
  await rep.end();
  run = startRun(t.config);
  await caughtUpWhileRunning(t, run, 90_000);
}, 180_000);

afterAll(async () => {
  await stopTopology(run, [src], NAME);
});

async function replicaRows(sql: string): Promise<unknown[]> {
  const rep = await admin(REP_PORT);
  try {
    const [rows] = await rep.query<mysql.RowDataPacket[]>(sql);
    return rows.map((r) => ({ ...r }));
  } finally {
    await rep.end();
  }
}

/** Waits (bounded) for `tidemark run` to exit; returns its exit code and what it said (stderr, log errors). */
async function stops(child: ChildProcess, timeoutMs = 30_000): Promise<{ code: number | null; text: string }> {
  const code = await Promise.race([
    exited(child),
    new Promise<'running'>((r) => setTimeout(() => r('running'), timeoutMs)),
  ]);
  if (code === 'running') throw new Error(`tidemark run still running after ${timeoutMs} ms: nothing stopped it`);
  const stderr = (child as ChildProcess & { lastStderr?: () => string }).lastStderr?.() ?? '';
  let log = '';
  try {
    log = readFileSync(join(t.dir, 'tidemark.log'), 'utf8')
      .split('\n')
      .filter((l) => /"level":(50|60)/.test(l))
      .slice(-5)
      .join('\n');
  } catch {
    // no log
  }
  return { code, text: `${stderr}\n${log}` };
}

/** `tidemark run --rebaseline`, caught up (the documented way past a capture stop). */
async function rebaseline(): Promise<void> {
  run = startRun(t.config, ['--rebaseline']);
  await caughtUpWhileRunning(t, run, 90_000);
}

it('a multi-table DROP reaching outside the include set drops only the included tables on the replica', async () => {
  await src.query('CREATE TABLE app.dropme (id INT PRIMARY KEY); INSERT INTO app.dropme VALUES (1)');
  await caughtUpWhileRunning(t, run!, 60_000);
  expect(await replicaRows('SELECT id FROM app.dropme')).toEqual([{ id: 1 }]);

  await src.query('DROP TABLE app.dropme, other.src');
  await caughtUpWhileRunning(t, run!, 60_000);
  const left = await replicaRows(
    "SELECT CONCAT(table_schema, '.', table_name) AS t FROM information_schema.tables " +
      "WHERE table_schema IN ('app', 'other') ORDER BY 1",
  );
  expect(left).toEqual([{ t: 'app.t' }, { t: 'other.src' }]);
  expect(await replicaRows('SELECT id FROM other.src')).toEqual([{ id: 42 }]);
}, 120_000);

it('XA on other schemas is skipped; a prepared XA on an included table stops capture with the way out', async () => {
  await src.query(
    "XA START 'hx1'; INSERT INTO other.x VALUES (2, 2); XA END 'hx1'; XA PREPARE 'hx1'; XA COMMIT 'hx1'; " +
      "XA START 'hx2', 'b', 7; UPDATE other.x SET v = 9; XA END 'hx2', 'b', 7; XA PREPARE 'hx2', 'b', 7; " +
      "XA ROLLBACK 'hx2', 'b', 7; " +
      "XA START 'hx0'; INSERT INTO app.t VALUES (10, 10); XA END 'hx0'; XA COMMIT 'hx0' ONE PHASE; " +
      'INSERT INTO app.t VALUES (1, 1)',
  );
  await caughtUpWhileRunning(t, run!, 60_000);
  expect(await replicaRows('SELECT id, v FROM app.t ORDER BY id')).toEqual([
    { id: 1, v: 1 },
    { id: 10, v: 10 },
  ]);

  // Two-phase XA on the included table: prepared, not committed.
  const xa = await admin(SRC_PORT);
  await xa.query("XA START 'hx3'; INSERT INTO app.t VALUES (2, 2); XA END 'hx3'; XA PREPARE 'hx3'");
  const stopped = await stops(run!);
  expect(stopped.code).not.toBe(0);
  expect(stopped.text).toMatch(/XA transaction 'hx3' prepared at mysql-bin\.\d+:\d+/);
  expect(stopped.text).toMatch(/app\.t/);
  expect(stopped.text).toMatch(/--rebaseline/);
  expect(await replicaRows('SELECT id FROM app.t ORDER BY id')).toEqual([{ id: 1 }, { id: 10 }]); // never applied

  // The way out named: resolve it, then re-baseline. A baseline taken while it is still prepared would miss it
  // (neither in the snapshot nor in the binlog after it): the baseline waits, naming it, until it is resolved.
  run = startRun(t.config, ['--rebaseline']);
  const logFile = join(t.dir, 'tidemark.log');
  const deadline = Date.now() + 30_000;
  while (!/prepared on the source \('hx3'\)/.test(readFileSync(logFile, 'utf8')) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(readFileSync(logFile, 'utf8')).toMatch(/1 XA transaction\(s\) are prepared on the source \('hx3'\)/);
  await xa.query("XA COMMIT 'hx3'");
  await xa.end();
  await caughtUpWhileRunning(t, run, 90_000);
  expect(await replicaRows('SELECT id FROM app.t ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 10 }]);
}, 240_000);

it('stream commit times never go below the baseline: log does not go backwards', async () => {
  // A transaction whose binlog timestamp (the statement start, whole seconds) is before the baseline snapshot.
  await src.query('SET TIMESTAMP = UNIX_TIMESTAMP() - 100; INSERT INTO app.t VALUES (3, 3); SET TIMESTAMP = DEFAULT');
  await caughtUpWhileRunning(t, run!, 60_000);
  const out = await cliOk(t.config, ['log', '--json', '--baseline']);
  const txs = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { seq: string; commit_time_us: string; phase: string });
  const lastBaseline = txs.findLastIndex((x) => x.phase !== 'stream');
  expect(lastBaseline).toBeGreaterThanOrEqual(0);
  expect(txs.length).toBeGreaterThan(lastBaseline + 1);
  for (let i = 1; i < txs.length; i++) {
    expect(BigInt(txs[i]!.seq)).toBeGreaterThan(BigInt(txs[i - 1]!.seq));
    expect(BigInt(txs[i]!.commit_time_us), `commit time of seq ${txs[i]!.seq}`).toBeGreaterThanOrEqual(
      BigInt(txs[i - 1]!.commit_time_us),
    );
  }
}, 120_000);

it('statement-logged DML stops capture on an included table, is ignored elsewhere, and binlog_format is re-checked', async () => {
  // A global binlog_format change while streaming is reported by the periodic check.
  const { log, lines } = memoryLogger('warn');
  const ac = new AbortController();
  const capture = new MysqlCapture({
    source: sourceConfig(SRC_PORT, { include: ['app.*'], exclude: [] }),
    sink: new MemorySink(),
    resume: null,
    log,
    stream: { settingsCheckMs: 200 },
  });
  const captureRun = capture.run(ac.signal);
  try {
    while (capture.status().phase !== 'streaming') await new Promise((r) => setTimeout(r, 100));
    await src.query("SET GLOBAL binlog_format = 'MIXED'");
    const deadline = Date.now() + 15_000;
    while (!lines.some((l) => /binlog_format is MIXED/.test(String(l['msg']))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await src.query("SET GLOBAL binlog_format = 'ROW'");
    ac.abort();
    await captureRun;
  }
  expect(lines.find((l) => /binlog_format is MIXED/.test(String(l['msg'])))).toMatchObject({ level: 50 });

  // Statement-logged changes to tables outside the include set: ignored, capture goes on.
  const file = '/tmp/hA-load.txt';
  rmSync(file, { force: true });
  await src.query(`SELECT 7, 7 INTO OUTFILE '${file}'`);
  const stmt = await admin(SRC_PORT, 'other');
  try {
    await stmt.query("SET SESSION binlog_format = 'STATEMENT'");
    await stmt.query('UPDATE other.x SET v = v + 1');
    await stmt.query(`LOAD DATA INFILE '${file}' INTO TABLE x`);
    // A temporary table in an included schema is the session's own: its statements are ignored too.
    await stmt.query(
      'CREATE TEMPORARY TABLE app.tmp (id INT); INSERT INTO app.tmp VALUES (1); UPDATE app.tmp SET id = 2',
    );
    await src.query('INSERT INTO app.t VALUES (4, 4)');
    await caughtUpWhileRunning(t, run!, 60_000);
    expect(await replicaRows('SELECT id FROM app.t WHERE id = 4')).toEqual([{ id: 4 }]);

    // On an included table: capture stops, naming table, kind and position, and the fix.
    await stmt.query('UPDATE app.t SET v = v + 100 WHERE id = 1');
    let stopped = await stops(run!);
    expect(stopped.code).not.toBe(0);
    expect(stopped.text).toMatch(/statement-logged UPDATE on app\.t in the binlog at mysql-bin\.\d+:\d+/);
    expect(stopped.text).toMatch(/binlog_format=ROW/);
    expect(stopped.text).toMatch(/--rebaseline/);

    // The way out: a new baseline past it; then LOAD DATA (logged as its own event type) is caught too.
    await rebaseline();
    expect(await replicaRows('SELECT v FROM app.t WHERE id = 1')).toEqual([{ v: 101 }]);
    await stmt.query(`LOAD DATA INFILE '${file}' INTO TABLE app.t`);
    stopped = await stops(run!);
    expect(stopped.text).toMatch(/statement-logged LOAD DATA on app\.t/);
  } finally {
    await stmt.end();
    rmSync(file, { force: true });
  }
}, 300_000);
