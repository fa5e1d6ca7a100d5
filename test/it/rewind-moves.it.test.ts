/**
 * Rewind and forward through the real CLI on a live pipeline (`tidemark run` keeps running: the hold protocol
 * pauses its applier). Checked against checksums the source had at recorded points, never against tidemark's own
 * view:
 *   - a random multi-table workload with 5 checkpoints, visited by --to-time in a random order (>= 8 moves);
 *   - --steps by transactions and by rows, against the states the source had after each statement;
 *   - a --sql script run by the mariadb client gives the same checksums as direct execution;
 *   - a deleted or damaged rollback index is rebuilt and answers log/history identically.
 */
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Checksums, schemaChecksums } from '../fixtures/checksums.ts';
import { admin, ROOT_PASSWORD, startInstance } from '../fixtures/mariadb.ts';
import { prng } from '../fixtures/prng.ts';
import {
  caughtUpWhileRunning,
  cliOk,
  createTopology,
  exited,
  runCli,
  startRun,
  type Topology,
  stopTopology,
} from '../fixtures/topology.ts';

const NAME = 'rwmov';
const SRC_PORT = 3511;
const REP_PORT = 3512;
const RESTORE_PORT = 3515;
const SEED = Number(process.env['TIDEMARK_REWIND_SEED'] ?? 20261122);

let t: Topology;
let run: ChildProcess;
let src: mysql.Connection;
/** The checkpoints of the first test: a time and the source's checksums then. */
const cps: { time: string; sums: Checksums }[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function replicaSums(): Promise<Checksums> {
  const r = await admin(REP_PORT);
  try {
    return await schemaChecksums(r, 'rw');
  } finally {
    await r.end();
  }
}

const ok = (...args: string[]): Promise<string> => cliOk(t.config, args, 180_000);

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['rw.*'] });
  src = await admin(SRC_PORT);
  await src.query('CREATE DATABASE rw');
  await src.query(
    'CREATE TABLE rw.a (id INT PRIMARY KEY, v INT NOT NULL, s VARCHAR(40) NULL, d DECIMAL(10,2) NULL, b BLOB NULL)',
  );
  await src.query('CREATE TABLE rw.`b``q` (k VARCHAR(20) PRIMARY KEY, n BIGINT NULL, t DATETIME(6) NULL)');
  await src.query('CREATE TABLE rw.c (id BIGINT PRIMARY KEY, j JSON NULL, f DOUBLE NULL)');
  for (let i = 1; i <= 40; i++) {
    await src.query('INSERT INTO rw.a VALUES (?, ?, ?, ?, ?)', [i, i, `s'${i}`, i / 4, Buffer.from([i, 0, 255])]);
    await src.query('INSERT INTO rw.`b``q` VALUES (?, ?, ?)', [`k${i}`, i * 1000, '2026-01-01 00:00:00.000001']);
    await src.query('INSERT INTO rw.c VALUES (?, ?, ?)', [i, JSON.stringify({ i }), i / 3]);
  }
  run = startRun(t.config);
  await caughtUpWhileRunning(t, run, 120_000);
}, 240_000);

afterAll(async () => {
  await stopTopology(run, [src], NAME, [`${NAME}restore`]);
});

/** Keys present per table, so the workload updates and deletes rows that exist. */
const keys = { a: new Set<number>(), b: new Set<number>(), c: new Set<number>() };
for (let i = 1; i <= 40; i++) for (const s of Object.values(keys)) s.add(i);
let nextKey = 1000;

function pick(rnd: () => number, s: Set<number>): number | undefined {
  const all = [...s];
  return all[Math.floor(rnd() * all.length)];
}

/** One statement changing exactly one row of a random table. */
async function oneRowChange(rnd: () => number, c: mysql.Connection): Promise<void> {
  const table = (['a', 'b', 'c'] as const)[Math.floor(rnd() * 3)]!;
  const s = keys[table];
  const op = rnd();
  const k = pick(rnd, s);
  if (op < 0.35 || k === undefined || s.size < 10) {
    const id = nextKey++;
    s.add(id);
    if (table === 'a')
      await c.query('INSERT INTO rw.a VALUES (?, ?, ?, NULL, ?)', [id, id, `new\n${id}`, Buffer.from([id % 256])]);
    else if (table === 'b') await c.query('INSERT INTO rw.`b``q` VALUES (?, ?, NOW(6))', [`k${id}`, id]);
    else await c.query('INSERT INTO rw.c VALUES (?, ?, ?)', [id, JSON.stringify({ id, tag: 'n' }), rnd()]);
  } else if (op < 0.75) {
    if (table === 'a')
      await c.query(
        'UPDATE rw.a SET v = v + 1, s = CONCAT(LEFT(COALESCE(s, ""), 30), "+"), d = d + 0.25 WHERE id = ?',
        [k],
      );
    else if (table === 'b') await c.query('UPDATE rw.`b``q` SET n = n + 1, t = NOW(6) WHERE k = ?', [`k${k}`]);
    else
      await c.query("UPDATE rw.c SET j = JSON_SET(COALESCE(j, '{}'), '$.u', ?), f = f + 1 WHERE id = ?", [
        nextKey++,
        k,
      ]);
  } else if (op < 0.9) {
    s.delete(k);
    if (table === 'a') await c.query('DELETE FROM rw.a WHERE id = ?', [k]);
    else if (table === 'b') await c.query('DELETE FROM rw.`b``q` WHERE k = ?', [`k${k}`]);
    else await c.query('DELETE FROM rw.c WHERE id = ?', [k]);
  } else {
    // Move a row to a new key.
    const id = nextKey++;
    s.delete(k);
    s.add(id);
    if (table === 'a') await c.query('UPDATE rw.a SET id = ? WHERE id = ?', [id, k]);
    else if (table === 'b') await c.query('UPDATE rw.`b``q` SET k = ? WHERE k = ?', [`k${id}`, `k${k}`]);
    else await c.query('UPDATE rw.c SET id = ? WHERE id = ?', [id, k]);
  }
}

it('rewinds and rolls forward to recorded checkpoints, in a random order', async () => {
  const rnd = prng(SEED);
  for (let c = 0; c < 5; c++) {
    for (let i = 0; i < 25; i++) {
      await src.query('START TRANSACTION');
      const n = 1 + Math.floor(rnd() * 4);
      for (let j = 0; j < n; j++) await oneRowChange(rnd, src);
      await src.query('COMMIT');
    }
    await caughtUpWhileRunning(t, run, 60_000);
    const sums = await schemaChecksums(src, 'rw');
    expect(await replicaSums()).toEqual(sums);
    const [rows] = await src.query<mysql.RowDataPacket[]>(
      "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ') AS t",
    );
    cps.push({ time: String(rows[0]?.['t']), sums });
    // Binlog times have whole seconds: keep the next checkpoint's transactions in a later second.
    await sleep(1200);
  }
  let at = 4;
  const moves: number[] = [];
  while (moves.length < 9) {
    const k = Math.floor(rnd() * 5);
    if (k !== at && k !== moves[moves.length - 1]) {
      moves.push(k);
      at = k;
    }
  }
  at = 4;
  for (const k of moves) {
    const out =
      k < at
        ? await ok('rewind', '--target', 'replica', '--to-time', cps[k]!.time)
        : k === 4 && moves.indexOf(k) % 2 === 0
          ? await ok('forward', '--target', 'replica', '--to-head')
          : await ok('forward', '--target', 'replica', '--to-time', cps[k]!.time);
    expect(out).toMatch(/done|already holds/);
    expect(await replicaSums(), `after moving from checkpoint ${at} to ${k}`).toEqual(cps[k]!.sums);
    at = k;
  }
  // Back to the head; the applier resumes and follows new work again.
  await ok('forward', '--target', 'replica', '--to-head');
  await src.query('UPDATE rw.c SET f = -1 WHERE id = (SELECT MIN(id) FROM (SELECT id FROM rw.c) x)');
  await caughtUpWhileRunning(t, run, 60_000);
  expect(await replicaSums()).toEqual(await schemaChecksums(src, 'rw'));
});

it('rewinds by transactions and by rows and forwards by steps, matching the source state at each point', async () => {
  const rnd = prng(SEED + 1);
  // 4 transactions of 3 one-row statements; the state after every statement, as the source's session saw it.
  const states: Checksums[] = [await schemaChecksums(src, 'rw')];
  for (let k = 0; k < 4; k++) {
    await src.query('START TRANSACTION');
    for (let j = 0; j < 3; j++) {
      await oneRowChange(rnd, src);
      states.push(await schemaChecksums(src, 'rw'));
    }
    await src.query('COMMIT');
  }
  await caughtUpWhileRunning(t, run, 60_000);
  expect(await replicaSums()).toEqual(states[12]);
  const steps: [string[], number][] = [
    [['rewind', '--steps', '1'], 9],
    [['rewind', '--steps', '2', '--unit', 'row'], 7],
    [['rewind', '--steps', '1'], 6], // the cut transaction counts as one
    [['rewind', '--steps', '4', '--unit', 'row'], 2],
    [['forward', '--steps', '1'], 3], // completes the cut transaction
    [['forward', '--steps', '2'], 9],
    [['forward', '--to-head'], 12],
  ];
  for (const [args, state] of steps) {
    await ok(...args, '--target', 'replica');
    expect(await replicaSums(), `${args.join(' ')} → state ${state}`).toEqual(states[state]);
    if (state === 9) {
      // Held after a rewind: status says so, and the position table names the point.
      const st = JSON.parse(await ok('status', '--json')) as {
        targets: { hold: string | null; applied: { seq: string } }[];
      };
      expect(st.targets[0]?.hold).toMatch(/^(rewound|forwarded) to seq \d+/);
    }
  }
  const status = JSON.parse(await ok('status', '--json')) as { targets: { hold: string | null }[] };
  expect(status.targets[0]?.hold).toBeNull();
});

it('a --sql script run by the mariadb client gives the same checksums as direct execution', async () => {
  const before = await replicaSums();
  const file = join(t.dir, 'rewind.sql');
  await ok('rewind', '--target', 'replica', '--steps', '3', '--sql', file);
  expect(await replicaSums(), 'writing the script changes nothing').toEqual(before);
  const script = readFileSync(file, 'utf8');
  expect(script).toMatch(/START TRANSACTION/);
  expect(script).toMatch(/COMMIT/);
  const client = spawnSync('mariadb', ['-h127.0.0.1', `-P${REP_PORT}`, '-uroot', `-p${ROOT_PASSWORD}`], {
    input: script,
    encoding: 'utf8',
  });
  expect(client.status, client.stderr).toBe(0);
  const viaScript = await replicaSums();
  expect(viaScript).not.toEqual(before);
  await ok('forward', '--target', 'replica', '--to-head');
  expect(await replicaSums()).toEqual(before);
  await ok('rewind', '--target', 'replica', '--steps', '3');
  expect(await replicaSums(), 'direct execution').toEqual(viaScript);
  await ok('forward', '--target', 'replica', '--to-head');
  expect(await replicaSums()).toEqual(before);
});

it('restore builds the tables as of a checkpoint on an empty server, and refuses a server that is not empty', async () => {
  startInstance(`${NAME}restore`, RESTORE_PORT, { fresh: true });
  const into = `mysql://root@127.0.0.1:${RESTORE_PORT}`;
  const env = { TIDEMARK_INTO_PASSWORD: ROOT_PASSWORD };
  const r = await runCli(['restore', '-c', t.config, '--to-time', cps[2]!.time, '--into', into], { env });
  expect(r.code, r.stderr).toBe(0);
  const c = await admin(RESTORE_PORT);
  try {
    expect(await schemaChecksums(c, 'rw')).toEqual(cps[2]!.sums);
  } finally {
    await c.end();
  }
  const again = await runCli(['restore', '-c', t.config, '--to-time', cps[3]!.time, '--into', into], { env });
  expect(again.code).toBe(2);
  expect(again.stderr).toMatch(/not empty/);
  expect(again.stderr + again.stdout).not.toContain(ROOT_PASSWORD);
});

it('a deleted or damaged rollback index is rebuilt and gives identical answers', async () => {
  run.kill('SIGTERM');
  await exited(run);
  const file = join(t.dir, 'journal', 'rollback-index.sqlite');
  const [rows] = await src.query<mysql.RowDataPacket[]>('SELECT MIN(id) AS id FROM rw.a');
  const key = `id=${rows[0]?.['id']}`;
  const answers = async () => [
    await ok('log', '--json', '--baseline'),
    await ok('log', '--table', 'rw.b`q'),
    await ok('history', '--table', 'rw.a', '--key', key, '--json'),
  ];
  const first = await answers();
  expect(first[0]!.split('\n').length).toBeGreaterThan(100);
  expect(JSON.parse(first[2]!).versions.length).toBeGreaterThan(0);
  for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
  expect(await answers(), 'after deleting the index').toEqual(first);
  writeFileSync(file, Buffer.alloc(8192, 0x5a));
  for (const f of [`${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
  expect(await answers(), 'after damaging the index').toEqual(first);
});
