/**
 * Sequences and DDL across the include boundary (issue #11 items 7 and 8), end to end through the real CLI. Only
 * `zoo.*` is captured; `other` is outside the include set.
 *
 *   sequences   a sequence and a table with DEFAULT NEXTVAL(seq) (named so it sorts before the sequence) in the
 *               baseline; NEXTVAL past the cache, SETVAL, ALTER SEQUENCE … RESTART (backwards), CREATE and DROP
 *               SEQUENCE in the stream: definition and state equal on the replica, verify compares the sequences
 *   LIKE        CREATE TABLE zoo.t LIKE other.s: the replica gets zoo.t (other.s is not there)
 *   move in     RENAME TABLE other.t TO zoo.t (and ALTER TABLE … RENAME), then changes to it, all while tidemark
 *               is stopped: the table is copied when capture reads the RENAME, and the changes after it (already
 *               in the copy) are not applied again; chains inside one RENAME; a move while streaming
 *   move out    RENAME TABLE zoo.t TO other.t drops zoo.t on the replica and creates nothing in `other`; a
 *               rename with both sides outside is ignored
 *   kill        tidemark run SIGKILLed in the middle of copying two tables moved in by one RENAME; the tables
 *               change before the restart, which copies them again
 * Each ends with `tidemark verify` EQUAL. On 6839275 each fails: the baseline stops (`DDL at seq 4: Table
 * 'zoo.seq1' doesn't exist`), apply stops (`Table 'other.tmpl' doesn't exist`, `Table 'other.mv' doesn't exist`),
 * the replica gets other.gone.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { admin } from '../fixtures/mariadb.ts';
import {
  caughtUpWhileRunning,
  createTopology,
  exited,
  runCli,
  startRun,
  type Topology,
  stopTopology,
  stopRun,
} from '../fixtures/topology.ts';

const NAME = 'hBcs';
let t: Topology;
let src: mysql.Connection;
let rep: mysql.Connection;
let child: ChildProcess | null = null;

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: 3711, replicaPort: 3712, include: ['zoo.*'] });
  src = await admin(3711);
  rep = await admin(3712);
  // The replica has its own `other` schema: tidemark must leave it alone.
  await rep.query('CREATE DATABASE other');
  await rep.query('CREATE TABLE other.mine (id INT PRIMARY KEY) ENGINE=InnoDB');
  await src.query('CREATE DATABASE zoo');
  await src.query('CREATE DATABASE other');
  await src.query('CREATE TABLE zoo.marker (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB');
});

afterAll(async () => {
  await stopTopology(child, [src, rep], NAME);
});

function running(): ChildProcess {
  if (!child || child.exitCode !== null || child.signalCode !== null) child = startRun(t.config);
  return child;
}

async function stop(): Promise<void> {
  const c = child;
  child = null;
  await stopRun(c);
}

interface VerifyDoc {
  equal: boolean;
  targets: { tables: { schema: string; table: string; equal: boolean }[] }[];
}

/**
 * Waits until the replica caught up, then runs `tidemark verify`; returns the compared tables. A last write to an
 * included table first: the fixture compares GTIDs, and changes inside a copy window are (rightly) not journaled.
 */
async function caughtUpAndEqual(): Promise<string[]> {
  await src.query('INSERT INTO zoo.marker () VALUES ()');
  await caughtUpWhileRunning(t, running(), 60_000);
  const v = await runCli(['verify', '-c', t.config, '--json'], { timeoutMs: 60_000 });
  expect(v.code, v.stderr + v.stdout).toBe(0);
  const doc = JSON.parse(v.stdout) as VerifyDoc;
  expect(doc.equal).toBe(true);
  return doc.targets[0]!.tables.map((x) => `${x.schema}.${x.table}`);
}

async function rows(c: mysql.Connection, sql: string): Promise<unknown[]> {
  const [r] = await c.query<mysql.RowDataPacket[]>(sql);
  return r.map((x) => ({ ...x }));
}

async function tablesIn(c: mysql.Connection, schema: string): Promise<string[]> {
  const [r] = await c.query<mysql.RowDataPacket[]>(
    'SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? ORDER BY 1',
    [schema],
  );
  return r.map((x) => String(x['t']));
}

it('sequences: definition and state in the baseline (before the tables using them) and in the stream', async () => {
  await src.query('CREATE SEQUENCE zoo.seq1 START WITH 100 INCREMENT BY 5 CACHE 10');
  await src.query(
    'CREATE TABLE zoo.a_ticket (id BIGINT NOT NULL DEFAULT NEXTVAL(zoo.seq1) PRIMARY KEY, v INT) ENGINE=InnoDB',
  );
  await src.query('INSERT INTO zoo.a_ticket (v) VALUES (1), (2), (3)');
  expect(await caughtUpAndEqual()).toEqual(['zoo.a_ticket', 'zoo.marker', 'zoo.seq1']);

  for (let i = 0; i < 30; i++) await src.query('INSERT INTO zoo.a_ticket (v) VALUES (?)', [i]);
  for (let i = 0; i < 15; i++) await src.query('SELECT NEXTVAL(zoo.seq1)');
  await src.query('SELECT SETVAL(zoo.seq1, 5000)');
  await src.query('CREATE SEQUENCE zoo.seq2 START WITH 7 CACHE 2');
  await src.query('SELECT NEXTVAL(zoo.seq2), NEXTVAL(zoo.seq2), NEXTVAL(zoo.seq2)');
  await src.query('CREATE SEQUENCE zoo.seq3');
  await src.query('DROP SEQUENCE zoo.seq3');
  await src.query('START TRANSACTION');
  await src.query('INSERT INTO zoo.a_ticket (v) VALUES (100), (101)');
  await src.query('COMMIT');
  expect(await caughtUpAndEqual()).toEqual(['zoo.a_ticket', 'zoo.marker', 'zoo.seq1', 'zoo.seq2']);
  // Backwards: ALTER SEQUENCE … RESTART (DDL) and an INSERT into the sequence (state row, also backwards).
  await src.query('ALTER SEQUENCE zoo.seq1 RESTART WITH 10');
  await src.query('INSERT INTO zoo.seq2 VALUES (3, 1, 9223372036854775806, 7, 1, 2, 0, 0)');
  await src.query('INSERT INTO zoo.a_ticket (v) VALUES (200)');
  await caughtUpAndEqual();
  for (const s of ['seq1', 'seq2']) {
    expect(await rows(rep, `SELECT * FROM zoo.${s}`)).toEqual(await rows(src, `SELECT * FROM zoo.${s}`));
  }
  expect(await tablesIn(rep, 'zoo')).toEqual(['a_ticket', 'marker', 'seq1', 'seq2']);
});

it('CREATE TABLE … LIKE a table outside the include set gives the replica that definition', async () => {
  await caughtUpWhileRunning(t, running(), 60_000); // streaming, not in a baseline
  await src.query(
    'CREATE TABLE other.tmpl (id INT PRIMARY KEY, a VARCHAR(20) NOT NULL, b DECIMAL(8,2) NULL, KEY (a)) ENGINE=InnoDB',
  );
  await src.query("INSERT INTO other.tmpl VALUES (1, 'not copied', 1)");
  await src.query('CREATE TABLE zoo.lk LIKE other.tmpl');
  await src.query("INSERT INTO zoo.lk VALUES (1, 'x', 1.50), (2, 'y', NULL)");
  await src.query("UPDATE zoo.lk SET a = 'z' WHERE id = 2");
  expect(await caughtUpAndEqual()).toContain('zoo.lk');
  const [[created]] = await rep.query<mysql.RowDataPacket[]>('SHOW CREATE TABLE zoo.lk');
  const [[expected]] = await src.query<mysql.RowDataPacket[]>('SHOW CREATE TABLE zoo.lk');
  expect(created?.['Create Table']).toBe(expected?.['Create Table']);
  expect(await tablesIn(rep, 'other')).toEqual(['mine']);
});

it('a table moving in is copied, and its changes after the RENAME are not applied twice', async () => {
  await caughtUpWhileRunning(t, running(), 60_000);
  await stop();
  // All of this happens while capture is stopped: when capture reads the RENAME, the copy already holds the rest.
  await src.query('CREATE TABLE other.mv (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await src.query('INSERT INTO other.mv VALUES (1, 10), (2, 20), (3, 30)');
  await src.query('RENAME TABLE other.mv TO zoo.mv');
  await src.query('INSERT INTO zoo.mv VALUES (4, 40)');
  await src.query('UPDATE zoo.mv SET v = v + 1 WHERE id = 1');
  await src.query('DELETE FROM zoo.mv WHERE id = 2');
  await src.query('ALTER TABLE zoo.mv ADD COLUMN w INT NULL');
  await src.query('UPDATE zoo.mv SET w = id');
  // Chains in one statement: moves in and is renamed on; moves in and out again (never copied).
  await src.query('CREATE TABLE other.c1 (id INT PRIMARY KEY) ENGINE=InnoDB');
  await src.query('CREATE TABLE other.c2 (id INT PRIMARY KEY) ENGINE=InnoDB');
  await src.query('INSERT INTO other.c1 VALUES (1), (2)');
  await src.query('RENAME TABLE other.c1 TO zoo.tmp, zoo.tmp TO zoo.c1, other.c2 TO zoo.c2, zoo.c2 TO other.c3');
  await src.query('INSERT INTO zoo.c1 VALUES (3)');
  // ALTER TABLE … RENAME into the set, with another change in the same statement.
  await src.query('CREATE TABLE other.al (id INT PRIMARY KEY) ENGINE=InnoDB');
  await src.query('INSERT INTO other.al VALUES (1), (2)');
  await src.query('ALTER TABLE other.al ADD COLUMN x INT NOT NULL DEFAULT 7, RENAME TO zoo.al');
  await src.query('UPDATE zoo.al SET x = 8 WHERE id = 2');
  // A sequence moving in: its definition and state.
  await src.query('CREATE SEQUENCE other.sq START WITH 40 CACHE 5');
  await src.query('SELECT NEXTVAL(other.sq)');
  await src.query('RENAME TABLE other.sq TO zoo.sq');
  await src.query('SELECT NEXTVAL(zoo.sq), NEXTVAL(zoo.sq), NEXTVAL(zoo.sq), NEXTVAL(zoo.sq), NEXTVAL(zoo.sq)');
  expect(await caughtUpAndEqual()).toEqual(expect.arrayContaining(['zoo.mv', 'zoo.c1', 'zoo.al', 'zoo.sq']));
  expect(await rows(rep, 'SELECT * FROM zoo.sq')).toEqual(await rows(src, 'SELECT * FROM zoo.sq'));
  expect(await rows(rep, 'SELECT * FROM zoo.mv ORDER BY id')).toEqual([
    { id: 1, v: 11, w: 1 },
    { id: 3, v: 30, w: 3 },
    { id: 4, v: 40, w: 4 },
  ]);
  expect(await tablesIn(rep, 'zoo')).toEqual(await tablesIn(src, 'zoo'));
  // Moved in while streaming (a live window), then changed at once.
  await src.query('CREATE TABLE other.mv2 (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await src.query('INSERT INTO other.mv2 SELECT seq, seq FROM other.seq_1_to_300');
  await src.query('RENAME TABLE other.mv2 TO zoo.mv2');
  for (let i = 301; i < 320; i++) await src.query('INSERT INTO zoo.mv2 VALUES (?, ?)', [i, i]);
  await src.query('DELETE FROM zoo.mv2 WHERE id < 10');
  expect(await caughtUpAndEqual()).toContain('zoo.mv2');
  expect(await rows(rep, 'SELECT COUNT(*) AS n FROM zoo.mv2')).toEqual([{ n: '310' }]);
});

it('a table moving out is dropped on the replica; renames outside the include set are ignored', async () => {
  await src.query('CREATE TABLE zoo.gone (id INT PRIMARY KEY) ENGINE=InnoDB');
  await src.query('INSERT INTO zoo.gone VALUES (1), (2)');
  await caughtUpWhileRunning(t, running(), 60_000);
  expect(await tablesIn(rep, 'zoo')).toContain('gone');
  await src.query('RENAME TABLE zoo.gone TO other.gone, zoo.sq TO other.sq');
  await src.query('RENAME TABLE other.gone TO other.gone2');
  await src.query('INSERT INTO other.gone2 VALUES (3)');
  expect(await caughtUpAndEqual()).not.toContain('zoo.gone');
  expect(await tablesIn(rep, 'zoo')).toEqual(await tablesIn(src, 'zoo'));
  expect(await tablesIn(rep, 'other')).toEqual(['mine']);
});

it('a kill during a copy: the restart drops the cut unit and copies the table again', async () => {
  await caughtUpWhileRunning(t, running(), 60_000);
  const log = () => readFileSync(join(t.dir, 'tidemark.log'), 'utf8');
  const from = log().length;
  const lines = (what: string) =>
    log()
      .slice(from)
      .split('\n')
      .filter((l) => l.includes(what)).length;
  await src.query('CREATE TABLE other.big (id INT PRIMARY KEY, v VARCHAR(200) NOT NULL) ENGINE=InnoDB');
  await src.query("INSERT INTO other.big SELECT seq, REPEAT('x', 200) FROM other.seq_1_to_300000");
  await src.query('CREATE TABLE other.small (id INT PRIMARY KEY) ENGINE=InnoDB');
  await src.query('INSERT INTO other.small VALUES (1), (2), (3)');
  await src.query('RENAME TABLE other.big TO zoo.big, other.small TO zoo.small');
  const deadline = Date.now() + 30_000;
  while (lines('copying it') === 0) {
    if (Date.now() > deadline) throw new Error('the copy did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 400)); // rows on their way into the journal (and the replica)
  expect(lines('"msg":"table copied"')).toBe(0); // still copying
  child?.kill('SIGKILL');
  if (child) await exited(child);
  child = null;
  // Before the restart, the tables change: the new copy has other row counts (its DDL keeps its seqs).
  await src.query("UPDATE zoo.big SET v = 'y' WHERE id <= 10");
  await src.query("INSERT INTO zoo.big SELECT seq, 'z' FROM other.seq_300001_to_300500");
  await src.query('DELETE FROM zoo.small WHERE id = 2');
  expect(await caughtUpAndEqual()).toEqual(expect.arrayContaining(['zoo.big', 'zoo.small']));
  expect(lines('table moved into the captured tables: copying it')).toBe(2);
  expect(lines('"msg":"table copied"')).toBe(1);
});
