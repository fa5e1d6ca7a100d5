/**
 * End to end through the real CLI: DDL in the middle of the stream while two writers keep changing rows.
 * ADD COLUMN (the writer then fills it), DROP COLUMN, RENAME TABLE (the writer follows the new name), TRUNCATE,
 * CREATE TABLE + inserts and DROP TABLE, one after the other. Afterwards the replica must have the same tables,
 * the same columns and the same rows as the source.
 */
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { prng } from '../fixtures/prng.ts';
import { admin } from '../fixtures/mariadb.ts';
import {
  caughtUpWhileRunning,
  createTopology,
  exited,
  runCli,
  startRun,
  type Topology,
  stopTopology,
} from '../fixtures/topology.ts';

const NAME = 'e2eddl';
const SRC_PORT = 3485;
const REP_PORT = 3486;

let t: Topology;

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['app.*'] });
});

afterAll(async () => {
  await stopTopology(null, [], NAME);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the writers do; the DDL sequence changes it between statements. */
interface Mode {
  writeC1: boolean;
  writeC2: boolean;
  t2: string;
  writeT4: boolean;
}

/** A writer loop: one transaction per iteration until stopped; `iterations` counts finished ones. */
class Writer {
  iterations = 0;
  committed = 0;
  #stop = false;
  #error: unknown;
  #done: Promise<void>;

  constructor(port: number, body: (c: mysql.Connection, n: number) => Promise<void>) {
    this.#done = (async () => {
      const c = await admin(port);
      try {
        for (let n = 1; !this.#stop; n++) {
          await c.query('START TRANSACTION');
          try {
            await body(c, n);
            await c.query('COMMIT');
            this.committed++;
          } catch (err) {
            await c.query('ROLLBACK').catch(() => {});
            const errno = (err as { errno?: number }).errno;
            if (errno !== 1213 && errno !== 1205) throw err; // deadlock / lock wait: go on
          }
          this.iterations++;
          await sleep(2);
        }
      } finally {
        await c.end();
      }
    })().catch((err: unknown) => {
      this.#error = err ?? new Error('writer failed');
      throw err;
    });
    this.#done.catch(() => {}); // reported by pass() / stop()
  }

  /** Resolves once the writer finished `k` more iterations (so none started under an older mode is in flight). */
  async pass(k = 2): Promise<void> {
    const target = this.iterations + k;
    while (this.iterations < target) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#stop) return;
      await sleep(5);
    }
  }

  stop(): Promise<void> {
    this.#stop = true;
    return this.#done;
  }
}

async function tablesOf(c: mysql.Connection): Promise<string[]> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(
    "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'app' ORDER BY 1",
  );
  return rows.map((r) => String(r['t']));
}

async function columnsOf(c: mysql.Connection, table: string): Promise<unknown[]> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(
    'SELECT column_name, ordinal_position, column_type, is_nullable, column_default FROM information_schema.columns ' +
      "WHERE table_schema = 'app' AND table_name = ? ORDER BY ordinal_position",
    [table],
  );
  return rows.map((r) => ({ ...r }));
}

async function contents(port: number): Promise<Record<string, unknown>> {
  const c = await admin(port);
  try {
    const out: Record<string, unknown> = {};
    for (const tb of await tablesOf(c)) {
      const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT * FROM app.\`${tb}\` ORDER BY id`);
      out[tb] = { columns: await columnsOf(c, tb), rows: rows.map((r) => ({ ...r })) };
    }
    return out;
  } finally {
    await c.end();
  }
}

it('DDL mid-stream under concurrent writes leaves the replica equal to the source', async () => {
  const src = await admin(SRC_PORT);
  await src.query('CREATE DATABASE app');
  await src.query(
    'CREATE TABLE app.t1 (id INT NOT NULL PRIMARY KEY, c1 VARCHAR(20) NULL, n INT NOT NULL) ENGINE=InnoDB',
  );
  await src.query('CREATE TABLE app.t2 (id INT NOT NULL PRIMARY KEY, v VARCHAR(40) NOT NULL) ENGINE=InnoDB');
  await src.query('CREATE TABLE app.t3 (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await src.query('CREATE TABLE app.t5 (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await src.query("INSERT INTO app.t1 SELECT seq, CONCAT('c1-', seq), 0 FROM app.seq_1_to_200");
  await src.query("INSERT INTO app.t2 SELECT seq, CONCAT('v', seq) FROM app.seq_1_to_200");
  await src.query('INSERT INTO app.t3 SELECT seq, seq FROM app.seq_1_to_200');
  await src.query('INSERT INTO app.t5 SELECT seq, seq FROM app.seq_1_to_50');

  const child = startRun(t.config);
  const mode: Mode = { writeC1: true, writeC2: false, t2: 't2', writeT4: false };
  const r = prng(7);
  const writerA = new Writer(SRC_PORT, async (c, n) => {
    const id = 1000 + n;
    const cols = ['id', 'n', ...(mode.writeC1 ? ['c1'] : []), ...(mode.writeC2 ? ['c2'] : [])];
    const vals = [id, n, ...(mode.writeC1 ? [`c1-${n}`] : []), ...(mode.writeC2 ? [`c2-${n}`] : [])];
    await c.query(`INSERT INTO app.t1 (${cols.join(', ')}) VALUES (?)`, [vals]);
    const target = 1 + Math.floor(r() * (200 + n));
    await c.query(`UPDATE app.t1 SET n = n + 1${mode.writeC2 ? ", c2 = CONCAT(c2, '+')" : ''} WHERE id = ? OR id = ?`, [
      target,
      target + 1000,
    ]);
    if (n % 5 === 0) await c.query('DELETE FROM app.t1 WHERE id = ?', [1 + Math.floor(r() * 200)]);
    await c.query('INSERT INTO app.t3 (id, v) VALUES (?, ?)', [1000 + n, n]);
    await c.query('UPDATE app.t3 SET v = v + 1 WHERE id = ?', [999 + n]);
  });
  const writerB = new Writer(SRC_PORT, async (c, n) => {
    await c.query(`INSERT INTO app.\`${mode.t2}\` (id, v) VALUES (?, ?)`, [1000 + n, `${mode.t2} ${n}`]);
    await c.query(`UPDATE app.\`${mode.t2}\` SET v = LEFT(CONCAT(v, '.'), 40) WHERE id = ?`, [
      1 + Math.floor(r() * 200),
    ]);
    if (mode.writeT4) {
      await c.query('INSERT INTO app.t4 (id, label) VALUES (?, ?)', [n, `t4 row ${n} 🚀`]);
      if (n % 3 === 0) await c.query("UPDATE app.t4 SET label = 'updated' WHERE id = ?", [n - 1]);
    }
  });

  let writerB2: Writer | undefined;
  const ddl = await admin(SRC_PORT);
  try {
    await caughtUpWhileRunning(t, child, 60_000);
    await Promise.all([writerA.pass(20), writerB.pass(20)]);

    await ddl.query("ALTER TABLE app.t1 ADD COLUMN c2 VARCHAR(20) DEFAULT 'x'");
    mode.writeC2 = true;
    await writerA.pass(30);

    mode.writeC1 = false;
    await writerA.pass(2);
    await ddl.query('ALTER TABLE app.t1 DROP COLUMN c1');
    await writerA.pass(30);

    // The writer of t2 cannot write to a table that is being renamed: pause it across the RENAME only.
    const paused = writerB.stop();
    await paused;
    await ddl.query('RENAME TABLE app.t2 TO app.t2_renamed');
    mode.t2 = 't2_renamed';
    // Its ids start far above writer B's (1000 + n): on a fast run B passed 4000 iterations and 5000 + n collided.
    writerB2 = new Writer(SRC_PORT, async (c, n) => {
      await c.query(`INSERT INTO app.\`${mode.t2}\` (id, v) VALUES (?, ?)`, [1_000_000 + n, `${mode.t2} ${n}`]);
      await c.query(`UPDATE app.\`${mode.t2}\` SET v = LEFT(CONCAT(v, '!'), 40) WHERE id = ?`, [
        1 + Math.floor(r() * 200),
      ]);
      if (mode.writeT4) {
        await c.query('INSERT INTO app.t4 (id, label) VALUES (?, ?)', [n, `t4 row ${n} 🚀`]);
        if (n % 3 === 0) await c.query("UPDATE app.t4 SET label = 'updated' WHERE id = ?", [n - 1]);
      }
    });
    await Promise.all([writerA.pass(20), writerB2.pass(20)]);

    await ddl.query('TRUNCATE TABLE app.t3');
    await writerA.pass(30);

    await ddl.query(
      'CREATE TABLE app.t4 (id INT NOT NULL PRIMARY KEY, label VARCHAR(40) NOT NULL, at DATETIME(6) NULL) ENGINE=InnoDB',
    );
    await ddl.query(
      "INSERT INTO app.t4 (id, label, at) VALUES (-1, 'first', '2024-05-06 07:08:09.123456'), (-2, 'second', NULL)",
    );
    mode.writeT4 = true;
    await writerB2.pass(30);

    await ddl.query('INSERT INTO app.t5 VALUES (51, 51)');
    await ddl.query('DROP TABLE app.t5');
    await Promise.all([writerA.pass(20), writerB2.pass(20)]);

    await writerA.stop();
    await writerB2.stop();
    console.log(
      `[e2e-ddl] writer transactions: t1/t3 ${writerA.committed}, t2 ${writerB.committed}, t2_renamed/t4 ${writerB2.committed}`,
    );
    expect(writerA.committed).toBeGreaterThan(100);
    expect(writerB2.committed).toBeGreaterThan(40);

    const p = await caughtUpWhileRunning(t, child, 60_000);
    expect(p.replica).toBe(p.source);

    const source = await contents(SRC_PORT);
    const replica = await contents(REP_PORT);
    expect(Object.keys(source)).toEqual(['t1', 't2_renamed', 't3', 't4']);
    expect(Object.keys(replica)).toEqual(['t1', 't2_renamed', 't3', 't4']);
    // t1 lost c1 and gained c2 on both sides.
    expect((source['t1'] as { columns: { column_name: string }[] }).columns.map((x) => x.column_name)).toEqual([
      'id',
      'n',
      'c2',
    ]);
    expect(replica).toEqual(source);

    const v = await runCli(['verify', '-c', t.config, '--json'], { timeoutMs: 60_000 });
    expect(v.code, v.stderr + v.stdout).toBe(0);
    const doc = JSON.parse(v.stdout) as { equal: boolean; targets: { tables: { table: string; equal: boolean }[] }[] };
    expect(doc.equal).toBe(true);
    expect(doc.targets[0]?.tables.map((x) => [x.table, x.equal])).toEqual([
      ['t1', true],
      ['t2_renamed', true],
      ['t3', true],
      ['t4', true],
    ]);
  } finally {
    await writerA.stop().catch(() => {});
    await writerB.stop().catch(() => {});
    await writerB2?.stop().catch(() => {});
    await ddl.end();
    await src.end();
    child.kill('SIGTERM');
    await exited(child);
  }
});
