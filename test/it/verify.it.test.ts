/**
 * verifyTables against two real MariaDB servers: equal tables compare equal, and every kind of difference is
 * found and listed by primary key (missing, extra, changed), exactly (NULL vs '' vs 'NULL', FLOAT digits,
 * DECIMAL/binary/date keys), with paging through large excesses, tables without a key, schema differences and
 * the re-check hook.
 */
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type VerifyOptions, type VerifyResult, verifyTables } from '../../apply/mysql/verify.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';

const SRC = { name: 'app-vf-src', port: 3425 };
const REP = { name: 'app-vf-rep', port: 3426 };
const ep = (port: number) => ({ host: '127.0.0.1', port, user: 'root', password: 'tidemark-root' });

let src: mysql.Connection;
let rep: mysql.Connection;

beforeAll(async () => {
  startInstance(SRC.name, SRC.port);
  startInstance(REP.name, REP.port);
  src = await admin(SRC.port);
  rep = await admin(REP.port);
});

afterAll(async () => {
  await src?.end();
  await rep?.end();
  stopInstance(SRC.name);
  stopInstance(REP.name);
});

beforeEach(async () => {
  await resetSchemas(src);
  await resetSchemas(rep);
  await both('CREATE DATABASE db');
});

async function both(sql: string): Promise<void> {
  await src.query(sql);
  await rep.query(sql);
}

function verify(tables: string[], over: Partial<VerifyOptions> = {}): Promise<VerifyResult> {
  return verifyTables({
    source: ep(SRC.port),
    replica: ep(REP.port),
    tables: tables.map((t) => ({ schema: 'db', table: t })),
    ...over,
  });
}

const MAIN = `CREATE TABLE db.main (
  k1 INT NOT NULL, k2 VARCHAR(10) NOT NULL, s VARCHAR(20) NULL, n DECIMAL(20,4), f FLOAT, d DATETIME(3), b VARBINARY(8),
  PRIMARY KEY (k1, k2))`;
const FILL =
  "INSERT INTO db.main SELECT seq DIV 2, IF(seq % 2, 'odd', 'even'), CONCAT('s', seq), seq / 7, seq * 1.5, " +
  "'2024-01-01 00:00:00' + INTERVAL seq SECOND, UNHEX(HEX(seq)) FROM db.seq_0_to_4999";

describe('tables with a primary key', () => {
  beforeEach(async () => {
    await both(MAIN);
    await both(FILL);
  });

  it('reports equal tables as equal, chunk by chunk', async () => {
    const v = await verify(['main'], { chunkRows: 300 });
    expect(v.equal).toBe(true);
    expect(v.tables).toEqual([
      {
        schema: 'db',
        table: 'main',
        chunks: 17,
        rows: 5000,
        replicaRows: 5000,
        equal: true,
        differences: [],
        differenceCount: 0,
      },
    ]);
  });

  it('lists missing, extra and changed keys', async () => {
    await rep.query("DELETE FROM db.main WHERE (k1, k2) IN ((0,'even'), (1200,'odd'), (2499,'odd'))");
    await rep.query("INSERT INTO db.main (k1, k2) VALUES (700, 'zzz'), (99999, 'x')");
    await rep.query("UPDATE db.main SET s = NULL WHERE k1 = 10 AND k2 = 'even'");
    await rep.query("UPDATE db.main SET b = X'00' WHERE k1 = 2000 AND k2 = 'odd'");
    const v = await verify(['main'], { chunkRows: 250 });
    expect(v.equal).toBe(false);
    const t = v.tables[0]!;
    expect(t.rows).toBe(5000);
    expect(t.replicaRows).toBe(4999);
    expect(t.differenceCount).toBe(7);
    const found = t.differences.map((d) => `${d.kind} ${d.key}`).sort();
    expect(found).toEqual(
      [
        "missing k1=0, k2='even'",
        "missing k1=1200, k2='odd'",
        "missing k1=2499, k2='odd'",
        "extra k1=700, k2='zzz'",
        "extra k1=99999, k2='x'",
        "changed k1=10, k2='even'",
        "changed k1=2000, k2='odd'",
      ].sort(),
    );
    const d = t.differences.find((x) => x.key === "k1=99999, k2='x'")!;
    expect(d.pk).toEqual([99999n, 'x']);
  });

  it('pages through a large excess on the replica and caps the list', async () => {
    await rep.query("INSERT INTO db.main (k1, k2) SELECT 10000 + seq, 'x' FROM db.seq_1_to_2500");
    const v = await verify(['main'], { chunkRows: 400, maxDifferences: 20 });
    const t = v.tables[0]!;
    expect(t.equal).toBe(false);
    expect(t.differenceCount).toBe(2500);
    expect(t.differences).toHaveLength(20);
    expect(t.differences.every((x) => x.kind === 'extra')).toBe(true);
  });

  it('finds a table missing or shaped differently on the replica', async () => {
    await src.query('CREATE TABLE db.only_src (id INT PRIMARY KEY)');
    await rep.query('ALTER TABLE db.main ADD COLUMN extra INT');
    const v = await verify(['main', 'only_src']);
    expect(v.equal).toBe(false);
    expect(v.tables.map((t) => t.columnsDiffer)).toEqual([
      'column extra only on the replica',
      'table not found on the replica',
    ]);
  });

  it('re-checks differing chunks after the delay hook', async () => {
    await rep.query("DELETE FROM db.main WHERE k1 = 5 AND k2 = 'odd'");
    const calls: number[] = [];
    const v = await verify(['main'], {
      recheck: {
        attempts: 3,
        delay: async (attempt) => {
          calls.push(attempt);
          // The replica catches up after the second wait.
          if (attempt === 2) {
            const [rows] = await src.query<mysql.RowDataPacket[]>("SELECT * FROM db.main WHERE k1 = 5 AND k2 = 'odd'");
            const r = rows[0]!;
            await rep.query('INSERT INTO db.main VALUES (?,?,?,?,?,?,?)', [
              r['k1'],
              r['k2'],
              r['s'],
              r['n'],
              r['f'],
              r['d'],
              r['b'],
            ]);
          }
        },
      },
    });
    expect(calls).toEqual([1, 2]);
    expect(v.equal).toBe(true);
    const stuck: number[] = [];
    await rep.query("DELETE FROM db.main WHERE k1 = 6 AND k2 = 'odd'");
    const w = await verify(['main'], { recheck: { attempts: 2, delay: async (a) => void stuck.push(a) } });
    expect(stuck).toEqual([1, 2]);
    expect(w.tables[0]!.differences).toEqual([{ pk: [6n, 'odd'], key: "k1=6, k2='odd'", kind: 'missing' }]);
  });
});

describe('exactness', () => {
  it("tells NULL, '' and 'NULL' apart, and separators inside values", async () => {
    await both('CREATE TABLE db.t (id INT PRIMARY KEY, a VARCHAR(10), b VARCHAR(10))');
    await src.query(
      "INSERT INTO db.t VALUES (1, NULL, 'x'), (2, '', 'x'), (3, 'NULL', 'x'), (4, 'a#', 'b'), (5, 'N', NULL)",
    );
    await rep.query(
      "INSERT INTO db.t VALUES (1, '', 'x'), (2, NULL, 'x'), (3, NULL, 'x'), (4, 'a', '#b'), (5, NULL, 'N')",
    );
    const v = await verify(['t']);
    expect(v.tables[0]!.differences.map((d) => [d.key, d.kind])).toEqual([
      ['id=1', 'changed'],
      ['id=2', 'changed'],
      ['id=3', 'changed'],
      ['id=4', 'changed'],
      ['id=5', 'changed'],
    ]);
    await rep.query('DELETE FROM db.t');
    await rep.query(
      "INSERT INTO db.t VALUES (1, NULL, 'x'), (2, '', 'x'), (3, 'NULL', 'x'), (4, 'a#', 'b'), (5, 'N', NULL)",
    );
    expect((await verify(['t'])).equal).toBe(true);
  });

  it('sees FLOAT digits beyond the 6 that CAST(float AS CHAR) prints', async () => {
    await both('CREATE TABLE db.fl (id INT PRIMARY KEY, f FLOAT)');
    await src.query('INSERT INTO db.fl VALUES (1, 3.4028230e38), (2, 1.0000001)');
    await rep.query('INSERT INTO db.fl VALUES (1, 3.4028234e38), (2, 1.0000002)');
    const v = await verify(['fl']);
    expect(v.tables[0]!.differences.map((d) => d.key)).toEqual(['id=1', 'id=2']);
  });

  it('walks DECIMAL, binary and DATETIME keys exactly', async () => {
    await both('CREATE TABLE db.dk (d DECIMAL(30,0), b VARBINARY(4), t DATETIME(6), v INT, PRIMARY KEY (d, b, t))');
    const rows =
      "(123456789012345678901234567890, X'00', '2024-01-01 00:00:00.000001', 1)," +
      "(123456789012345678901234567891, X'00', '2024-01-01 00:00:00.000001', 2)," +
      "(123456789012345678901234567891, X'FF', '2024-01-01 00:00:00.000001', 3)," +
      "(123456789012345678901234567891, X'FF', '2024-01-01 00:00:00.000002', 4)," +
      "(123456789012345678901234567892, X'0000', '1000-01-01 00:00:00.000000', 5)";
    await both(`INSERT INTO db.dk VALUES ${rows}`);
    const eq = await verify(['dk'], { chunkRows: 1 });
    expect(eq.tables[0]).toMatchObject({ equal: true, chunks: 6, rows: 5 });
    await rep.query("UPDATE db.dk SET v = 40 WHERE t = '2024-01-01 00:00:00.000002'");
    const v = await verify(['dk'], { chunkRows: 1 });
    expect(v.tables[0]!.differences).toEqual([
      {
        kind: 'changed',
        key: "d=123456789012345678901234567891, b=X'FF', t='2024-01-01 00:00:00.000002'",
        pk: ['123456789012345678901234567891', new Uint8Array([0xff]), '2024-01-01 00:00:00.000002'],
      },
    ]);
  });
});

describe('tables without a primary key', () => {
  beforeEach(async () => {
    await both('CREATE TABLE db.np (a INT, b VARCHAR(10))');
  });

  it('compares the whole table as a multiset', async () => {
    await both("INSERT INTO db.np VALUES (1,'x'), (1,'x'), (2,NULL)");
    let v = await verify(['np']);
    expect(v.tables[0]).toMatchObject({ equal: true, noPrimaryKey: true, chunks: 1, rows: 3 });
    // Same count, duplicates swapped for other duplicates: XOR would cancel both pairs, SUM does not.
    await src.query("INSERT INTO db.np VALUES (7,'q'), (7,'q')");
    await rep.query("INSERT INTO db.np VALUES (8,'r'), (8,'r')");
    v = await verify(['np']);
    expect(v.tables[0]).toMatchObject({ equal: false, rows: 5, replicaRows: 5, differences: [] });
    await rep.query('DELETE FROM db.np WHERE a = 8');
    await rep.query("INSERT INTO db.np VALUES (7,'q')");
    v = await verify(['np']);
    expect(v.tables[0]).toMatchObject({ equal: false, rows: 5, replicaRows: 4, differenceCount: 1 });
  });
});
