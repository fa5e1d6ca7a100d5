/**
 * Rewind and forward across object DDL (issue #16 item 3) on a replica, through the real CLI with `tidemark run`
 * running. A window holding CREATE VIEW, CREATE OR REPLACE VIEW, DROP PROCEDURE, CREATE TRIGGER (firing on the
 * source), ALTER EVENT and row changes:
 *   - a trigger dropped in the window comes back in its place among its table's triggers (ACTION_ORDER);
 *   - a rewind whose row guard fails changes nothing, objects included (they are put back);
 *   - rewind --to-time before it: rows equal to the source's checksums then, every object equal by definition
 *     (SHOW CREATE normalised) to the replica's before the window; forward --to-head: equal to the head state;
 *   - rewind --steps across the ALTER EVENT and a row change; a --sql script run by the mariadb client does the
 *     same as direct execution;
 *   - a rewind of the source: the objects as the source ran them (a trigger created in the window is gone before
 *     the row undo runs), captured, and the replica follows;
 *   - an undo of one transaction is not refused by a later trigger or view on its table;
 *   - after forward the replayed trigger stays inert under apply (no double effect), and a window holding table
 *     DDL is still refused, naming it, with nothing changed.
 */
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Checksums, schemaChecksums } from '../fixtures/checksums.ts';
import { admin, ROOT_PASSWORD } from '../fixtures/mariadb.ts';
import { objectDefinitions } from '../fixtures/objects.ts';
import {
  caughtUpWhileRunning,
  cliOk,
  createTopology,
  runCli,
  startRun,
  stopTopology,
  type Topology,
} from '../fixtures/topology.ts';

const NAME = 'rwobj';
const SRC_PORT = 3780;
const REP_PORT = 3781;

type Rows = mysql.RowDataPacket[];

let t: Topology;
let run: ChildProcess;
let src: mysql.Connection;
let rep: mysql.Connection;

const SETUP = [
  'CREATE DATABASE ro',
  'USE ro',
  'CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL)',
  'CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(40) NOT NULL)',
  'CREATE FUNCTION dbl(x INT) RETURNS INT DETERMINISTIC RETURN x * 2',
  'CREATE VIEW v_t AS SELECT id, dbl(v) AS v2 FROM t',
  "CREATE PROCEDURE p_gone() BEGIN INSERT INTO log (msg) VALUES ('called'); END",
  // Two triggers of one table, timing and event: they fire in creation order (ACTION_ORDER 1, 2).
  'CREATE TRIGGER log_a BEFORE INSERT ON log FOR EACH ROW SET NEW.msg = LEFT(NEW.msg, 40)',
  'CREATE TRIGGER log_b BEFORE INSERT ON log FOR EACH ROW SET NEW.msg = LEFT(NEW.msg, 39)',
  "CREATE EVENT ev ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DO DELETE FROM log WHERE msg = 'zzz'",
];

/** The state a test compares against: the source's row checksums and the objects' definitions. */
interface State {
  sums: Checksums;
  objects: Record<string, string>;
}

async function replicaState(): Promise<State> {
  return {
    sums: await schemaChecksums(rep, 'ro'),
    objects: Object.fromEntries(await objectDefinitions(rep, 'ro', 'replica')),
  };
}

/** The source's state once the replica caught up; the replica must equal it. */
async function settled(): Promise<State> {
  await caughtUpWhileRunning(t, run, 60_000);
  const s = {
    sums: await schemaChecksums(src, 'ro'),
    objects: Object.fromEntries(await objectDefinitions(src, 'ro', 'source')),
  };
  expect(await replicaState()).toEqual(s);
  return s;
}

async function utcNow(): Promise<string> {
  const [[r]] = (await src.query("SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ') AS t")) as unknown as [
    Rows,
  ];
  await new Promise((res) => setTimeout(res, 1200)); // commit times are whole seconds
  return String(r?.['t']);
}

const ok = (...args: string[]): Promise<string> => cliOk(t.config, args, 120_000);

async function hold(): Promise<string | null> {
  const [[r]] = (await rep.query('SELECT hold FROM tidemark.applied_position')) as unknown as [Rows];
  return (r?.['hold'] as string | null) ?? null;
}

let before: State;
let beforeTime: string;
let middle: State;
let head: State;

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['ro.*'] });
  // source.admin: the account rewind uses on the source itself.
  const cfg = readFileSync(t.config, 'utf8');
  writeFileSync(
    t.config,
    cfg.replace(/(\n {2}server_id: .*\n)/, '$1  admin:\n    user: root\n    password: tidemark-root\n'),
  );
  src = await admin(SRC_PORT);
  rep = await admin(REP_PORT);
  await src.query("GRANT SHOW VIEW, TRIGGER, EVENT ON `ro`.* TO 'tidemark_cap'@'127.0.0.1'");
  await rep.query('SET GLOBAL log_bin_trust_function_creators = ON');
  for (const s of SETUP) await src.query(s);
  for (let i = 1; i <= 20; i++) await src.query('INSERT INTO ro.t VALUES (?, ?)', [i, i]);
  run = startRun(t.config);
  before = await settled();
  expect(Object.keys(before.objects).sort()).toEqual([
    'event ev',
    'function dbl',
    'procedure p_gone',
    'trigger log_a',
    'trigger log_b',
    'view v_t',
  ]);
  beforeTime = await utcNow();
  // The window.
  await src.query('CREATE VIEW ro.v_new AS SELECT COUNT(*) AS n FROM ro.t');
  await src.query('INSERT INTO ro.t VALUES (21, 21), (22, 22)');
  await src.query('CREATE OR REPLACE VIEW ro.v_t AS SELECT id, v + 1 AS v1 FROM ro.t');
  await src.query('DROP PROCEDURE ro.p_gone');
  await src.query('DROP TRIGGER ro.log_a'); // re-created by the rewind: still first in order
  await src.query('UPDATE ro.t SET v = v + 100 WHERE id <= 5');
  await src.query(
    "CREATE TRIGGER ro.t_ai AFTER INSERT ON ro.t FOR EACH ROW INSERT INTO ro.log (msg) VALUES (CONCAT('ins ', NEW.id))",
  );
  await src.query('INSERT INTO ro.t VALUES (23, 23)'); // fires t_ai on the source: its log row is in the journal
  middle = await settled();
  await src.query("ALTER EVENT ro.ev ON SCHEDULE EVERY 2 DAY STARTS '2031-01-01 00:00:00' COMMENT 'altered'");
  await src.query('DELETE FROM ro.t WHERE id IN (6, 7)');
  head = await settled();
  expect(head.objects['view v_new']).toBeDefined();
  expect(head.objects['trigger t_ai']).toBeDefined();
  expect(head.objects['procedure p_gone']).toBeUndefined();
  expect(head.objects['event ev']).toContain('altered');
}, 180_000);

afterAll(async () => {
  await stopTopology(run, [src, rep], NAME);
});

it('rewinds before the window (objects as they were) and forward again (objects as at the head)', async () => {
  const dry = await ok('rewind', '--target', 'replica', '--to-time', beforeTime, '--dry-run');
  expect(dry).toMatch(/objects: 7 .*put back/); // the window's 6 and log_b (log_a's order)
  expect(dry).toContain('drop procedure `ro`.`p_gone` if it exists');
  expect(await replicaState(), 'a dry run changes nothing').toEqual(head);
  // A row changed behind tidemark's back: the guard fails, the rows stay, and the objects (changed first) are put
  // back as they were.
  await rep.query('UPDATE ro.t SET v = v + 1 WHERE id = 22');
  const bad = await runCli(['rewind', '-c', t.config, '--target', 'replica', '--to-time', beforeTime], {
    timeoutMs: 90_000,
  });
  expect(bad.code, bad.stdout).not.toBe(0);
  expect(bad.stderr).toMatch(/ro.*t.*id=22/);
  expect((await replicaState()).objects).toEqual(head.objects);
  await rep.query('UPDATE ro.t SET v = v - 1 WHERE id = 22');
  expect(await replicaState()).toEqual(head);
  expect(await hold()).toBeNull();
  const out = await ok('rewind', '--target', 'replica', '--to-time', beforeTime);
  expect(out).toMatch(/object statement\(s\)/);
  expect(await replicaState()).toEqual(before);
  expect(await hold()).toMatch(/rewound to seq/);
  await ok('forward', '--target', 'replica', '--to-head');
  expect(await replicaState()).toEqual(head);
  expect(await hold()).toBeNull();
}, 120_000);

it('rewinds by steps across the ALTER EVENT and a row change; a --sql script does the same', async () => {
  await ok('rewind', '--target', 'replica', '--steps', '2');
  expect(await replicaState()).toEqual(middle);
  await ok('forward', '--target', 'replica', '--to-head');
  expect(await replicaState()).toEqual(head);
  const file = join(t.dir, 'rewind-objects.sql');
  await ok('rewind', '--target', 'replica', '--to-time', beforeTime, '--sql', file);
  expect(await replicaState(), 'writing the script changes nothing').toEqual(head);
  const script = readFileSync(file, 'utf8');
  expect(script).toMatch(/COMMIT;\n-- objects .*\n(.*\n)*DELIMITER \$\$\n/);
  const client = spawnSync('mariadb', ['--comments', '-h127.0.0.1', `-P${REP_PORT}`, '-uroot', `-p${ROOT_PASSWORD}`], {
    input: script,
    encoding: 'utf8',
  });
  expect(client.status, client.stderr).toBe(0);
  expect(await replicaState()).toEqual(before);
  await ok('forward', '--target', 'replica', '--to-head');
  expect(await replicaState()).toEqual(head);
}, 120_000);

it('the replayed trigger stays inert under apply; a window with table DDL is still refused', async () => {
  // The source's t_ai fires and writes a log row; the replica's (created by forward) must not add one.
  await src.query('INSERT INTO ro.t VALUES (24, 24)');
  const now = await settled();
  expect(now.sums).not.toEqual(head.sums);
  const point = await utcNow();
  await src.query('ALTER TABLE ro.log ADD COLUMN z INT NULL');
  await src.query('CREATE VIEW ro.v_late AS SELECT 1 AS one');
  await src.query('INSERT INTO ro.t VALUES (25, 25)');
  const after = await settled();
  const r = await runCli(['rewind', '-c', t.config, '--target', 'replica', '--to-time', point], { timeoutMs: 90_000 });
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/crosses a DDL statement: "ALTER TABLE ro\.log ADD COLUMN z INT NULL"/);
  expect(await replicaState()).toEqual(after);
  expect(await hold()).toBeNull();
}, 120_000);

it('a rewind of the source runs the objects as the source ran them, before its rows; the replica follows', async () => {
  const atPoint = await settled();
  const point = await utcNow();
  await src.query('CREATE OR REPLACE VIEW ro.v_t AS SELECT id FROM ro.t');
  // Live on the source: had it still been there, it would have changed the rewind's own UPDATEs.
  await src.query('CREATE TRIGGER ro.t_bu BEFORE UPDATE ON ro.t FOR EACH ROW SET NEW.v = NEW.v * 10');
  await src.query('UPDATE ro.t SET v = v + 1 WHERE id IN (1, 2)');
  await settled();
  await ok('rewind', '--target', NAME, '--to-time', point, '--yes');
  expect({
    sums: await schemaChecksums(src, 'ro'),
    objects: Object.fromEntries(await objectDefinitions(src, 'ro', 'source')),
  }).toEqual(atPoint);
  expect(await settled()).toEqual(atPoint); // capture recorded the rewind: the replica applied it
}, 120_000);

it('an undo is not refused by a later trigger or view on the changed table (they hold no rows)', async () => {
  await src.query('UPDATE ro.t SET v = 0 WHERE id = 10');
  const [[g]] = (await src.query('SELECT @@last_gtid AS g')) as unknown as [Rows];
  await src.query('CREATE TRIGGER ro.t_bd BEFORE DELETE ON ro.t FOR EACH ROW SET @deleted = OLD.id');
  await src.query('CREATE VIEW ro.v_ten AS SELECT v FROM ro.t WHERE id = 10');
  const now = await settled();
  await ok('undo', '--target', 'replica', '--tx', String(g?.['g']));
  const [[row]] = (await rep.query('SELECT v FROM ro.t WHERE id = 10')) as unknown as [Rows];
  expect(Number(row?.['v'])).toBe(10);
  expect((await replicaState()).objects).toEqual(now.objects); // the objects stay as they are
  await ok('forward', '--target', 'replica', '--to-head'); // releases the hold
  expect(await hold()).toBeNull();
}, 120_000);
