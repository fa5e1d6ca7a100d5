/**
 * Undo of single transactions through the real CLI, with engineered conflicts, on a live pipeline:
 *   nocascade refuses and changes nothing; nonconflict undoes only untouched rows and reports the rest; cascade
 *   undoes the dependents (transitively) first; a re-inserted deleted key is a conflict; a guard that meets an
 *   unexpected row state aborts and changes nothing; a rewind across DDL is refused naming the statement; an undo
 *   on the source itself (--yes) is captured and reaches the replica.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Checksums, schemaChecksums } from '../fixtures/checksums.ts';
import { admin } from '../fixtures/mariadb.ts';
import {
  caughtUpWhileRunning,
  cliOk,
  createTopology,
  runCli,
  startRun,
  type Topology,
  stopTopology,
} from '../fixtures/topology.ts';

const NAME = 'rwundo';
const SRC_PORT = 3513;
const REP_PORT = 3514;

let t: Topology;
let run: ChildProcess;
let src: mysql.Connection;

const cli = (...args: string[]) => runCli([...args, '-c', t.config], { timeoutMs: 120_000 });

const ok = (...args: string[]): Promise<string> => cliOk(t.config, args, 120_000);

async function onReplica<T>(f: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const r = await admin(REP_PORT);
  try {
    return await f(r);
  } finally {
    await r.end();
  }
}

const replicaSums = (): Promise<Checksums> => onReplica((c) => schemaChecksums(c, 'rw2'));

async function balances(table: string): Promise<Record<number, number>> {
  return onReplica(async (c) => {
    const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT id, bal FROM rw2.${table} ORDER BY id`);
    return Object.fromEntries(rows.map((r) => [Number(r['id']), Number(r['bal'])]));
  });
}

async function hold(): Promise<string | null> {
  return onReplica(async (c) => {
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT hold FROM tidemark.applied_position');
    return rows[0]?.['hold'] == null ? null : String(rows[0]['hold']);
  });
}

/** Runs one autocommitted statement on the source and returns its GTID (the transaction id tidemark shows). */
async function tx(sql: string): Promise<string> {
  await src.query(sql);
  const [rows] = await src.query<mysql.RowDataPacket[]>('SELECT @@last_gtid AS g');
  return String(rows[0]?.['g']);
}

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['rw2.*'] });
  // source.admin: the account rewind/undo use on the source itself.
  const cfg = readFileSync(t.config, 'utf8');
  writeFileSync(
    t.config,
    cfg.replace(/(\n {2}server_id: .*\n)/, '$1  admin:\n    user: root\n    password: tidemark-root\n'),
  );
  src = await admin(SRC_PORT);
  await src.query('CREATE DATABASE rw2');
  for (const n of ['n', 'x', 'c', 'g', 'r', 'd', 'p']) {
    await src.query(`CREATE TABLE rw2.${n} (id INT PRIMARY KEY, bal INT NOT NULL)`);
    await src.query(`INSERT INTO rw2.${n} VALUES (1, 100), (2, 100), (3, 100), (4, 100), (5, 100)`);
  }
  run = startRun(t.config);
  await caughtUpWhileRunning(t, run, 120_000);
}, 240_000);

afterAll(async () => {
  await stopTopology(run, [src], NAME);
});

it('refuses a rewind across DDL, naming the statement; a window after it is fine', async () => {
  const [before] = await src.query<mysql.RowDataPacket[]>(
    "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ') AS t",
  );
  await new Promise((r) => setTimeout(r, 1200));
  await tx('ALTER TABLE rw2.d ADD COLUMN z INT NULL');
  await tx('INSERT INTO rw2.d VALUES (6, 100, 1)');
  await caughtUpWhileRunning(t, run, 60_000);
  const sums = await replicaSums();
  const r = await cli('rewind', '--target', 'replica', '--to-time', String(before[0]?.['t']));
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/DDL/);
  expect(r.stderr).toMatch(/ALTER TABLE rw2\.d ADD COLUMN z INT NULL/);
  expect(r.stderr).toMatch(/LSN \d+/);
  expect(await replicaSums()).toEqual(sums);
  expect(await hold()).toBeNull();
  await ok('rewind', '--target', 'replica', '--steps', '1');
  expect((await balances('d'))[6]).toBeUndefined();
  await ok('forward', '--target', 'replica', '--to-head');
  expect((await balances('d'))[6]).toBe(100);
});

it('undo modes: nocascade refuses, nonconflict skips, cascade undoes dependents first', async () => {
  const xn = await tx('UPDATE rw2.n SET bal = bal + 10 WHERE id IN (1, 2, 3)');
  const yn = await tx('UPDATE rw2.n SET bal = bal + 1 WHERE id = 2');
  const xx = await tx('UPDATE rw2.x SET bal = bal + 10 WHERE id IN (1, 2, 3)');
  const yx = await tx('UPDATE rw2.x SET bal = bal + 1 WHERE id = 2');
  const xc = await tx('UPDATE rw2.c SET bal = bal + 10 WHERE id IN (1, 2, 3)');
  const yc = await tx('UPDATE rw2.c SET bal = bal * 2 WHERE id IN (2, 5)');
  await tx('UPDATE rw2.c SET bal = bal + 5 WHERE id = 4');
  const wc = await tx('UPDATE rw2.c SET bal = bal + 7 WHERE id = 5');
  const dr = await tx('DELETE FROM rw2.r WHERE id = 3');
  const rr = await tx('INSERT INTO rw2.r VALUES (3, 999)');
  await caughtUpWhileRunning(t, run, 60_000);

  // nocascade with a later change of the same row: refused, names the dependent, changes nothing.
  const sums = await replicaSums();
  let r = await cli('undo', '--target', 'replica', '--tx', xn, '--mode', 'nocascade');
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(yn);
  expect(r.stderr).toMatch(/Nothing was changed/);
  expect(await replicaSums()).toEqual(sums);
  expect(await hold()).toBeNull();

  // A re-inserted deleted key is a conflict too.
  r = await cli('undo', '--target', 'replica', '--tx', dr);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(rr);
  expect(await replicaSums()).toEqual(sums);

  // A dry run shows and changes nothing.
  const dry = await ok('undo', '--target', 'replica', '--tx', xx, '--mode', 'nonconflict', '--dry-run');
  expect(dry).toMatch(/dry run/);
  expect(await replicaSums()).toEqual(sums);

  // nonconflict: rows 1 and 3 go back, row 2 (changed later by yx) stays and is reported.
  const out = await ok('undo', '--target', 'replica', '--tx', xx, '--mode', 'nonconflict');
  expect(out).toMatch(/skipped 1 row/);
  expect(out).toContain(yx);
  expect(await balances('x')).toEqual({ 1: 100, 2: 111, 3: 100, 4: 100, 5: 100 });
  expect(await hold()).toMatch(/undid/);

  // cascade: wc (via row 5) and yc (via row 2) are undone first; the independent +5 on row 4 stays.
  const cas = await ok('undo', '--target', 'replica', '--tx', xc, '--mode', 'cascade');
  expect(cas).toContain(yc);
  expect(cas).toContain(wc);
  expect(await balances('c')).toEqual({ 1: 100, 2: 100, 3: 100, 4: 105, 5: 100 });
  // Tables the undos did not touch are as the source has them.
  expect(await balances('n')).toEqual({ 1: 110, 2: 111, 3: 110, 4: 100, 5: 100 });
});

it('a guard that meets an unexpected row state aborts the whole undo and changes nothing', async () => {
  const g = await tx('UPDATE rw2.g SET bal = bal + 10 WHERE id IN (1, 2)');
  await ok('forward', '--target', 'replica', '--to-head'); // release the hold left by the undos
  await caughtUpWhileRunning(t, run, 60_000).catch(() => {});
  // Someone changes row 2 on the replica behind tidemark's back.
  await onReplica((c) => c.query('UPDATE rw2.g SET bal = 5000 WHERE id = 2'));
  const sums = await replicaSums();
  const held = await hold();
  const r = await cli('undo', '--target', 'replica', '--tx', g);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/rw2.*g/);
  expect(r.stderr).toMatch(/nothing (was )?changed/i);
  expect(await replicaSums()).toEqual(sums);
  expect(await hold()).toBe(held);
});

it('an undo on the source itself needs --yes, is captured, and the replica follows', async () => {
  await onReplica((c) => c.query('UPDATE rw2.g SET bal = 110 WHERE id = 2')); // repair the guard test's damage
  await ok('forward', '--target', 'replica', '--to-head');
  const p = await tx('UPDATE rw2.p SET bal = 0 WHERE id IN (1, 2, 3, 4, 5)');
  await caughtUpWhileRunning(t, run, 60_000);
  const refused = await cli('undo', '--target', NAME, '--tx', p);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toMatch(/--yes/);
  await ok('undo', '--target', NAME, '--tx', p, '--yes');
  const [rows] = await src.query<mysql.RowDataPacket[]>('SELECT SUM(bal) AS s FROM rw2.p');
  expect(Number(rows[0]?.['s'])).toBe(500);
  await caughtUpWhileRunning(t, run, 60_000);
  // (rw2.x and rw2.c differ on purpose: the undos above ran on the replica only.)
  expect((await replicaSums())['p']).toEqual((await schemaChecksums(src, 'rw2'))['p']);
});
