/**
 * MysqlApplier against a real MariaDB replica: every value type round-trips exactly, odd identifiers, tables
 * without a primary key, generated columns, divergence detection and DDL in order. A second instance plays the
 * source (written directly with mysql2 placeholders, a path independent of apply/mysql/sql.ts) so verify can
 * compare the two.
 */
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import type { Column, Value } from '../../record/record.ts';
import { type ApplierTarget, MysqlApplier } from '../../apply/mysql/applier.ts';
import { openSession } from '../../mysql/session.ts';
import { JournalBuilder, readRows, type TableDef } from '../fixtures/apply-kit.ts';
import { verifyTables } from '../../apply/mysql/verify.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';

const SRC = { name: 'app-ty-src', port: 3421 };
const REP = { name: 'app-ty-rep', port: 3422 };
const ep = (port: number, user = 'tidemark_apply', password = 'apply-pw') => ({
  host: '127.0.0.1',
  port,
  user,
  password,
});

function target(over: Partial<ApplierTarget> = {}): ApplierTarget {
  return {
    name: 'rep',
    ...ep(REP.port),
    batch: { max_transactions: 500, max_rows: 20_000, max_wait_ms: 5 },
    no_primary_key: 'full-row',
    ...over,
  };
}

let src: mysql.Connection;
let rep: mysql.Connection;
let repRead: mysql.Connection;

beforeAll(async () => {
  startInstance(SRC.name, SRC.port);
  startInstance(REP.name, REP.port);
  src = await admin(SRC.port);
  rep = await admin(REP.port);
  repRead = await openSession(ep(REP.port, 'root', 'tidemark-root'), { apply: false });
});

afterAll(async () => {
  await src?.end();
  await rep?.end();
  repRead?.destroy();
  stopInstance(SRC.name);
  stopInstance(REP.name);
});

beforeEach(async () => {
  await resetSchemas(src);
  await resetSchemas(rep);
});

/** Runs DDL on both servers. */
async function both(sql: string): Promise<void> {
  await src.query(sql);
  await rep.query(sql);
}

async function applyAll(
  j: JournalBuilder,
  t = target(),
  maxStatementBytes?: number,
  loadMinRows?: number,
): Promise<MysqlApplier> {
  const a = new MysqlApplier({
    target: t,
    source: j.source,
    ...(maxStatementBytes ? { maxStatementBytes } : {}),
    ...(loadMinRows ? { loadMinRows } : {}),
  });
  const st = await a.open();
  await a.run(j.read(st ? st.lsn + 1n : 1n));
  return a;
}

const col = (name: string, type: string, columnType = type): Column => ({ name, type, columnType });

const TYPES: TableDef = {
  schema: 'db',
  table: 'types',
  pk: ['id'],
  columns: [
    col('id', 'int'),
    col('ti', 'tinyint'),
    col('tiu', 'tinyint', 'tinyint unsigned'),
    col('si', 'smallint'),
    col('mi', 'mediumint'),
    col('i', 'int'),
    col('iu', 'int', 'int unsigned'),
    col('bi', 'bigint'),
    col('biu', 'bigint', 'bigint unsigned'),
    col('d1', 'decimal', 'decimal(65,30)'),
    col('d2', 'decimal', 'decimal(20,6) unsigned'),
    col('f', 'float'),
    col('dbl', 'double'),
    col('b1', 'bit', 'bit(1)'),
    col('b64', 'bit', 'bit(64)'),
    col('y', 'year'),
    col('dt', 'date'),
    col('dtm', 'datetime', 'datetime(6)'),
    col('ts', 'timestamp', 'timestamp(6)'),
    col('tm', 'time', 'time(6)'),
    col('c', 'char', 'char(10)'),
    col('vc', 'varchar', 'varchar(255)'),
    col('tx', 'text'),
    col('ltx', 'longtext'),
    col('l1', 'varchar', 'varchar(20)'),
    col('bn', 'binary', 'binary(4)'),
    col('vb', 'varbinary', 'varbinary(16)'),
    col('bl', 'blob'),
    col('lbl', 'longblob'),
    col('e', 'enum', "enum('a','b','c d')"),
    col('st', 'set', "set('x','y','z')"),
    col('j', 'longtext'),
    col('g', 'geometry'),
  ],
};

const TYPES_DDL = `CREATE TABLE db.types (
  id INT NOT NULL PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED, d1 DECIMAL(65,30), d2 DECIMAL(20,6) UNSIGNED, f FLOAT, dbl DOUBLE, b1 BIT(1),
  b64 BIT(64), y YEAR, dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), c CHAR(10),
  vc VARCHAR(255), tx TEXT, ltx LONGTEXT, l1 VARCHAR(20) CHARACTER SET latin1, bn BINARY(4), vb VARBINARY(16),
  bl BLOB, lbl LONGBLOB, e ENUM('a','b','c d'), st SET('x','y','z'), j JSON, g GEOMETRY NULL
) ENGINE=InnoDB`;

const bytes = (...b: number[]) => new Uint8Array(b);
const point = (x: number, y: number): Uint8Array => {
  const b = Buffer.alloc(25);
  b.writeUInt32LE(0, 0);
  b.writeUInt8(1, 4);
  b.writeUInt32LE(1, 5);
  b.writeDoubleLE(x, 9);
  b.writeDoubleLE(y, 17);
  return new Uint8Array(b);
};

const ROW1: Value[] = [
  1n,
  -128n,
  255n,
  -32768n,
  8388607n,
  -2147483648n,
  4294967295n,
  -9223372036854775808n,
  18446744073709551615n,
  '12345678901234567890123456789012345.123456789012345678901234567890',
  '99999999999999.999999',
  Math.fround(3.4028234663852886e38),
  5e-324,
  1n,
  18446744073709551615n,
  2155n,
  '9999-12-31',
  '9999-12-31 23:59:59.999999',
  '2038-01-19 03:14:07.999999',
  '-838:59:59.000000',
  "a'b\\c",
  'héllo 😀 `x` "q" \0 nul\nline\r\x1a',
  'x'.repeat(70_000).slice(0, 65_535),
  'L'.repeat(300_000),
  'café',
  bytes(0, 1, 2, 3),
  bytes(0, 0, 0xff),
  bytes(...Array.from({ length: 256 }, (_, i) => i)),
  new Uint8Array(300_000).fill(7),
  'c d',
  'x,z',
  '{"k": [1, 2.5, "é"], "n": null}',
  point(1.5, -2),
];
const ROW2: Value[] = [
  2n,
  127n,
  0n,
  32767n,
  -8388608n,
  2147483647n,
  0n,
  9223372036854775807n,
  0n,
  '-0.000000000000000000000000000001',
  '0.000000',
  Math.fround(0.1),
  0.1,
  0n,
  0n,
  0n,
  '0000-00-00',
  '0000-00-00 00:00:00.000000',
  '1970-01-01 00:00:01.000000',
  '00:00:00.000000',
  '',
  '',
  '',
  '',
  '',
  bytes(0x61, 0, 0, 0),
  bytes(),
  bytes(),
  bytes(),
  'a',
  '',
  '[]',
  null,
];
const ROW3: Value[] = [3n, ...TYPES.columns.slice(1).map((): Value => null)];
const ROW3_TEXT: Value[] = [...ROW3];
ROW3_TEXT[21] = 'NULL';

describe('value round-trips', () => {
  it('inserts, updates and deletes every type exactly; verify agrees', async () => {
    await both('CREATE DATABASE db');
    await both(TYPES_DDL);
    const j = new JournalBuilder();
    j.tx((t) => t.insert(TYPES, [ROW1, ROW2, ROW3]));
    // A 256 KiB statement bound: row 1 (~1 MB of SQL) goes alone, rows 2 and 3 share a statement.
    const a = await applyAll(j, target(), 256 * 1024);
    expect(await readRows(repRead, TYPES, 'id')).toEqual([ROW1, ROW2, ROW3]);

    const ph = TYPES.columns.map(() => '?').join(',');
    for (const r of [ROW1, ROW2, ROW3]) await src.query(`INSERT INTO db.types VALUES (${ph})`, r);
    let v = await verifyTables({
      source: ep(SRC.port, 'root', 'tidemark-root'),
      replica: ep(REP.port),
      tables: [{ schema: 'db', table: 'types' }],
    });
    expect(v.equal).toBe(true);
    expect(v.tables[0]).toMatchObject({ equal: true, rows: 3, replicaRows: 3, differenceCount: 0 });

    // Update every column of row 1 to row 2's values (new key 20), row 3's NULL text to 'NULL', delete row 2.
    const ROW1B: Value[] = [20n, ...ROW2.slice(1)];
    j.tx((t) =>
      t
        .update(TYPES, [
          [ROW1, ROW1B],
          [ROW3, ROW3_TEXT],
        ])
        .delete(TYPES, [ROW2]),
    );
    await a.run(j.read(a.state!.lsn + 1n));
    await a.close();
    expect(await readRows(repRead, TYPES, 'id')).toEqual([ROW3_TEXT, ROW1B]);

    const sets = TYPES.columns.map((c) => `\`${c.name}\` = ?`).join(', ');
    await src.query(`UPDATE db.types SET ${sets} WHERE id = 1`, ROW1B);
    await src.query(`UPDATE db.types SET vc = 'NULL' WHERE id = 3`);
    await src.query('DELETE FROM db.types WHERE id = 2');
    v = await verifyTables({
      source: ep(SRC.port, 'root', 'tidemark-root'),
      replica: ep(REP.port),
      tables: [{ schema: 'db', table: 'types' }],
    });
    expect(v.equal).toBe(true);
  });

  it('inserts through LOAD DATA keep every type exact; a value too long fails as the INSERT does (load-data.ts)', async () => {
    await both('CREATE DATABASE db');
    await both(TYPES_DDL);
    const rows = [
      ROW1,
      ROW2,
      ROW3,
      ...[4n, 5n, 6n].flatMap((id) => [
        [id, ...ROW2.slice(1)],
        [id + 10n, ...ROW1.slice(1)],
      ]),
    ];
    const ph = TYPES.columns.map(() => '?').join(',');
    for (const r of rows) await src.query(`INSERT INTO db.types VALUES (${ph})`, r);
    const loads = async () => {
      const [r] = await rep.query<mysql.RowDataPacket[]>(
        "SELECT VARIABLE_VALUE AS v FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'COM_LOAD'",
      );
      return Number(r[0]?.['v']);
    };
    const loads0 = await loads();
    const j = new JournalBuilder();
    j.tx((t) => t.insert(TYPES, rows));
    const a = await applyAll(j, target(), undefined, 2);
    // ROW1's 300 KB values make rows of their own beside a 1 MiB file: more than one load, no INSERT fallback.
    expect(await loads()).toBeGreaterThan(loads0);
    expect(await readRows(repRead, TYPES, 'id')).toEqual([...rows].sort((x, y) => Number(x[0]) - Number(y[0])));
    const v = await verifyTables({
      source: ep(SRC.port, 'root', 'tidemark-root'),
      replica: ep(REP.port),
      tables: [{ schema: 'db', table: 'types' }],
    });
    expect(v.tables[0]).toMatchObject({ equal: true, rows: 9, replicaRows: 9, differenceCount: 0 });
    // LOAD DATA LOCAL only warns and cuts a value too long: the rows go again as the INSERT, which fails.
    const tooLong = [20n, 21n, 22n].map((id, i): Value[] => [
      id,
      ...ROW2.slice(1, 24),
      i === 1 ? 'x'.repeat(21) : 'ok',
      ...ROW2.slice(25),
    ]);
    j.tx((t) => t.insert(TYPES, tooLong));
    const err = (await a.run(j.read(a.state!.lsn + 1n)).catch((e: unknown) => e)) as TidemarkError;
    await a.close();
    expect(err).toBeInstanceOf(TidemarkError);
    expect(err.code).toBe('APPLY_FAILED');
    expect(err.message).toMatch(/insert of 3 row\(s\) in `db`.`types` from seq \d+: Data too long for column 'l1'/);
    expect((await readRows(repRead, TYPES, 'id')).length).toBe(9);
  });

  it('key-unchanged updates joined into one statement keep every type exact (apply/mysql/join-update.ts)', async () => {
    // The table without its geometry column (a spatial column keeps a table's updates per-row).
    const T: TableDef = { ...TYPES, table: 'typesj', columns: TYPES.columns.slice(0, -1) };
    await both('CREATE DATABASE db');
    await both(TYPES_DDL.replace('db.types', 'db.typesj').replace(', g GEOMETRY NULL', ''));
    const cut = (r: Value[], id: bigint): Value[] => [id, ...r.slice(1, -1)];
    // ROW1 with its 300 KB text and blob shortened: a value of 64 KiB or more keeps its row per-row (MariaDB cuts
    // long binary literals in a value list: mysql/batch-sql.ts), row 4 below is that case.
    const short = (r: Value[]): Value[] => r.map((v, i) => (i === 23 ? 'L'.repeat(1000) : i === 28 ? bytes(7, 7) : v));
    const [r1, r2, r3, r4] = [cut(ROW1, 1n), cut(ROW2, 2n), cut(ROW3, 3n), cut(ROW3, 4n)];
    // Rows 5–9: more rows of the same shape, so the joined statement reaches JOIN_MIN_ROWS (8; apply/mysql/batcher.ts).
    const more = [5n, 6n, 7n, 8n, 9n].map((id) => [cut(ROW2, id), cut(ROW3, id)] as const);
    const j = new JournalBuilder();
    j.tx((t) => t.insert(T, [r1, r2, r3, r4, ...more.map(([r]) => r)]));
    // One entry, nine rows, each key kept: every value goes to another row's, NULLs included; rows 1–3 and 5–9 in
    // one joined statement, row 4 (300 KB values, last) on its own.
    const [n1, n2, n3, n4] = [cut(ROW2, 1n), cut(ROW3, 2n), short(cut(ROW1, 3n)), cut(ROW1, 4n)];
    j.tx((t) =>
      t.update(T, [[r1, n1], [r2, n2], [r3, n3], ...more.map(([r, n]): [Value[], Value[]] => [r, n]), [r4, n4]]),
    );
    const updates = async (): Promise<[number, number]> => {
      const [rows] = await rep.query<mysql.RowDataPacket[]>(
        'SELECT VARIABLE_VALUE AS v FROM information_schema.GLOBAL_STATUS ' +
          "WHERE VARIABLE_NAME IN ('COM_UPDATE', 'COM_UPDATE_MULTI') ORDER BY VARIABLE_NAME",
      );
      return [Number(rows[0]?.['v']), Number(rows[1]?.['v'])];
    };
    const [single0, multi0] = await updates();
    await applyAll(j).then((a) => a.close());
    expect(await readRows(repRead, T, 'id')).toEqual([n1, n2, n3, n4, ...more.map(([, n]) => n)]);
    // What ran: one joined (multi-table) UPDATE; single-table UPDATEs for row 4 and for claiming the position row
    // (one per replica transaction: at most 2 here), none for rows 1–3 and 5–9 (that would be 8 more).
    const [single1, multi1] = await updates();
    expect(multi1 - multi0).toBe(1);
    expect(single1 - single0).toBeLessThanOrEqual(3);
  });

  it('handles identifiers with backticks and spaces', async () => {
    const T: TableDef = {
      schema: 'we`ird db',
      table: 't`ab le',
      pk: ['pk `col', 'k2'],
      columns: [col('pk `col', 'int'), col('k2', 'varchar'), col('va`l ue', 'varchar')],
    };
    await both('CREATE DATABASE `we``ird db`');
    await both(
      'CREATE TABLE `we``ird db`.`t``ab le` (`pk ``col` INT, k2 VARCHAR(10), `va``l ue` VARCHAR(20), PRIMARY KEY (`pk ``col`, k2))',
    );
    const j = new JournalBuilder();
    j.tx((t) =>
      t.insert(T, [
        [1n, 'a', 'one'],
        [2n, 'b', 'two'],
        [3n, 'c', 'three'],
      ]),
    );
    j.tx((t) =>
      t
        .update(T, [
          [
            [1n, 'a', 'one'],
            [1n, 'a', 'uno'],
          ],
        ])
        .delete(T, [[2n, 'b', 'two']]),
    );
    const a = await applyAll(j);
    await a.close();
    expect(await readRows(repRead, T, '1, 2')).toEqual([
      [1n, 'a', 'uno'],
      [3n, 'c', 'three'],
    ]);
    await src.query("INSERT INTO `we``ird db`.`t``ab le` VALUES (1,'a','uno'),(3,'c','three')");
    const v = await verifyTables({
      source: ep(SRC.port, 'root', 'tidemark-root'),
      replica: ep(REP.port),
      tables: [{ schema: 'we`ird db', table: 't`ab le' }],
    });
    expect(v.equal).toBe(true);
  });

  it('does not write generated columns', async () => {
    const T: TableDef = {
      schema: 'db',
      table: 'gen',
      pk: ['id'],
      columns: [col('id', 'int'), col('a', 'int'), col('twice', 'int'), col('stored', 'int')],
    };
    await both('CREATE DATABASE db');
    await both(
      'CREATE TABLE db.gen (id INT PRIMARY KEY, a INT, twice INT AS (a * 2) VIRTUAL, stored INT AS (a + 1) STORED)',
    );
    const j = new JournalBuilder();
    j.tx((t) => t.insert(T, [[1n, 5n, 10n, 6n]]));
    j.tx((t) =>
      t.update(T, [
        [
          [1n, 5n, 10n, 6n],
          [1n, 7n, 14n, 8n],
        ],
      ]),
    );
    const a = await applyAll(j);
    await a.close();
    expect(await readRows(repRead, T, 'id')).toEqual([[1n, 7n, 14n, 8n]]);
  });
});

describe('tables without a primary key', () => {
  const T: TableDef = { schema: 'db', table: 'no`pk', pk: [], columns: [col('a', 'int'), col('b', 'varchar')] };

  beforeEach(async () => {
    await both('CREATE DATABASE db');
    await both('CREATE TABLE db.`no``pk` (a INT, b VARCHAR(10))');
    await rep.query("INSERT INTO db.`no``pk` VALUES (1,'x'),(1,'x'),(2,NULL)");
  });

  it("'full-row' changes exactly one of identical rows, NULL-safely", async () => {
    const j = new JournalBuilder();
    j.tx((t) =>
      t.update(T, [
        [
          [1n, 'x'],
          [1n, 'y'],
        ],
      ]),
    );
    j.tx((t) => t.delete(T, [[2n, null]]));
    const a = await applyAll(j);
    expect(await readRows(repRead, T, 'a, b')).toEqual([
      [1n, 'x'],
      [1n, 'y'],
    ]);
    j.tx((t) => t.delete(T, [[1n, 'x']]));
    await a.run(j.read(a.state!.lsn + 1n));
    expect(await readRows(repRead, T, 'a, b')).toEqual([[1n, 'y']]);
    // A row that is not there: divergence.
    j.tx((t) => t.delete(T, [[1n, 'x']]));
    const err = await a.run(j.read(a.state!.lsn + 1n)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('APPLY_DIVERGED');
    expect((err as TidemarkError).message).toContain("row (a=1, b='x')");
    await a.close();
  });

  it("'refuse' names the table and changes nothing", async () => {
    const j = new JournalBuilder();
    j.tx((t) =>
      t.update(T, [
        [
          [1n, 'x'],
          [1n, 'y'],
        ],
      ]),
    );
    const a = new MysqlApplier({ target: target({ no_primary_key: 'refuse' }), source: j.source });
    await a.open();
    const err = (await a.run(j.read()).catch((e: unknown) => e)) as TidemarkError;
    await a.close();
    expect(err.code).toBe('APPLY_NO_PK');
    expect(err.retriable).toBe(false);
    expect(err.message).toContain('`db`.`no``pk` has no primary key');
    expect(await readRows(repRead, T, 'a, b')).toEqual([
      [1n, 'x'],
      [1n, 'x'],
      [2n, null],
    ]);
  });
});

describe('divergence', () => {
  const T: TableDef = { schema: 'db', table: 'acct', pk: ['id'], columns: [col('id', 'int'), col('bal', 'int')] };

  async function setup(n = 3): Promise<{ a: MysqlApplier; j: JournalBuilder }> {
    await both('CREATE DATABASE db');
    await both('CREATE TABLE db.acct (id INT PRIMARY KEY, bal INT)');
    const j = new JournalBuilder();
    j.tx((t) =>
      t.insert(
        T,
        Array.from({ length: n }, (_, i) => [BigInt(i + 1), BigInt(10 * (i + 1))]),
      ),
    );
    // A long max wait keeps every later transaction in one replica transaction with the failing one.
    const a = await applyAll(j, target({ batch: { max_transactions: 500, max_rows: 20_000, max_wait_ms: 10_000 } }));
    await rep.query('DELETE FROM db.acct WHERE id = 2');
    return { a, j };
  }

  async function expectDiverged(a: MysqlApplier, j: JournalBuilder, text: RegExp): Promise<void> {
    const before = a.state!;
    const rowsBefore = await readRows(repRead, T, 'id');
    const err = (await a.run(j.read(before.lsn + 1n)).catch((e: unknown) => e)) as TidemarkError;
    expect(err).toBeInstanceOf(TidemarkError);
    expect(err.code).toBe('APPLY_DIVERGED');
    expect(err.retriable).toBe(false);
    expect(err.message).toMatch(text);
    // Nothing of the failed group is visible and the stored position did not move.
    expect(await readRows(repRead, T, 'id')).toEqual(rowsBefore);
    await a.close();
    expect(await a.open()).toEqual(before);
    await a.close();
  }

  it('an update of a missing row fails naming table, key and seq', async () => {
    const { a, j } = await setup();
    j.tx((t) => t.insert(T, [[4n, 40n]]));
    const c = j.tx((t) =>
      t.update(T, [
        [
          [2n, 20n],
          [2n, 21n],
        ],
      ]),
    );
    await expectDiverged(a, j, new RegExp(`update of \`db\`.\`acct\` key \\(id=2\\) at seq ${c.seq - 1n}`));
  });

  it('a delete with a missing key among others names that key', async () => {
    const { a, j } = await setup();
    j.tx((t) =>
      t.delete(T, [
        [1n, 10n],
        [2n, 20n],
        [3n, 30n],
      ]),
    );
    await expectDiverged(
      a,
      j,
      /delete of `db`.`acct` key \(id=2\) at seq \d+: no such row on the replica \(1 of 3 keys/,
    );
  });

  it('a joined update with a missing key among others names that key and its seq', async () => {
    // Eight rows: updates are joined from JOIN_MIN_ROWS (8) rows of one table on (apply/mysql/batcher.ts).
    const { a, j } = await setup(8);
    const c = j.tx((t) =>
      t.update(
        T,
        Array.from({ length: 8 }, (_, i): [Value[], Value[]] => [
          [BigInt(i + 1), BigInt(10 * (i + 1))],
          [BigInt(i + 1), BigInt(10 * (i + 1) + 1)],
        ]),
      ),
    );
    await expectDiverged(
      a,
      j,
      new RegExp(
        `update of \`db\`.\`acct\` key \\(id=2\\) at seq ${c.seq - 7n}: no such row on the replica \\(1 of 8 keys`,
      ),
    );
  });

  it('an insert of an existing key is a divergence', async () => {
    const { a, j } = await setup();
    j.tx((t) => t.insert(T, [[3n, 30n]]));
    await expectDiverged(a, j, /Duplicate entry '3'/);
  });

  it('an existing key among the rows of a LOAD DATA is the same divergence (load-data.ts)', async () => {
    const { a, j } = await setup();
    // 64 rows (LOAD_MIN_ROWS, apply/mysql/batcher.ts): LOAD DATA skips the duplicate, exec.ts re-runs the INSERT.
    j.tx((t) =>
      t.insert(
        T,
        Array.from({ length: 64 }, (_, i) => [BigInt(i + 3), 0n]),
      ),
    );
    await expectDiverged(a, j, /insert of 64 row\(s\) in `db`.`acct` from seq \d+: Duplicate entry '3'/);
  });
});

describe('DDL', () => {
  it('applies DDL in order with the rows around it', async () => {
    await rep.query('CREATE DATABASE db');
    const T1: TableDef = { schema: 'db', table: 'd', pk: ['id'], columns: [col('id', 'int'), col('a', 'varchar')] };
    const T2: TableDef = { ...T1, columns: [...T1.columns, col('b', 'int')] };
    const T3: TableDef = { ...T2, table: 'd2' };
    const j = new JournalBuilder();
    j.tx((t) => t.ddl('db', 'CREATE TABLE d (id INT PRIMARY KEY, a VARCHAR(10))'));
    j.tx((t) => t.insert(T1, [[1n, 'x']]));
    j.tx((t) => t.ddl('db', 'ALTER TABLE d ADD COLUMN b INT NOT NULL DEFAULT 7'));
    j.tx((t) =>
      t.insert(T2, [[2n, 'y', 8n]]).update(T2, [
        [
          [1n, 'x', 7n],
          [1n, 'x', 9n],
        ],
      ]),
    );
    j.tx((t) => t.ddl('', 'RENAME TABLE db.d TO db.d2'));
    j.tx((t) => t.delete(T3, [[2n, 'y', 8n]]));
    // CREATE TABLE … SELECT style: DDL and rows in one source transaction.
    const T4: TableDef = { schema: 'db', table: 'copy', pk: ['id'], columns: [col('id', 'int')] };
    j.tx((t) => t.ddl('db', 'CREATE TABLE copy (id INT PRIMARY KEY)').insert(T4, [[1n], [2n]]));
    const a = await applyAll(j);
    expect(await readRows(repRead, T3, 'id')).toEqual([[1n, 'x', 9n]]);
    expect(await readRows(repRead, T4, 'id')).toEqual([[1n], [2n]]);
    const last = j.items[j.items.length - 1]!;
    expect(a.state).toMatchObject({ seq: last.entry.seq, lsn: last.lsn });
    expect(await a.open()).toEqual(a.state);
    await a.close();
  });
});
