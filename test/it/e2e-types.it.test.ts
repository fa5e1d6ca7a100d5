/**
 * End to end through the real CLI: every column type round-trips exactly through capture → journal → apply,
 * both through the baseline (rows that exist before `tidemark run` starts) and through the binlog (inserts,
 * updates including NULL ↔ value and a primary-key change, deletes afterwards). The replica's rows are compared
 * with the source's value by value (not by checksum), then `tidemark verify` must agree. Also: a table whose
 * name holds a backtick and a space, and a table without a primary key holding duplicate rows.
 */
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { admin } from '../fixtures/mariadb.ts';
import {
  createTopology,
  exited,
  runCli,
  startRun,
  type Topology,
  caughtUpWhileRunning,
  stopTopology,
} from '../fixtures/topology.ts';

const NAME = 'e2etypes';
const SRC_PORT = 3481;
const REP_PORT = 3482;
const ODD = 'odd` name';
const ODD_Q = '`odd`` name`';

const DDL = [
  'CREATE DATABASE ty',
  `CREATE TABLE ty.alltypes (
     id INT NOT NULL PRIMARY KEY,
     ti TINYINT NULL, tiu TINYINT UNSIGNED NULL, si SMALLINT NULL, siu SMALLINT UNSIGNED NULL,
     mi MEDIUMINT NULL, miu MEDIUMINT UNSIGNED NULL, i INT NULL, iu INT UNSIGNED NULL,
     bi BIGINT NULL, biu BIGINT UNSIGNED NULL,
     d DECIMAL(65,30) NULL, d2 DECIMAL(10,2) UNSIGNED NULL,
     f FLOAT NULL, dbl DOUBLE NULL,
     dt DATE NULL, dt0 DATETIME NULL, dt6 DATETIME(6) NULL, ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6) NULL,
     y YEAR NULL,
     c CHAR(20) NULL, vc VARCHAR(255) NULL, tx TEXT NULL,
     bn BINARY(4) NULL, vb VARBINARY(16) NULL, bl BLOB NULL,
     b1 BIT(1) NULL, b64 BIT(64) NULL,
     e ENUM('a','b','c d','it''s') NULL, st SET('x','y','z') NULL,
     j JSON NULL
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  `CREATE TABLE ty.${ODD_Q} (\`k ey\` INT NOT NULL PRIMARY KEY, \`va\`\`l\` VARCHAR(40) NULL) ENGINE=InnoDB`,
  'CREATE TABLE ty.nopk (a INT NULL, b VARCHAR(20) NULL, f FLOAT NULL, dec2 DECIMAL(10,2) NULL, vb VARBINARY(8) NULL) ENGINE=InnoDB',
];

const hex = (h: string) => Buffer.from(h.replaceAll(' ', ''), 'hex');
const ALL_BYTES = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) % 256));
const TRICKY = 'It\'s a "quote", a back\\slash, a `tick`, \\\' and \\n; 🚀 👍🏽 Zoë 李雷\ttab\nnewline \u0000 nul';
const LONG_TEXT = `${'🚀 ünïcödé — '.repeat(1500)}end`;

type Row = Record<string, unknown>;

const MIN: Row = {
  ti: '-128',
  tiu: '0',
  si: '-32768',
  siu: '0',
  mi: '-8388608',
  miu: '0',
  i: '-2147483648',
  iu: '0',
  bi: '-9223372036854775808',
  biu: '0',
  d: '-99999999999999999999999999999999999.999999999999999999999999999999',
  d2: '0.00',
  f: -3.4028234663852886e38,
  dbl: -1.7976931348623157e308,
  dt: '1000-01-01',
  dt0: '1000-01-01 00:00:00',
  dt6: '1000-01-01 00:00:00.000000',
  ts: '1970-01-01 00:00:01.000000',
  tm: '-838:59:59.000000',
  y: 1901,
  c: '',
  vc: '',
  tx: '',
  bn: hex('00000000'),
  vb: Buffer.alloc(0),
  bl: Buffer.alloc(0),
  b1: hex('00'),
  b64: hex('0000000000000000'),
  e: 'a',
  st: '',
  j: '[]',
};

const MAX: Row = {
  ti: '127',
  tiu: '255',
  si: '32767',
  siu: '65535',
  mi: '8388607',
  miu: '16777215',
  i: '2147483647',
  iu: '4294967295',
  bi: '9223372036854775807',
  biu: '18446744073709551615',
  d: '99999999999999999999999999999999999.999999999999999999999999999999',
  d2: '99999999.99',
  f: 3.4028234663852886e38,
  dbl: 1.7976931348623157e308,
  dt: '9999-12-31',
  dt0: '9999-12-31 23:59:59',
  dt6: '9999-12-31 23:59:59.999999',
  ts: '2038-01-19 03:14:07.999999',
  tm: '838:59:59.000000',
  y: 2155,
  c: 'a\'b"c\\d 🚀',
  vc: TRICKY,
  tx: LONG_TEXT,
  bn: hex('ff00ff00'),
  vb: hex('00 27 5c 00 22 0a 0d 1a 00'),
  bl: ALL_BYTES,
  b1: hex('01'),
  b64: hex('ffffffffffffffff'),
  e: "it's",
  st: 'x,y,z',
  j: '{"a": [1, 2.50, {"b": null}], "e": "🚀", "q": "\\"x\\" \\\\", "big": 18446744073709551616}',
};

const NULLS: Row = Object.fromEntries(Object.keys(MAX).map((k) => [k, null]));

const MISC: Row = {
  ti: '0',
  tiu: '1',
  si: '-1',
  siu: '1',
  mi: '0',
  miu: '1',
  i: '0',
  iu: '1',
  bi: '-1',
  biu: '9223372036854775808',
  d: '-0.000000000000000000000000000001',
  d2: '0.01',
  f: 0.1,
  dbl: 0.30000000000000004,
  dt: '2024-02-29',
  dt0: '2024-02-29 12:34:56',
  dt6: '2024-02-29 12:34:56.000001',
  ts: '2024-03-31 01:59:59.500000',
  tm: '-00:00:00.000001',
  y: 2000,
  c: 'NULL',
  vc: 'null',
  tx: ' leading and trailing spaces ',
  bn: hex('00'),
  vb: hex('00'),
  bl: hex('00 00 00'),
  b1: hex('01'),
  b64: hex('8000000000000001'),
  e: 'c d',
  st: 'x,z',
  j: 'null',
};

const MISC2: Row = {
  ...MISC,
  // Zero dates (allowed by the default sql_mode, so real sources hold them).
  dt: '0000-00-00',
  dt0: '0000-00-00 00:00:00',
  ts: '0000-00-00 00:00:00.000000',
  f: 1.17549435e-38,
  dbl: 5e-324,
  tm: '100:00:00.5',
  dt6: '2000-01-01 00:00:00.123456',
  y: 0,
  j: '"just a string"',
  st: 'y',
  d: '0.000000000000000000000000000000',
  c: '   ',
  vc: '\\',
  bn: hex('0a0b0c0d'),
};

let t: Topology;
let src: mysql.Connection;

async function connect(port: number): Promise<mysql.Connection> {
  const c = await admin(port);
  await c.query("SET time_zone = '+00:00'");
  return c;
}

async function insert(c: mysql.Connection, id: number, row: Row): Promise<void> {
  await c.query('INSERT INTO ty.alltypes SET ?', [{ id, ...row }]);
}

async function snapshot(port: number): Promise<Record<string, unknown[]>> {
  const c = await connect(port);
  try {
    const q = async (sql: string) => (await c.query<mysql.RowDataPacket[]>(sql))[0].map((r) => ({ ...r }));
    return {
      alltypes: await q(
        'SELECT *, CAST(f AS DOUBLE) AS f_double, HEX(b64) AS b64_hex, HEX(j) AS j_hex FROM ty.alltypes ORDER BY id',
      ),
      odd: await q(`SELECT * FROM ty.${ODD_Q} ORDER BY \`k ey\``),
      nopk: await q('SELECT *, CAST(f AS DOUBLE) AS f_double FROM ty.nopk ORDER BY a, b, f, dec2, vb'),
    };
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['ty.*'] });
  src = await connect(SRC_PORT);
});

afterAll(async () => {
  await stopTopology(null, [src], NAME);
});

it('every column type round-trips exactly through baseline and binlog', async () => {
  for (const s of DDL) await src.query(s);
  // Baseline path: rows that exist before tidemark starts.
  await insert(src, 1, MIN);
  await insert(src, 2, MAX);
  await insert(src, 3, NULLS);
  await insert(src, 4, MISC);
  await insert(src, 5, MISC2);
  await src.query(`INSERT INTO ty.${ODD_Q} VALUES (1, 'one'), (2, 'two \`\` ''q'''), (3, NULL)`);
  await src.query(
    "INSERT INTO ty.nopk VALUES (1, 'dup', 0.1, 1.50, X'00'), (1, 'dup', 0.1, 1.50, X'00'), (2, NULL, NULL, NULL, NULL), (2, NULL, NULL, NULL, NULL)",
  );

  const child = startRun(t.config);
  const stderr = () => (child as unknown as { lastStderr: () => string }).lastStderr();
  try {
    let p = await caughtUpWhileRunning(t, child, 60_000);
    expect(p.replica, stderr()).toBe(p.source);
    const afterBaseline = await snapshot(REP_PORT);
    expect(afterBaseline).toEqual(await snapshot(SRC_PORT));
    expect(afterBaseline['alltypes']).toHaveLength(5);

    // Binlog path: the same values as single-row and multi-row transactions…
    await insert(src, 11, MIN);
    await src.query('START TRANSACTION');
    await insert(src, 12, MAX);
    await insert(src, 13, NULLS);
    await insert(src, 14, MISC);
    await src.query('COMMIT');
    await insert(src, 15, MISC2);
    // …updates: value → other extreme, value → NULL, NULL → value, primary-key change…
    await src.query('UPDATE ty.alltypes SET ? WHERE id = 1', [MAX]);
    await src.query('UPDATE ty.alltypes SET ? WHERE id = 12', [MIN]);
    await src.query('UPDATE ty.alltypes SET ? WHERE id = 14', [NULLS]);
    await src.query('UPDATE ty.alltypes SET ? WHERE id = 3', [MISC2]);
    await src.query("UPDATE ty.alltypes SET id = 104, vc = CONCAT(vc, ' moved') WHERE id = 4");
    await src.query("UPDATE ty.alltypes SET b64 = b64 ^ 1, f = f / 2, j = JSON_SET(j, '$.n', 1) WHERE id IN (2, 15)");
    // …and deletes.
    await src.query('DELETE FROM ty.alltypes WHERE id IN (5, 13)');
    await src.query(`INSERT INTO ty.${ODD_Q} VALUES (4, 'four 🚀')`);
    await src.query(`UPDATE ty.${ODD_Q} SET \`va\`\`l\` = 'changed' WHERE \`k ey\` = 3`);
    await src.query(`DELETE FROM ty.${ODD_Q} WHERE \`k ey\` = 1`);
    // Duplicates without a primary key: change one of two identical rows, delete one of two identical rows.
    await src.query("INSERT INTO ty.nopk VALUES (3, 'x', 2.5, 3.25, X'0102'), (3, 'x', 2.5, 3.25, X'0102')");
    await src.query("UPDATE ty.nopk SET b = 'changed' WHERE a = 1 LIMIT 1");
    await src.query('DELETE FROM ty.nopk WHERE a = 2 LIMIT 1');
    await src.query('DELETE FROM ty.nopk WHERE a = 3 LIMIT 1');

    p = await caughtUpWhileRunning(t, child, 60_000);
    expect(p.replica, stderr()).toBe(p.source);

    const source = await snapshot(SRC_PORT);
    const replica = await snapshot(REP_PORT);
    // The source really holds the edge values this test is about.
    const byId = new Map((source['alltypes'] as Row[]).map((r) => [r['id'], r]));
    expect([...byId.keys()]).toEqual([1, 2, 3, 11, 12, 14, 15, 104]);
    expect(byId.get(1)).toMatchObject({
      biu: '18446744073709551615',
      bi: '9223372036854775807',
      tm: '838:59:59.000000',
    });
    expect(byId.get(12)).toMatchObject({ bi: '-9223372036854775808', d: MIN['d'], tm: '-838:59:59.000000' });
    expect(byId.get(11)?.['bn']).toEqual(hex('00000000'));
    expect(byId.get(1)?.['bl']).toEqual(ALL_BYTES);
    expect(byId.get(1)?.['vc']).toBe(TRICKY);
    expect(byId.get(1)?.['b64_hex']).toBe('FFFFFFFFFFFFFFFF');
    expect(byId.get(14)).toMatchObject(NULLS);
    expect(byId.get(3)).toMatchObject({
      tm: '100:00:00.500000',
      y: 0,
      j_hex: Buffer.from('"just a string"').toString('hex').toUpperCase(),
    });
    expect(source['nopk']).toHaveLength(4);
    expect((source['nopk'] as Row[]).filter((r) => r['b'] === 'dup')).toHaveLength(1);

    expect(replica['alltypes']).toEqual(source['alltypes']);
    expect(replica['odd']).toEqual(source['odd']);
    expect(replica['nopk']).toEqual(source['nopk']);

    const v = await runCli(['verify', '-c', t.config, '--json'], { timeoutMs: 60_000 });
    expect(v.code, v.stderr + v.stdout).toBe(0);
    const doc = JSON.parse(v.stdout) as { equal: boolean; targets: { tables: { table: string; equal: boolean }[] }[] };
    expect(doc.equal).toBe(true);
    expect(doc.targets[0]?.tables.map((x) => [x.table, x.equal])).toEqual([
      ['alltypes', true],
      ['nopk', true],
      [ODD, true],
    ]);
  } finally {
    child.kill('SIGTERM');
    await exited(child);
  }
});
