/**
 * Cross-engine replicas (issue #14 item 8) through the real runtime (`tidemark run` in child processes, both at once):
 *   - MariaDB (3825) → PostgreSQL (5480, database dstdb): a table of every mapped MariaDB type (unsigned BIGINT at its
 *     maximum, DECIMAL(38,10), FLOAT/DOUBLE extremes, DATETIME(6), TIMESTAMP(6), TIME(6) ±838 h, YEAR, utf8mb4 4-byte
 *     text, ENUM, SET, JSON, empty and binary blobs, BIT, NULLs), created on PostgreSQL with the mapped types;
 *   - PostgreSQL (5480, database srcdb) → MariaDB (3826): bool, int2/4/8 extremes, numeric(38,10), real/double,
 *     text/varchar/char(n), bytea (empty too), timestamp(6), timestamptz(3) (an offset), date, time '24:00:00',
 *     jsonb, json, uuid, NULLs, created on MariaDB with the mapped types;
 *   - both under a workload (inserts, updates of every kind of column, deletes) after the baseline; then the
 *     type-aware verify (the target adapter's, against the other engine's source) says equal, and finds a single
 *     value changed on the target by its key;
 *   - an unmappable or incompatible column type → APPLY_TYPE_MAP naming table, column and type, nothing written; a
 *     MariaDB DDL while streaming → APPLY_TYPE_MAP; a table missing on PostgreSQL → its CREATE TABLE in the error,
 *     which, run, makes the row apply (the appliers alone).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { mysqlTarget, type MysqlTargetSection } from '../../apply/mysql/adapter.ts';
import { postgresTarget } from '../../apply/postgres/adapter.ts';
import type { PgTargetSection } from '../../apply/postgres/config.ts';
import type { TidemarkError } from '../../core/errors.ts';
import type { JournalItem } from '../../engine/target.ts';
import { openPgClient } from '../../postgres/session.ts';
import { sequencePosition } from '../../record/position.ts';
import type { Entry } from '../../record/record.ts';
import { admin, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import {
  APPLY_USER,
  CAPTURE_USER,
  pgAdmin,
  SUPERUSER_PASSWORD,
  startPostgres,
  stopPostgres,
} from '../fixtures/postgres.ts';
import { startRun, stopRun } from '../fixtures/topology.ts';

const MY_SRC = { name: 'xengsrc', port: 3825 };
const MY_DST = { name: 'xengdst', port: 3826 };
const PG = { name: 'xengpg', port: 5480 };
const SEED = 60;
const log = pino({ level: 'silent' });

let dir = '';
const runs: ChildProcess[] = [];
let mySrc: mysql.Connection;
let myDst: mysql.Connection;
let pgDst: pg.Client; // dstdb: MariaDB → PostgreSQL target
let pgSrc: pg.Client; // srcdb: PostgreSQL → MariaDB source

const superuser = (database: string) =>
  openPgClient({ host: '127.0.0.1', port: PG.port, user: 'postgres', password: SUPERUSER_PASSWORD, database });

const MY_TABLE = `CREATE TABLE xs.t (id INT PRIMARY KEY, ti TINYINT, biu BIGINT UNSIGNED, d DECIMAL(38,10), f FLOAT,
  dbl DOUBLE, dt DATE, dt6 DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), y YEAR, vc VARCHAR(40), tx TEXT,
  e ENUM('a','b'), st SET('x','y'), j JSON, vb VARBINARY(16), bl BLOB, b BIT(5)) DEFAULT CHARSET=utf8mb4`;
const PG_OF_MY = `CREATE TABLE xs.t (id integer PRIMARY KEY, ti smallint, biu numeric(20,0), d numeric(38,10), f real,
  dbl double precision, dt date, dt6 timestamp(6), ts timestamp(6) with time zone, tm interval, y smallint,
  vc varchar(40), tx text, e text, st text, j json, vb bytea, bl bytea, b bit(5));
  CREATE TABLE xs.m (w integer PRIMARY KEY);`;

const PG_TABLE = `CREATE TABLE xp.t (id int PRIMARY KEY, b bool, s int2, i int4, g int8, n numeric(38,10), r real,
  d8 double precision, tx text, vc varchar(20), bc char(4), by bytea, ts timestamp(6), tz timestamptz(3), dt date,
  tm time(6), j jsonb, js json, u uuid);
  CREATE TABLE xp.m (w int PRIMARY KEY);`;
const MY_OF_PG = `CREATE TABLE xp.t (id INT PRIMARY KEY, b TINYINT(1), s SMALLINT, i INT, g BIGINT, n DECIMAL(38,10),
  r FLOAT, d8 DOUBLE, tx LONGTEXT, vc VARCHAR(20), bc VARCHAR(4), \`by\` LONGBLOB, ts DATETIME(6), tz DATETIME(3),
  dt DATE, tm TIME(6), j JSON, js JSON, u CHAR(36)) DEFAULT CHARSET=utf8mb4`;

beforeAll(async () => {
  startInstance(MY_SRC.name, MY_SRC.port, { fresh: true });
  startInstance(MY_DST.name, MY_DST.port, { fresh: true });
  startPostgres(PG.name, PG.port, { fresh: true });
  const a = await pgAdmin(PG.port);
  await a.query('CREATE DATABASE dstdb');
  await a.query('CREATE DATABASE srcdb');
  await a.end();
  mySrc = await admin(MY_SRC.port);
  myDst = await admin(MY_DST.port);
  pgDst = await superuser('dstdb');
  pgSrc = await superuser('srcdb');
  await mySrc.query(`SET time_zone = '+00:00'; CREATE DATABASE xs; USE xs; ${MY_TABLE}; CREATE TABLE xs.m (w INT PRIMARY KEY);
    INSERT INTO xs.t VALUES
      (1, 127, 18446744073709551615, 9999999999999999999999999999.9999999999, 3.4028234663852886e38,
       1.7976931348623157e308, '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
       '838:59:59.999999', 2155, '😀𝄞 ünï', REPEAT('🚀 ü ', 3000), 'b', 'x,y', '{"b": 1, "a": [1.50, "🚀"]}',
       X'00FF', X'', b'11111'),
      (2, -128, 0, -9999999999999999999999999999.9999999999, -1.17549435e-38, -2.2250738585072014e-308,
       '1000-01-01', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '-838:59:59.999999', 1901, '', '',
       'a', '', '[]', X'', X'00', b'0'),
      (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    INSERT INTO xs.t SELECT seq, seq % 100, seq * 1000000007, seq / 7, seq / 3, seq / 9, '2026-12-06' - INTERVAL seq DAY,
      '2026-12-06 12:00:00.000001' + INTERVAL seq SECOND, '2026-12-06 12:00:00.5' + INTERVAL seq MINUTE,
      SEC_TO_TIME(seq * 3601.25), 2000 + seq, CONCAT('r', seq, '😀'), REPEAT('t', seq), IF(seq % 2, 'a', 'b'), 'y',
      JSON_OBJECT('k', seq), UNHEX(MD5(seq)), UNHEX(REPEAT('AB', seq)), seq % 32 FROM seq_4_to_${SEED}`);
  await pgDst.query(`CREATE SCHEMA xs; ${PG_OF_MY}
    GRANT SET ON PARAMETER session_replication_role TO tidemark_apply;
    GRANT CREATE ON DATABASE dstdb TO tidemark_apply; GRANT USAGE ON SCHEMA xs TO tidemark_apply;
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA xs TO tidemark_apply;`);
  await pgSrc.query(`CREATE SCHEMA xp; ${PG_TABLE}
    ALTER TABLE xp.t REPLICA IDENTITY FULL; ALTER TABLE xp.m REPLICA IDENTITY FULL;
    CREATE PUBLICATION xp_pub FOR TABLE xp.t, xp.m;
    GRANT USAGE ON SCHEMA xp TO tidemark_cap; GRANT SELECT ON ALL TABLES IN SCHEMA xp TO tidemark_cap;
    INSERT INTO xp.t VALUES
      (1, true, 32767, 2147483647, 9223372036854775807, 9999999999999999999999999999.9999999999, '3.4028235e+38',
       '1.7976931348623157e+308', repeat('😀𝄞 ü', 4000), 'ünï😀', 'ab', '\\x00ff', '9999-12-31 23:59:59.999999',
       '2024-02-29 23:59:59.999+05:30', '9999-12-31', '24:00:00', '{"b": 1, "a": [1.50, "🚀"]}', '{"b":1,  "a":2}',
       gen_random_uuid()),
      (2, false, -32768, -2147483648, -9223372036854775808, -9999999999999999999999999999.9999999999, '-1.1754944e-38',
       '-2.2250738585072014e-308', '', '', '', '\\x', '1000-01-01 00:00:00', '1970-01-01 00:00:00+00', '1000-01-01',
       '00:00:00', '[]', '""', '00000000-0000-0000-0000-000000000000'),
      (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    INSERT INTO xp.t SELECT g, g % 2 = 0, g, g * 1000, g * 100000000000, g / 7.0, g / 3.0, g / 9.0, repeat('x', g),
      'v' || g, 'c' || (g % 10), decode(md5(g::text), 'hex'), '2026-12-06 12:00:00.000001'::timestamp + g * interval '1 s',
      '2026-12-06 12:00:00.5+01'::timestamptz + g * interval '1 min', date '2026-12-06' - g, time '00:00:00.5' + g * interval '1 min',
      jsonb_build_object('k', g), json_build_object('k', g), md5(g::text)::uuid FROM generate_series(4, ${SEED}) g;`);
  await myDst.query(`CREATE DATABASE xp; ${MY_OF_PG}; CREATE TABLE xp.m (w INT PRIMARY KEY)`);
  dir = mkdtempSync(join(tmpdir(), 'tm-xeng-'));
}, 300_000);

afterAll(async () => {
  for (const r of runs) await stopRun(r);
  for (const c of [mySrc, myDst]) await c?.end().catch(() => {});
  for (const c of [pgDst, pgSrc]) await c?.end().catch(() => {});
  stopInstance(MY_SRC.name);
  stopInstance(MY_DST.name);
  stopPostgres(PG.name);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const pgTarget = (): PgTargetSection => {
  const t = { kind: 'postgres' as const, name: 'pgx', host: '127.0.0.1', port: PG.port, user: APPLY_USER.user };
  const s = { ...t, database: 'dstdb', connect_timeout_ms: 10_000, verify: { chunk_rows: 16 } };
  Object.defineProperty(s, 'password', { value: APPLY_USER.password, enumerable: false });
  return s as PgTargetSection;
};
const myTarget = (): MysqlTargetSection => {
  const t = mysqlTarget.configSchema.parse({
    name: 'myx',
    host: '127.0.0.1',
    port: MY_DST.port,
    user: 'tidemark_apply',
  });
  Object.defineProperty(t, 'password', { value: 'apply-pw', enumerable: false });
  return t as MysqlTargetSection;
};
const mySource = {
  kind: 'mysql',
  name: 'mysrc',
  host: '127.0.0.1',
  port: MY_SRC.port,
  user: 'tidemark_cap',
  password: 'cap-pw',
  include: ['xs.*'],
  exclude: [],
};
const pgSource = {
  kind: 'postgres',
  name: 'pgsrc',
  host: '127.0.0.1',
  port: PG.port,
  ...CAPTURE_USER,
  database: 'srcdb',
  publication: 'xp_pub',
  include: ['*.*'],
  exclude: [],
};

function writeConfig(name: string, source: object, target: object): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      source,
      journal: { dir: join(dir, `${name}-journal`), fsync: 'group', group_commit_ms: 5 },
      targets: [target],
      rollback: { index: false },
      log: { level: 'warn' },
    }),
  );
  return file;
}

/** MariaDB writer transaction w: a marker, updates of every column kind, an insert, a delete. */
async function writeMy(c: mysql.Connection, w: number): Promise<void> {
  const id = 4 + (w % (SEED - 3));
  await c.query(
    `START TRANSACTION; INSERT INTO xs.m VALUES (${w});
     UPDATE xs.t SET ti = -ti, biu = biu + 1, d = d - 0.0000000001, f = f * 2, dbl = -dbl, dt6 = dt6 + INTERVAL 1 MICROSECOND,
       ts = ts + INTERVAL 1.5 SECOND, tm = SUBTIME(tm, '01:00:00.000001'), vc = CONCAT('w${w}', '𝄞'), e = 'b', st = 'x,y',
       j = JSON_SET(j, '$.w', ${w}), vb = X'', b = b ^ 1 WHERE id = ${id};
     INSERT INTO xs.t (id, biu, d, dt6, vc, bl) VALUES (${1000 + w}, 18446744073709551615 - ${w}, ${w}.5, '2026-01-01 00:00:00.000007', 'ins😀', X'0102');
     ${w % 3 === 0 ? `DELETE FROM xs.t WHERE id = ${1000 + w - 1};` : ''}
     COMMIT`,
  );
}

/** PostgreSQL writer transaction w, likewise. */
async function writePg(c: pg.Client, w: number): Promise<void> {
  const id = 4 + (w % (SEED - 3));
  await c.query(
    `BEGIN; INSERT INTO xp.m VALUES (${w});
     UPDATE xp.t SET b = NOT b, i = i + 1, g = -g, n = n / 3, r = r * 2, d8 = d8 / 3, tx = tx || 'ü', vc = 'w${w}😀',
       by = by || '\\x01'::bytea, ts = ts + interval '1 us', tz = tz + interval '1 ms', tm = tm + interval '1.000001 s',
       j = j || jsonb_build_object('w', ${w}), u = gen_random_uuid() WHERE id = ${id};
     INSERT INTO xp.t (id, g, n, tx, by, tz) VALUES (${1000 + w}, ${w}, ${w}.25, 'ins😀', '\\x', now());
     ${w % 3 === 0 ? `DELETE FROM xp.t WHERE id = ${1000 + w - 1};` : ''}
     COMMIT`,
  );
}

async function waitFor(what: string, ok: () => Promise<boolean>, run: ChildProcess, ms = 45_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok().catch(() => false)) return;
    if (run.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const err = (run as ChildProcess & { lastStderr: () => string }).lastStderr();
  throw new Error(`${what} not reached; run's stderr: ${err}`);
}

describe('cross-engine replicas', () => {
  it('MariaDB → PostgreSQL and PostgreSQL → MariaDB under a workload: verify equal, a one-value difference found', async () => {
    const myRun = startRun(
      writeConfig(
        'm2p',
        { ...mySource, server_id: 43825, baseline: { chunk_rows: 25 } },
        {
          kind: 'postgres',
          name: 'pgx',
          port: PG.port,
          ...APPLY_USER,
          database: 'dstdb',
        },
      ),
    );
    runs.push(myRun);
    const pgRun = startRun(
      writeConfig(
        'p2m',
        { ...pgSource, slot: 'xp_slot', baseline: { chunk_rows: 25 } },
        { name: 'myx', host: '127.0.0.1', port: MY_DST.port, user: 'tidemark_apply', password: 'apply-pw' },
      ),
    );
    runs.push(pgRun);
    // The workload starts once both baselines are in (the marker table is copied before xs.t / xp.t otherwise).
    await waitFor(
      'MariaDB → PostgreSQL baseline',
      async () => (await pgDst.query('SELECT count(*)::int AS n FROM xs.t')).rows[0]?.['n'] === String(SEED),
      myRun,
    );
    await waitFor(
      'PostgreSQL → MariaDB baseline',
      async () => Number(((await myDst.query('SELECT COUNT(*) AS n FROM xp.t'))[0] as { n: unknown }[])[0]?.n) === SEED,
      pgRun,
    );
    const myWriter = await admin(MY_SRC.port);
    const pgWriter = await superuser('srcdb');
    const W = 40;
    try {
      await myWriter.query("SET time_zone = '+00:00'");
      for (let w = 1; w <= W; w++) {
        await writeMy(myWriter, w);
        await writePg(pgWriter, w);
      }
    } finally {
      await myWriter.end();
      await pgWriter.end();
    }
    await waitFor(
      'MariaDB → PostgreSQL marker',
      async () => (await pgDst.query(`SELECT 1 FROM xs.m WHERE w = ${W}`)).rows.length === 1,
      myRun,
    );
    await waitFor(
      'PostgreSQL → MariaDB marker',
      async () => ((await myDst.query(`SELECT 1 FROM xp.m WHERE w = ${W}`))[0] as unknown[]).length === 1,
      pgRun,
    );
    for (const r of runs) await stopRun(r);

    const m2p = await postgresTarget.verify({ source: mySource as never, target: pgTarget(), log });
    expect(m2p.tables.map((t) => [t.table, t.equal, t.rows, t.replicaRows, t.columnsDiffer])).toEqual([
      ['m', true, W, W, undefined],
      ['t', true, SEED + W - Math.floor(W / 3), SEED + W - Math.floor(W / 3), undefined],
    ]);
    const p2m = await mysqlTarget.verify({ source: pgSource as never, target: myTarget(), log });
    expect(p2m.tables.map((t) => [t.table, t.equal, t.rows, t.replicaRows, t.columnsDiffer])).toEqual([
      ['m', true, W, W, undefined],
      ['t', true, SEED + W - Math.floor(W / 3), SEED + W - Math.floor(W / 3), undefined],
    ]);
    // Spot checks beyond the comparison: the extremes arrived as written.
    const one = await pgDst.query('SELECT biu::text, d::text, dt6::text, tm::text, vc, b::text FROM xs.t WHERE id = 1');
    expect(one.rows[0]).toEqual({
      biu: '18446744073709551615',
      d: '9999999999999999999999999999.9999999999',
      dt6: '9999-12-31 23:59:59.999999',
      tm: '838:59:59.999999',
      vc: '😀𝄞 ünï',
      b: '11111',
    });
    const [two] = await myDst.query(
      'SELECT g, n, CAST(tz AS CHAR) AS tz, bc, HEX(`by`) AS h FROM xp.t WHERE id IN (1, 2) ORDER BY id',
    );
    expect(two).toEqual([
      {
        g: '9223372036854775807',
        n: '9999999999999999999999999999.9999999999',
        tz: '2024-02-29 18:29:59.999',
        bc: 'ab  ',
        h: '00FF',
      },
      {
        g: '-9223372036854775808',
        n: '-9999999999999999999999999999.9999999999',
        tz: '1970-01-01 00:00:00.000',
        bc: '    ', // character(4) output is padded, and kept so
        h: '',
      },
    ]);

    // One value changed on each target alone: found by its key, nothing else.
    await pgDst.query("UPDATE xs.t SET dt6 = dt6 + interval '1 microsecond' WHERE id = 7");
    const m2pBad = await postgresTarget.verify({
      source: mySource as never,
      target: pgTarget(),
      log,
      tables: [{ schema: 'xs', table: 't' }],
    });
    expect(m2pBad.equal).toBe(false);
    expect(m2pBad.tables[0]?.differences).toEqual([{ pk: ['7'], key: 'id=7', kind: 'changed' }]);
    await myDst.query("UPDATE xp.t SET tx = CONCAT(tx, '😀') WHERE id = 9");
    const p2mBad = await mysqlTarget.verify({
      source: pgSource as never,
      target: myTarget(),
      log,
      tables: [{ schema: 'xp', table: 't' }],
    });
    expect(p2mBad.equal).toBe(false);
    expect(p2mBad.tables[0]?.differences).toEqual([{ pk: ['9'], key: 'id=9', kind: 'changed' }]);
  }, 240_000);

  it('an unmappable or incompatible column type is refused with APPLY_TYPE_MAP naming table, column and type', async () => {
    const entries = (e: Entry[]): AsyncIterable<JournalItem> =>
      (async function* () {
        let lsn = 1n;
        for (const entry of e) yield { lsn: lsn++, entry };
      })();
    const commit = (source: string, seq: bigint, position: Parameters<typeof sequencePosition>[1] | null): Entry => ({
      kind: 'commit',
      source,
      seq,
      txId: 'x',
      position:
        position === null
          ? { kind: 'mysql', binlog: { file: 'b.000001', offset: 4n } }
          : sequencePosition('postgres', position),
      commitTimeUs: 0n,
      captureTimeUs: 0n,
      rowCount: 1n,
      phase: 'stream',
    });
    // PostgreSQL int[] → MariaDB: no mapping.
    await myDst.query('CREATE TABLE xp.arr (id INT PRIMARY KEY, a LONGTEXT)');
    const toMy = await mysqlTarget.applier({ target: myTarget(), source: 'pgsrc2', sourceKind: 'postgres', log });
    await toMy.open();
    const arr: Entry = {
      kind: 'rows',
      source: 'pgsrc2',
      seq: 1n,
      txId: 'x',
      schema: 'xp',
      table: 'arr',
      op: 'insert',
      columns: [
        { name: 'id', type: 'int4', columnType: 'integer' },
        { name: 'a', type: '_int4', columnType: 'integer[]' },
      ],
      pk: ['id'],
      rows: [{ before: null, after: ['1', '{1,2}'] }],
    };
    const e1 = await toMy.run(entries([arr, commit('pgsrc2', 2n, 100n)]), {}).then(
      () => null,
      (e: TidemarkError) => e,
    );
    await toMy.close();
    expect(e1?.code).toBe('APPLY_TYPE_MAP');
    expect(e1?.message).toContain('table xp.arr column a has type integer[]');
    expect(Number(((await myDst.query('SELECT COUNT(*) AS n FROM xp.arr'))[0] as { n: unknown }[])[0]?.n)).toBe(0);

    // MariaDB BIGINT UNSIGNED onto a PostgreSQL bigint column: incompatible; GEOMETRY: no mapping.
    await pgDst.query(
      'CREATE TABLE xs.narrow (id integer PRIMARY KEY, u bigint); CREATE TABLE xs.geo (id integer PRIMARY KEY, g bytea);',
    );
    await pgDst.query('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA xs TO tidemark_apply');
    for (const [table, col, expected] of [
      [
        'narrow',
        { name: 'u', type: 'bigint', columnType: 'bigint unsigned', unsigned: true },
        "the PostgreSQL target's type bigint does not hold the source's bigint unsigned exactly; ALTER it to numeric(20,0)",
      ],
      ['geo', { name: 'g', type: 'point', columnType: 'point' }, 'table xs.geo column g has type point'],
    ] as const) {
      const toPg = await postgresTarget.applier({
        target: pgTarget(),
        source: `mysrc-${table}`,
        sourceKind: 'mysql',
        log,
      });
      await toPg.open();
      const e: Entry = {
        kind: 'rows',
        source: `mysrc-${table}`,
        seq: 1n,
        txId: 'x',
        schema: 'xs',
        table,
        op: 'insert',
        columns: [{ name: 'id', type: 'int', columnType: 'int' }, col],
        pk: ['id'],
        rows: [{ before: null, after: [1n, table === 'geo' ? new Uint8Array([1]) : 18446744073709551615n] }],
      };
      const err = await toPg.run(entries([e, commit(`mysrc-${table}`, 2n, null)]), {}).then(
        () => null,
        (x: TidemarkError) => x,
      );
      await toPg.close();
      expect(err?.code, table).toBe('APPLY_TYPE_MAP');
      expect(err?.message).toContain(expected);
    }
    expect((await pgDst.query('SELECT count(*)::int AS n FROM xs.narrow')).rows[0]?.['n']).toBe('0');

    // A table missing on the PostgreSQL target: the error names the CREATE TABLE of the mapped types, which works.
    const absent = (n: bigint): Entry => ({
      kind: 'rows',
      source: 'mysrc-absent',
      seq: n,
      txId: 'x',
      schema: 'xs',
      table: 'absent',
      op: 'insert',
      columns: [
        { name: 'id', type: 'bigint', columnType: 'bigint unsigned', unsigned: true },
        { name: 'at', type: 'timestamp', columnType: 'timestamp(6)' },
        { name: 'e', type: 'enum', columnType: "enum('a','b')" },
      ],
      pk: ['id'],
      rows: [{ before: null, after: [18446744073709551615n, '2038-01-19 03:14:07.999999', 'b'] }],
    });
    const applyAbsent = async () => {
      const a = await postgresTarget.applier({ target: pgTarget(), source: 'mysrc-absent', sourceKind: 'mysql', log });
      await a.open();
      try {
        return await a.run(entries([absent(1n), commit('mysrc-absent', 2n, null)]), {}).then(
          () => null,
          (x: TidemarkError) => x,
        );
      } finally {
        await a.close();
      }
    };
    // MariaDB DDL while streaming is not translated: refused, naming the statement.
    const ddlApplier = await postgresTarget.applier({
      target: pgTarget(),
      source: 'mysrc-ddl',
      sourceKind: 'mysql',
      log,
    });
    await ddlApplier.open();
    const alter: Entry = {
      kind: 'ddl',
      source: 'mysrc-ddl',
      seq: 1n,
      txId: '0-1-9',
      schema: 'xs',
      tables: [],
      sql: 'ALTER TABLE t ADD c INT',
    };
    const ddlErr = await ddlApplier.run(entries([alter, commit('mysrc-ddl', 2n, null)]), {}).then(
      () => null,
      (x: TidemarkError) => x,
    );
    await ddlApplier.close();
    expect(ddlErr?.code).toBe('APPLY_TYPE_MAP');
    expect(ddlErr?.message).toContain('ALTER TABLE t ADD c INT');
    const missing = await applyAbsent();
    expect(missing?.code).toBe('APPLY_BAD_ENTRY');
    const ddl = /for this MariaDB table: (CREATE TABLE .*)$/.exec(missing?.message ?? '')?.[1];
    expect(ddl).toBe(
      'CREATE TABLE "xs"."absent" ("id" numeric(20,0), "at" timestamp(6) with time zone, "e" text, PRIMARY KEY ("id"))',
    );
    await pgDst.query(`${ddl}; GRANT SELECT, INSERT, UPDATE, DELETE ON xs.absent TO tidemark_apply`);
    expect(await applyAbsent()).toBeNull();
    expect((await pgDst.query('SELECT id::text, at::text, e FROM xs.absent')).rows).toEqual([
      { id: '18446744073709551615', at: '2038-01-19 03:14:07.999999+00', e: 'b' },
    ]);
  }, 60_000);
});
