/**
 * Foreign-key cascades (issue 11, item 2). InnoDB does not write what ON DELETE/UPDATE CASCADE and SET NULL change
 * to the binlog, so the replica must cascade itself: parent → child (ON DELETE CASCADE, ON UPDATE CASCADE) →
 * grandchild (ON DELETE CASCADE), a SET NULL child, and a self-referencing table. After a cascading delete (children and grandchildren), a
 * cascading key update, SET NULL in both directions, an explicit child delete before its parent's in one
 * transaction and inserts reusing cascaded-away keys, `verify` is EQUAL. Rewind and undo cannot bring back rows
 * the journal never saw: an undo or rewind over a cascading parent change is refused naming the constraint, and
 * changes nothing; an undo of a parent change that cascaded nothing (no referenced column changed) still works.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Checksums, schemaChecksums } from '../fixtures/checksums.ts';
import { admin } from '../fixtures/mariadb.ts';
import {
  caughtUpWhileRunning,
  createTopology,
  runCli,
  startRun,
  type Topology,
  stopTopology,
} from '../fixtures/topology.ts';

const NAME = 'hDfk';
const SRC_PORT = 3731;
const REP_PORT = 3732;

let t: Topology;
let run: ChildProcess;
let src: mysql.Connection;

const cli = (...args: string[]) => runCli([...args, '-c', t.config], { timeoutMs: 120_000 });

async function replicaSums(): Promise<Checksums> {
  const r = await admin(REP_PORT);
  try {
    return await schemaChecksums(r, 'fk');
  } finally {
    await r.end();
  }
}

/** Runs statements on the source as one transaction and returns its GTID. */
async function tx(...sql: string[]): Promise<string> {
  if (sql.length > 1) await src.query('START TRANSACTION');
  for (const s of sql) await src.query(s);
  if (sql.length > 1) await src.query('COMMIT');
  const [rows] = await src.query<mysql.RowDataPacket[]>('SELECT @@last_gtid AS g');
  return String(rows[0]?.['g']);
}

async function verifyEqual(): Promise<void> {
  const v = await cli('verify', '--json');
  expect(v.stderr + v.stdout).not.toMatch(/"equal":\s*false/);
  expect(v.code).toBe(0);
}

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['fk.*'] });
  // source.admin: the account undo uses on the source itself.
  const cfg = readFileSync(t.config, 'utf8');
  writeFileSync(
    t.config,
    cfg.replace(/(\n {2}server_id: .*\n)/, '$1  admin:\n    user: root\n    password: tidemark-root\n'),
  );
  src = await admin(SRC_PORT);
  await src.query('CREATE DATABASE fk');
  await src.query('CREATE TABLE fk.parent (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)');
  await src.query(
    'CREATE TABLE fk.child (id INT PRIMARY KEY, pid INT NOT NULL, v VARCHAR(20), KEY (pid), ' +
      'CONSTRAINT child_parent FOREIGN KEY (pid) REFERENCES fk.parent (id) ON DELETE CASCADE ON UPDATE CASCADE)',
  );
  await src.query(
    'CREATE TABLE fk.grandchild (id INT PRIMARY KEY, cid INT NOT NULL, KEY (cid), ' +
      'CONSTRAINT gc_child FOREIGN KEY (cid) REFERENCES fk.child (id) ON DELETE CASCADE)',
  );
  await src.query(
    'CREATE TABLE fk.nullchild (id INT PRIMARY KEY, pid INT NULL, KEY (pid), ' +
      'CONSTRAINT nullchild_parent FOREIGN KEY (pid) REFERENCES fk.parent (id) ON DELETE SET NULL ON UPDATE SET NULL)',
  );
  await src.query(
    'CREATE TABLE fk.emp (id INT PRIMARY KEY, boss INT NULL, KEY (boss), ' +
      'CONSTRAINT emp_boss FOREIGN KEY (boss) REFERENCES fk.emp (id) ON DELETE CASCADE)',
  );
  // Two tables without foreign keys, for the table-by-table group.
  await src.query('CREATE TABLE fk.a (id INT PRIMARY KEY, v VARCHAR(10))');
  await src.query('CREATE TABLE fk.b (id INT PRIMARY KEY, u INT NOT NULL, UNIQUE KEY (u))');
  await src.query('INSERT INTO fk.emp VALUES (1, NULL), (2, 1), (3, 2), (4, NULL)');
  await src.query("INSERT INTO fk.parent VALUES (1,'p1'),(2,'p2'),(3,'p3'),(4,'p4'),(5,'p5')");
  // child 10+i belongs to parent 1+i%5; grandchild 100+j to child 10+j%10.
  await src.query("INSERT INTO fk.child SELECT 10 + seq, 1 + seq % 5, CONCAT('c', seq) FROM fk.seq_0_to_9");
  await src.query('INSERT INTO fk.grandchild SELECT 100 + seq, 10 + seq % 10 FROM fk.seq_0_to_19');
  await src.query('INSERT INTO fk.nullchild SELECT 50 + seq, 1 + seq % 5 FROM fk.seq_0_to_9');
  run = startRun(t.config);
  await caughtUpWhileRunning(t, run, 120_000);
}, 240_000);

afterAll(async () => {
  await stopTopology(run, [src], NAME);
});

let cascadingDelete = '';
let keyUpdate = '';
let plainUpdate = '';

it('the replica cascades like the source: delete, key update, SET NULL, reused keys; verify EQUAL', async () => {
  // Self-referencing: 3 explicitly, then 1 (which takes 2 with it). In key order (one IN list) deleting 1 first
  // would take 3 too, and the explicit delete of 3 would find nothing.
  await tx('DELETE FROM fk.emp WHERE id = 3', 'DELETE FROM fk.emp WHERE id = 1');
  // Children 10 and 15 and their grandchildren go with parent 1; nullchild 50 and 55 lose their parent.
  cascadingDelete = await tx('DELETE FROM fk.parent WHERE id = 1');
  // Children 11 and 16 follow to 20; nullchild 51 and 56 are set to NULL.
  keyUpdate = await tx('UPDATE fk.parent SET id = 20 WHERE id = 2');
  // An explicit child delete before its parent's, in one transaction (children 12/17 of parent 3).
  await tx('DELETE FROM fk.child WHERE id = 12', 'DELETE FROM fk.parent WHERE id = 3');
  plainUpdate = await tx("UPDATE fk.parent SET name = 'renamed' WHERE id = 4");
  // Keys the cascade removed come back: a duplicate key on a replica that kept the orphans.
  await tx("INSERT INTO fk.child VALUES (10, 4, 'reused'), (15, 20, 'reused')");
  await tx('INSERT INTO fk.grandchild VALUES (100, 10), (105, 15)');
  await tx('UPDATE fk.nullchild SET pid = 4 WHERE id = 50');
  await caughtUpWhileRunning(t, run, 60_000);
  await verifyEqual();
  const r = await admin(REP_PORT);
  try {
    const [rows] = await r.query<mysql.RowDataPacket[]>(
      'SELECT (SELECT COUNT(*) FROM fk.child) AS c, (SELECT COUNT(*) FROM fk.grandchild) AS g, ' +
        '(SELECT COUNT(*) FROM fk.nullchild WHERE pid IS NULL) AS n, ' +
        '(SELECT COUNT(*) FROM fk.child WHERE pid = 20) AS moved',
    );
    // 10 children - 2 (parent 1) - 2 (parent 3) + 2 reused; 20 grandchildren - 4 (children 10, 15) - 4 (12, 17) + 2.
    expect(Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]))).toEqual({
      c: 8,
      g: 14,
      n: 5,
      moved: 3,
    });
  } finally {
    await r.end();
  }
}, 120_000);

it('a source session with foreign_key_checks = 0 cascades nothing, and neither does the replica', async () => {
  const c = await admin(SRC_PORT);
  try {
    await c.query('SET SESSION foreign_key_checks = 0');
    // Children 14 and 19 and nullchild 54 and 59 keep pointing at 5; children of 20 keep pointing at 20.
    await c.query('DELETE FROM fk.parent WHERE id = 5');
    await c.query('UPDATE fk.parent SET id = 30 WHERE id = 20');
  } finally {
    await c.end();
  }
  await caughtUpWhileRunning(t, run, 60_000);
  await verifyEqual();
  const r = await admin(REP_PORT);
  try {
    const [rows] = await r.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM fk.child WHERE pid IN (5, 20)');
    expect(Number(rows[0]?.['n'])).toBe(5);
  } finally {
    await r.end();
  }
}, 120_000);

/** The replica's count of INSERT and LOAD DATA statements so far (all sessions). */
async function replicaInserts(): Promise<number> {
  const r = await admin(REP_PORT);
  try {
    const [rows] = await r.query<mysql.RowDataPacket[]>(
      "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_insert', 'Com_load')",
    );
    return rows.reduce((n, row) => n + Number(row['Value']), 0);
  } finally {
    await r.end();
  }
}

it('a group goes out table by table, with cascades and unique keys kept in place; verify EQUAL', async () => {
  await tx("INSERT INTO fk.parent VALUES (90, 'p90')");
  await caughtUpWhileRunning(t, run, 60_000);
  const before = await replicaInserts();
  // One source transaction (one replica group) whose 400 single-row inserts alternate between two tables. Inside
  // it: a child of parent 90 that the parent's delete cascades away (on the replica only if the insert runs
  // first), and a unique value of fk.b freed by an update and taken by a later insert (only in that order).
  // The parent table comes first, so that held per table its delete would run before the child's insert.
  const sql: string[] = ["INSERT INTO fk.parent VALUES (91, 'p91')"];
  for (let i = 1; i <= 100; i++)
    sql.push(`INSERT INTO fk.a VALUES (${i}, 'x')`, `INSERT INTO fk.b VALUES (${i}, ${i})`);
  sql.push("INSERT INTO fk.child VALUES (80, 90, 'doomed')");
  sql.push('UPDATE fk.b SET u = u + 1000 WHERE id = 1', 'INSERT INTO fk.b VALUES (1000, 1)');
  sql.push('DELETE FROM fk.parent WHERE id = 90');
  for (let i = 101; i <= 200; i++)
    sql.push(`INSERT INTO fk.a VALUES (${i}, 'y')`, `INSERT INTO fk.b VALUES (${i}, ${i})`);
  await tx(...sql);
  await caughtUpWhileRunning(t, run, 60_000);
  // In journal order that would be ~400 statements; table by table, a handful (+ the position row's upsert).
  expect(await replicaInserts()).toBeLessThanOrEqual(before + 12);
  await verifyEqual();
  const r = await admin(REP_PORT);
  try {
    const [rows] = await r.query<mysql.RowDataPacket[]>(
      'SELECT (SELECT COUNT(*) FROM fk.child WHERE id = 80) AS c, (SELECT COUNT(*) FROM fk.a) AS a, ' +
        '(SELECT COUNT(*) FROM fk.b) AS b, (SELECT id FROM fk.b WHERE u = 1) AS u1',
    );
    expect(Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]))).toEqual({
      c: 0,
      a: 200,
      b: 201,
      u1: 1000,
    });
  } finally {
    await r.end();
  }
}, 120_000);

it('an undo on the source runs with checks off: the parent goes, its new child stays, on the replica too', async () => {
  const ins = await tx("INSERT INTO fk.parent VALUES (50, 'p50')");
  await tx("INSERT INTO fk.child VALUES (60, 50, 'c60')");
  await caughtUpWhileRunning(t, run, 60_000);
  const u = await cli('undo', '--target', NAME, '--tx', ins, '--yes');
  expect(u.stderr).toBe('');
  expect(u.code).toBe(0);
  await caughtUpWhileRunning(t, run, 60_000);
  await verifyEqual();
  const r = await admin(REP_PORT);
  try {
    const [rows] = await r.query<mysql.RowDataPacket[]>(
      'SELECT (SELECT COUNT(*) FROM fk.parent WHERE id = 50) AS p, (SELECT COUNT(*) FROM fk.child WHERE id = 60) AS c',
    );
    expect([Number(rows[0]?.['p']), Number(rows[0]?.['c'])]).toEqual([0, 1]);
  } finally {
    await r.end();
  }
}, 120_000);

/** Waits until `tidemark log` lists transaction `id` (the journal has it; a held target does not move). */
async function journalHas(id: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const l = await cli('log', '--json', '--limit', '5');
    if (l.stdout.includes(`"tx_id":"${id}"`)) return;
    if (Date.now() > deadline) throw new Error(`transaction ${id} not in the journal: ${l.stdout}${l.stderr}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

it('forward does not redo a cascading change without its cascade: refused, or --to-head lets apply do it', async () => {
  await tx(
    "INSERT INTO fk.parent VALUES (70, 'p70')",
    "INSERT INTO fk.child VALUES (71, 70, 'c71')",
    'INSERT INTO fk.grandchild VALUES (171, 71)',
  );
  await caughtUpWhileRunning(t, run, 60_000);
  // Taking inserts back is fine; the target is held from here.
  const back = await cli('rewind', '--target', 'replica', '--steps', '1');
  expect(back.stderr).toBe('');
  expect(back.code).toBe(0);
  const del = await tx('DELETE FROM fk.parent WHERE id = 70');
  await journalHas(del);
  const f = await cli('forward', '--target', 'replica', '--steps', '2');
  expect(f.code).not.toBe(0);
  expect(f.stderr).toMatch(/cannot forward across .* fk\.child\.child_parent .*ON DELETE CASCADE.*--to-head/);
  const h = await cli('forward', '--target', 'replica', '--to-head');
  expect(h.stderr).toBe('');
  expect(h.code).toBe(0);
  expect(h.stdout).toMatch(/forward stops before transaction/);
  await caughtUpWhileRunning(t, run, 60_000);
  await verifyEqual();
}, 120_000);

it('undo and rewind over a cascading parent change are refused naming the constraint; others still work', async () => {
  expect(cascadingDelete).not.toBe('');
  const sums = await replicaSums();
  for (const dry of [['--dry-run'], []]) {
    const u = await cli('undo', '--target', 'replica', '--tx', cascadingDelete, ...dry);
    expect(u.code).not.toBe(0);
    expect(u.stderr).toMatch(/fk\.child\.child_parent/);
    expect(u.stderr).toMatch(/ON DELETE CASCADE/);
    expect(u.stderr).toMatch(/restore/);
  }
  // cascade: the later checks-off move 20 → 30 is undone first (it cascaded nothing), then the refusal.
  const k = await cli('undo', '--target', 'replica', '--tx', keyUpdate, '--mode', 'cascade');
  expect(k.code).not.toBe(0);
  expect(k.stderr).toMatch(
    /cannot undo .*0-3731-\d+.* update of fk\.parent \(id=2, .*fk\.child\.child_parent .*ON UPDATE CASCADE/,
  );
  const w = await cli('rewind', '--target', 'replica', '--before-tx', cascadingDelete, '--dry-run');
  expect(w.code).not.toBe(0);
  // Newest first: the delete of parent 70 (after the forward test) is met before parent 1's.
  expect(w.stderr).toMatch(
    /cannot rewind across .*delete of fk\.parent \(id=70, .*fk\.child\.child_parent .*ON DELETE/,
  );
  expect(await replicaSums()).toEqual(sums);
  // Renaming a parent cascades nothing: its undo runs.
  const p = await cli('undo', '--target', 'replica', '--tx', plainUpdate);
  expect(p.stderr).toBe('');
  expect(p.code).toBe(0);
  const r = await admin(REP_PORT);
  try {
    const [rows] = await r.query<mysql.RowDataPacket[]>('SELECT name FROM fk.parent WHERE id = 4');
    expect(rows[0]?.['name']).toBe('p4');
  } finally {
    await r.end();
  }
}, 120_000);
