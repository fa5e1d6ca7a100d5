/**
 * Exactly-once apply against real MariaDB: the apply connection is killed before or after every single query of
 * a run (mid-group, around COMMIT, around DDL), the applier is re-opened and the journal re-read from the stored
 * LSN; the replica must end up identical to a reference copy (verify) with nothing lost or doubled. Also:
 * re-delivery dedup, the pending-DDL protocol, retriable lock waits, atomic visibility of source transactions
 * and a 200k-row transaction applied with bounded memory.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TidemarkError } from '../../core/errors.ts';
import type { Column, Value } from '../../record/record.ts';
import { type ApplierFaults, type ApplierTarget, type JournalItem, MysqlApplier } from '../../apply/mysql/applier.ts';
import type { AppliedState } from '../../apply/mysql/position-table.ts';
import { openSession } from '../../mysql/session.ts';
import { applyUntilDone, JournalBuilder, readRows, type TableDef } from '../fixtures/apply-kit.ts';
import { verifyTables } from '../../apply/mysql/verify.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';

const REF = { name: 'app-eo-ref', port: 3423 };
const REP = { name: 'app-eo-rep', port: 3424 };
const ep = (port: number, user = 'tidemark_apply', password = 'apply-pw') => ({
  host: '127.0.0.1',
  port,
  user,
  password,
});

function target(batch: Partial<ApplierTarget['batch']> = {}, port = REP.port): ApplierTarget {
  return {
    name: 'rep',
    ...ep(port),
    batch: { max_transactions: 500, max_rows: 20_000, max_wait_ms: 5, ...batch },
    no_primary_key: 'full-row',
  };
}

const col = (name: string, type: string): Column => ({ name, type });
const A: TableDef = { schema: 'db', table: 'a', pk: ['id'], columns: [col('id', 'int'), col('v', 'varchar')] };
const A2: TableDef = { ...A, columns: [...A.columns, col('extra', 'int')] };
const B: TableDef = {
  schema: 'db',
  table: 'b',
  pk: ['k1', 'k2'],
  columns: [col('k1', 'int'), col('k2', 'varchar'), col('n', 'bigint')],
};

let rep: mysql.Connection;
let repRead: mysql.Connection;

beforeAll(async () => {
  startInstance(REF.name, REF.port);
  startInstance(REP.name, REP.port);
  rep = await admin(REP.port);
  repRead = await openSession(ep(REP.port, 'root', 'tidemark-root'), { apply: false });
});

afterAll(async () => {
  await rep?.end();
  repRead?.destroy();
  stopInstance(REF.name);
  stopInstance(REP.name);
});

beforeEach(async () => {
  await resetSchemas(rep);
});

/** A journal mixing DDL, multi-table transactions, updates (incl. key changes) and deletes. */
function mixedJournal(): JournalBuilder {
  const j = new JournalBuilder();
  j.tx((t) => t.ddl('', 'CREATE DATABASE db'));
  j.tx((t) => t.ddl('db', 'CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20))'));
  j.tx((t) => t.ddl('db', 'CREATE TABLE b (k1 INT, k2 VARCHAR(5), n BIGINT, PRIMARY KEY (k1, k2))'));
  for (let i = 0; i < 12; i++) {
    const id = BigInt(i * 3);
    j.tx((t) =>
      t
        .insert(A, [
          [id + 1n, 'v'],
          [id + 2n, 'v'],
          [id + 3n, 'v'],
        ])
        .insert(B, [[BigInt(i), 'x', BigInt(i)]]),
    );
    if (i % 3 === 0) {
      j.tx((t) =>
        t
          .update(A, [
            [
              [id + 1n, 'v'],
              [id + 1n, 'w'],
            ],
            [
              [id + 2n, 'v'],
              [id + 1000n, 'moved'],
            ],
          ])
          .delete(B, [[BigInt(i), 'x', BigInt(i)]]),
      );
    }
    if (i === 5) j.tx(() => {}); // an empty transaction
  }
  j.tx((t) => t.ddl('db', 'ALTER TABLE a ADD COLUMN extra INT NULL'));
  j.tx((t) => t.insert(A2, [[5000n, 'z', 5n]]).delete(A2, [[3n, 'v', null]]));
  j.tx((t) =>
    t
      .ddl('db', 'CREATE TABLE c (id INT PRIMARY KEY)')
      .insert({ ...A, table: 'c', columns: [col('id', 'int')] }, [[1n]]),
  );
  j.tx((t) => t.ddl('db', 'DROP TABLE c'));
  return j;
}

async function verifyEqual(): Promise<void> {
  const v = await verifyTables({
    source: ep(REF.port),
    replica: ep(REP.port),
    tables: [
      { schema: 'db', table: 'a' },
      { schema: 'db', table: 'b' },
    ],
  });
  expect(v.tables.map((t) => [t.table, t.equal, t.rows])).toEqual([
    ['a', true, 36],
    ['b', true, 8],
  ]);
}

/** Opens and runs until done, re-opening after retriable errors; returns how many attempts failed. */

describe('exactly once', () => {
  beforeAll(async () => {
    // The reference: the same journal applied once, cleanly, to another server.
    const ref = await admin(REF.port);
    await resetSchemas(ref);
    await ref.end();
    const a = new MysqlApplier({ target: target({}, REF.port), source: 'src' });
    await applyUntilDone(a, mixedJournal());
    await a.close();
  });

  it('survives a killed connection before or after any query of a run', async () => {
    const j = mixedJournal();
    // A long max wait makes grouping depend on the limits only, so every run sends the same queries.
    const batch = { max_transactions: 3, max_rows: 5, max_wait_ms: 10_000 };
    // Count the queries of one clean run.
    let total = 0;
    // loadMinRows 3: the 3-row inserts into `a` go as LOAD DATA (apply/mysql/load-data.ts), the 1-row ones as INSERT.
    const counter = new MysqlApplier({
      target: target(batch),
      source: 'src',
      maxStatementRows: 2,
      loadMinRows: 3,
      faults: { beforeQuery: () => void total++ },
    });
    await applyUntilDone(counter, j);
    await counter.close();
    // Enough queries to kill the connection at many different points (batches are pipelined, so a run sends
    // fewer queries than it has statements).
    expect(total).toBeGreaterThan(40);
    await verifyEqual();

    const killer = await admin(REP.port);
    let crashes = 0;
    let kills = 0;
    let iterations = 0;
    for (const when of ['before', 'after'] as const) {
      for (let k = 1; k <= total; k += when === 'before' ? 1 : 2) {
        await resetSchemas(rep);
        let a: MysqlApplier | null = null;
        let fired = false;
        const kill = async (q: { n: number }) => {
          if (fired || q.n !== k || !a?.threadId) return;
          fired = true;
          kills++;
          await killer.query(`KILL ${a.threadId}`);
        };
        const faults: ApplierFaults = when === 'before' ? { beforeQuery: kill } : { afterQuery: kill };
        a = new MysqlApplier({ target: target(batch), source: 'src', maxStatementRows: 2, loadMinRows: 3, faults });
        iterations++;
        const failures = await applyUntilDone(a, j);
        await a.close();
        if (fired) expect(failures, `kill ${when} query ${k}`).toBeGreaterThanOrEqual(when === 'before' ? 1 : 0);
        crashes += failures;
        const last = j.items[j.items.length - 1]!;
        expect(a.state, `kill ${when} query ${k}`).toMatchObject({ seq: last.entry.seq, lsn: last.lsn });
        await verifyEqual();
      }
    }
    await killer.end();
    // Grouping depends on the limits only, so every run sends the same queries and every kill happens.
    expect(kills).toBe(iterations);
    expect(crashes).toBeGreaterThanOrEqual(total);
  });

  it('skips transactions delivered again', async () => {
    const j = mixedJournal();
    const a = new MysqlApplier({ target: target(), source: 'src' });
    await applyUntilDone(a, j);
    const end = a.state!;
    // The whole journal again, then from the middle: nothing is applied twice, nothing fails.
    let applied = 0;
    await a.run(j.read(1n), { onApplied: () => void applied++ });
    await a.run(j.read(20n), { onApplied: () => void applied++ });
    expect(applied).toBe(0);
    expect(a.state).toEqual(end);
    expect(await a.open()).toEqual(end);
    await a.close();
    await verifyEqual();
  });
});

describe('pending DDL', () => {
  const T: TableDef = { schema: 'db', table: 't', pk: ['id'], columns: [col('id', 'int')] };

  function journal(): JournalBuilder {
    const j = new JournalBuilder();
    j.tx((t) => t.ddl('', 'CREATE DATABASE db'));
    j.tx((t) => t.ddl('db', 'CREATE TABLE t (id INT PRIMARY KEY)'));
    j.tx((t) => t.insert(T, [[1n]]));
    return j;
  }

  async function pendingSeq(): Promise<string | null> {
    const [rows] = await repRead.query<mysql.RowDataPacket[]>(
      "SELECT CAST(ddl_pending_seq AS CHAR) AS p FROM tidemark.applied_position WHERE source = 'src'",
    );
    return (rows[0]?.['p'] as string | null) ?? null;
  }

  for (const at of ['ddl', 'ddl-done'] as const) {
    it(`a crash ${at === 'ddl' ? 'before the DDL ran' : 'after the DDL ran, before it was recorded'} re-runs it safely`, async () => {
      const j = journal();
      const ddlSeq = j.items[2]!.entry.seq;
      let fired = false;
      const killer = await admin(REP.port);
      const a: MysqlApplier = new MysqlApplier({
        target: target(),
        source: 'src',
        faults: {
          beforeQuery: async (q) => {
            if (fired || q.kind !== at || !a.threadId) return;
            const [rows] = await repRead.query<mysql.RowDataPacket[]>("SHOW TABLES FROM db LIKE 't'").catch(() => [[]]);
            if ((rows as unknown[]).length === 0 && at === 'ddl-done') return;
            if (at === 'ddl' && (await pendingSeq()) !== String(ddlSeq)) return;
            fired = true;
            await killer.query(`KILL ${a.threadId}`);
          },
        },
      });
      const st = await a.open();
      const err = (await a.run(j.read(st ? st.lsn + 1n : 1n)).catch((e: unknown) => e)) as TidemarkError;
      expect(fired).toBe(true);
      expect(err.retriable).toBe(true);
      expect(await pendingSeq()).toBe(String(ddlSeq));
      // Restart: the pending DDL runs again ("table exists" when it had run) and apply carries on.
      expect(await applyUntilDone(a, j)).toBe(0);
      await a.close();
      await killer.end();
      expect(await pendingSeq()).toBeNull();
      expect(await readRows(repRead, T, 'id')).toEqual([[1n]]);
    });
  }

  it('"already exists" is an error when the DDL was not pending', async () => {
    const j = journal();
    await rep.query('CREATE DATABASE db');
    await rep.query('CREATE TABLE db.t (id INT PRIMARY KEY)');
    const a = new MysqlApplier({ target: target(), source: 'src' });
    await a.open();
    // CREATE DATABASE fails first: the replica already has it and nothing was pending.
    const err = (await a.run(j.read()).catch((e: unknown) => e)) as TidemarkError;
    expect(err.retriable).toBe(false);
    expect(err.message).toMatch(/DDL at seq 1: .*database exists/i);
    // The refused DDL is not left pending: a restart reports the same error instead of skipping it.
    expect(await pendingSeq()).toBeNull();
    await a.open();
    const again = (await a.run(j.read()).catch((e: unknown) => e)) as TidemarkError;
    await a.close();
    expect(again.message).toBe(err.message);
  });
});

describe('transactions and batching', () => {
  const T1: TableDef = { schema: 'db', table: 't1', pk: ['id'], columns: [col('id', 'int'), col('v', 'varchar')] };
  const T2: TableDef = { ...T1, table: 't2' };

  beforeEach(async () => {
    await rep.query('CREATE DATABASE db');
    await rep.query('CREATE TABLE db.t1 (id INT PRIMARY KEY, v VARCHAR(500))');
    await rep.query('CREATE TABLE db.t2 (id INT PRIMARY KEY, v VARCHAR(200))');
  });

  it('a reader never sees part of a source transaction; groups respect max_transactions', async () => {
    const j = new JournalBuilder();
    for (let i = 0; i < 60; i++) {
      const rows: Value[][] = Array.from({ length: 40 }, (_, r) => [BigInt(i * 40 + r), 'x'.repeat(100)]);
      j.tx((t) => t.insert(T1, rows).insert(T2, rows));
    }
    const a = new MysqlApplier({
      target: target({ max_transactions: 7, max_wait_ms: 1000 }),
      source: 'src',
      maxStatementRows: 9,
    });
    await a.open();
    const states: AppliedState[] = [];
    let reading = true;
    let reads = 0;
    const reader = (async () => {
      while (reading) {
        const [rows] = await repRead.query<mysql.RowDataPacket[]>(
          'SELECT (SELECT COUNT(*) FROM db.t1) AS a, (SELECT COUNT(*) FROM db.t2) AS b',
        );
        const a1 = Number(rows[0]!['a']);
        expect(a1).toBe(Number(rows[0]!['b']));
        expect(a1 % 40).toBe(0);
        reads++;
      }
    })();
    await a.run(j.read(), { onApplied: (s) => void states.push(s) });
    reading = false;
    await reader;
    await a.close();
    expect(reads).toBeGreaterThan(0);
    expect(states).toHaveLength(Math.ceil(60 / 7));
    const commits = new Set(j.items.filter((x) => x.entry.kind === 'commit').map((x) => x.lsn));
    for (const s of states) expect(commits.has(s.lsn)).toBe(true);
  });

  it('commits after max_wait_ms when the journal is slow', async () => {
    const j = new JournalBuilder();
    for (let i = 0; i < 4; i++) j.tx((t) => t.insert(T1, [[BigInt(i), 'v']]));
    async function* slow(): AsyncGenerator<JournalItem> {
      for (const it of j.items) {
        if (it.entry.kind !== 'commit') await new Promise((r) => setTimeout(r, 60));
        yield it;
      }
    }
    const a = new MysqlApplier({ target: target({ max_wait_ms: 20 }), source: 'src' });
    await a.open();
    const states: AppliedState[] = [];
    await a.run(slow(), { onApplied: (s) => void states.push(s) });
    await a.close();
    expect(states).toHaveLength(4);
  });

  it('stops on abort: commits at a transaction boundary, rolls back a cut transaction', async () => {
    const j = new JournalBuilder();
    for (let i = 0; i < 3; i++) j.tx((t) => t.insert(T1, [[BigInt(i), 'v']]));
    j.tx((t) => t.insert(T1, [[100n, 'cut']]));
    /** Delivers `items`, then waits for more like a reader following the journal head. */
    async function* following(items: JournalItem[]): AsyncGenerator<JournalItem> {
      yield* items;
      await new Promise(() => {});
    }
    const a = new MysqlApplier({ target: target({ max_wait_ms: 10_000 }), source: 'src' });
    await a.open();
    let ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await a.run(following(j.items.slice(0, 6)), { signal: ac.signal });
    expect(a.state?.lsn).toBe(6n);
    expect((await readRows(repRead, T1, 'id')).map((r) => r[0])).toEqual([0n, 1n, 2n]);
    // Only the rows entry of the 4th transaction arrives before the stop: it must not stay.
    ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await a.run(following(j.items.slice(6, 7)), { signal: ac.signal });
    expect(a.state?.lsn).toBe(6n);
    expect(await a.open()).toEqual(a.state);
    await a.close();
    expect((await readRows(repRead, T1, 'id')).map((r) => r[0])).toEqual([0n, 1n, 2n]);
  });

  it('a lock wait timeout is retriable and nothing is half-applied', async () => {
    await rep.query("INSERT INTO db.t1 VALUES (1, 'a')");
    await rep.query('SET GLOBAL innodb_lock_wait_timeout = 1');
    const locker = await admin(REP.port);
    try {
      const j = new JournalBuilder();
      j.tx((t) =>
        t.insert(T2, [[1n, 'b']]).update(T1, [
          [
            [1n, 'a'],
            [1n, 'c'],
          ],
        ]),
      );
      const a = new MysqlApplier({ target: target(), source: 'src' });
      await a.open();
      await locker.query('START TRANSACTION');
      await locker.query('SELECT * FROM db.t1 WHERE id = 1 FOR UPDATE');
      const err = (await a.run(j.read()).catch((e: unknown) => e)) as TidemarkError;
      expect(err.retriable).toBe(true);
      expect(err.context['errno']).toBe(1205);
      expect(a.threadId).toBeNull();
      await locker.query('ROLLBACK');
      expect(await readRows(repRead, T2, 'id')).toEqual([]);
      // The killed session's locks go when the server notices the disconnect; allow one more lock wait.
      expect(await applyUntilDone(a, j)).toBeLessThanOrEqual(1);
      await a.close();
      expect(await readRows(repRead, T1, 'id')).toEqual([[1n, 'c']]);
      expect(await readRows(repRead, T2, 'id')).toEqual([[1n, 'b']]);
    } finally {
      await rep.query('SET GLOBAL innodb_lock_wait_timeout = 50');
      await locker.end();
    }
  });

  it('applies a 200k-row transaction with bounded memory', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const ROWS = 200_000;
    const PER_ENTRY = 1000;
    const pad = 'p'.repeat(380);
    let peak = 0;
    gc();
    const base = process.memoryUsage().heapUsed;
    async function* big(): AsyncGenerator<JournalItem> {
      let seq = 1n;
      let lsn = 1n;
      for (let e = 0; e < ROWS / PER_ENTRY; e++) {
        const rows = Array.from({ length: PER_ENTRY }, (_, i) => ({
          before: null,
          after: [BigInt(e * PER_ENTRY + i), `${pad}${e}-${i}`] as Value[],
        }));
        yield {
          lsn: lsn++,
          entry: {
            kind: 'rows',
            source: 'src',
            seq,
            txId: 'big',
            schema: 'db',
            table: 't1',
            op: 'insert',
            columns: T1.columns,
            pk: ['id'],
            rows,
          },
        };
        seq += BigInt(PER_ENTRY);
        if (e % 20 === 0) {
          gc();
          peak = Math.max(peak, process.memoryUsage().heapUsed - base);
        }
      }
      yield {
        lsn,
        entry: {
          kind: 'commit',
          source: 'src',
          seq,
          txId: 'big',
          position: { kind: 'mysql', binlog: { file: 'mysql-bin.000001', offset: 4n } },
          commitTimeUs: 1n,
          captureTimeUs: 1n,
          rowCount: BigInt(ROWS),
          phase: 'stream',
        },
      };
    }
    const a = new MysqlApplier({ target: target(), source: 'src' });
    await a.open();
    await a.run(big());
    await a.close();
    const [rows] = await repRead.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM db.t1');
    expect(Number(rows[0]!['n'])).toBe(ROWS);
    expect(a.state?.seq).toBe(BigInt(ROWS) + 1n);
    // The transaction's rows are ~80 MB of SQL; buffering them would show here.
    expect(peak).toBeLessThan(32 * 1024 * 1024);
  });
});
