/**
 * Spatial columns end to end through the real CLI on MariaDB 10.11 (issue #16, item 4): GEOMETRY, POINT,
 * LINESTRING, POLYGON, MULTIPOINT, MULTILINESTRING, MULTIPOLYGON and GEOMETRYCOLLECTION values with non-zero
 * SRIDs and NULLs, a SPATIAL index, in the baseline and in the stream (INSERT, UPDATE of geometry columns, a table
 * created mid-stream), each time equal by `tidemark verify` AND by a direct `ST_AsWKB(c), ST_SRID(c)` comparison
 * of both servers; verify tells a value that differs only by its SRID; rewind and forward over a geometry change,
 * and undo of one, put the exact values back (undo leaves the replica held, so that test is last).
 */
import type { ChildProcess } from 'node:child_process';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin } from '../fixtures/mariadb.ts';
import {
  caughtUpWhileRunning,
  createTopology,
  runCli,
  startRun,
  type Topology,
  stopTopology,
} from '../fixtures/topology.ts';
import { verifyJson } from '../fixtures/verify-json.ts';

const NAME = 'spGeo';
const SRC_PORT = 3720;
const REP_PORT = 3721;

type Rows = mysql.RowDataPacket[];

let t: Topology;
let child: ChildProcess;
let src: mysql.Connection;
let rep: mysql.Connection;

const GEO_COLUMNS = ['g', 'p', 'l', 'q', 'mp', 'ml', 'mq', 'gc'];

const SETUP = [
  'CREATE DATABASE geo',
  `CREATE TABLE geo.shapes (id INT PRIMARY KEY, g GEOMETRY, p POINT REF_SYSTEM_ID=4326, l LINESTRING, q POLYGON,
     mp MULTIPOINT, ml MULTILINESTRING, mq MULTIPOLYGON, gc GEOMETRYCOLLECTION)`,
  `CREATE TABLE geo.places (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL, p POINT REF_SYSTEM_ID=4326 NOT NULL,
     SPATIAL INDEX sp (p)) ENGINE=InnoDB`,
];

/** One row of every geometry type; `srid` for all of them, and a few NULLs when `nulls`. */
function shapeRow(id: number, srid: number, nulls: boolean): string {
  const g = (wkt: string) => `ST_GeomFromText('${wkt}', ${srid})`;
  const k = id * 0.1; // non-round coordinates: every bit must survive
  const vals = [
    g(`LINESTRING(${k} -${k}, 1e300 -1e-300, 3 4)`),
    g(`POINT(${k} ${-k})`),
    g(`LINESTRING(0 0, ${k} ${k}, 0.1 0.2)`),
    g(`POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (1 1, 2 1, 2 ${1 + k}, 1 1))`),
    g(`MULTIPOINT(1 1, ${k} 2, -3 -0.30000000000000004)`),
    g(`MULTILINESTRING((0 0, 1 1), (2 2, ${k} 3))`),
    g(`MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 ${5 + k}, 5 5)))`),
    id % 2
      ? g(`GEOMETRYCOLLECTION(POINT(${k} 1), LINESTRING(0 0, 1 1), POLYGON((0 0, 1 0, 1 1, 0 0)))`)
      : g('GEOMETRYCOLLECTION EMPTY'),
  ];
  if (nulls) for (const i of [0, 3, 7]) vals[i] = 'NULL';
  return `(${id}, ${vals.join(', ')})`;
}

async function insertShapes(c: mysql.Connection, ids: number[]): Promise<void> {
  const rows = ids.map((id, i) => shapeRow(id, [4326, 3857, 0, 2154][i % 4]!, i % 3 === 2));
  await c.query(`INSERT INTO geo.shapes VALUES ${rows.join(', ')}`);
}

async function insertPlaces(c: mysql.Connection, table: string, ids: number[]): Promise<void> {
  const rows = ids.map((id) => `(${id}, 'p${id}', ST_GeomFromText('POINT(${id / 7} ${-id / 3})', 4326))`);
  await c.query(`INSERT INTO geo.${table} VALUES ${rows.join(', ')}`);
}

/** Every row of a table as `id|HEX(ST_AsWKB(c))|ST_SRID(c)|…` text, the direct comparison of the acceptance. */
async function contents(c: mysql.Connection, table: string, cols: readonly string[]): Promise<string[]> {
  const list = cols.map((n) => `HEX(ST_AsWKB(\`${n}\`)), ST_SRID(\`${n}\`)`).join(', ');
  const [rows] = await c.query<Rows>({ sql: `SELECT id, ${list} FROM geo.${table} ORDER BY id`, rowsAsArray: true });
  return (rows as unknown as unknown[][]).map((r) => r.map((v) => (v === null ? 'NULL' : String(v))).join('|'));
}

async function expectSame(table: string, cols: readonly string[], minRows: number): Promise<void> {
  const a = await contents(src, table, cols);
  expect(a.length, table).toBeGreaterThanOrEqual(minRows);
  expect(await contents(rep, table, cols), table).toEqual(a);
}

/** The declared SRIDs of the spatial columns (REF_SYSTEM_ID), as `table.column=srid`. */
async function declaredSrids(c: mysql.Connection): Promise<string[]> {
  const [rows] = await c.query<Rows>(
    "SELECT CONCAT(G_TABLE_NAME, '.', G_GEOMETRY_COLUMN, '=', SRID) AS d FROM information_schema.GEOMETRY_COLUMNS " +
      "WHERE G_TABLE_SCHEMA = 'geo' ORDER BY 1",
  );
  return rows.map((r) => String(r['d']));
}

async function expectVerifyEqual(tables: string[]): Promise<void> {
  const v = await verifyJson(t);
  expect(v.out.targets[0]?.tables.map((x) => x.table)).toEqual(expect.arrayContaining(tables));
  expect(v.out.equal, JSON.stringify(v.out)).toBe(true);
  expect(v.code).toBe(0);
}

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['geo.*'] });
  src = await admin(SRC_PORT);
  rep = await admin(REP_PORT);
  for (const s of SETUP) await src.query(s);
  await insertShapes(src, [1, 2, 3, 4, 5, 6]);
  await insertPlaces(src, 'places', [1, 2, 3]);
  child = startRun(t.config);
  await caughtUpWhileRunning(t, child, 90_000);
}, 180_000);

afterAll(async () => {
  await stopTopology(child, [src, rep], NAME);
});

describe('spatial columns', () => {
  it('the baseline copies every geometry type exactly (SRIDs, NULLs, a SPATIAL index table)', async () => {
    const [[s]] = (await src.query('SELECT COUNT(DISTINCT ST_SRID(g)) AS n FROM geo.shapes')) as unknown as [Rows];
    expect(Number(s?.['n'])).toBeGreaterThanOrEqual(3); // several SRIDs, non-zero ones among them
    await expectSame('shapes', GEO_COLUMNS, 6);
    await expectSame('places', ['p'], 3);
    // The columns' declared SRIDs too (not in SHOW CREATE TABLE: the baseline puts them back).
    const srids = await declaredSrids(src);
    expect(srids).toEqual(expect.arrayContaining(['places.p=4326', 'shapes.p=4326', 'shapes.g=0']));
    expect(await declaredSrids(rep)).toEqual(srids);
    await expectVerifyEqual(['shapes', 'places']);
  }, 120_000);

  it('the stream applies INSERTs and UPDATEs of geometry columns, and a spatial table created mid-stream', async () => {
    await insertShapes(src, [7, 8, 9, 10]);
    await src.query("UPDATE geo.shapes SET p = ST_GeomFromText('POINT(-1.25 7.000000000000001)', 3857) WHERE id = 1");
    await src.query(
      "UPDATE geo.shapes SET g = NULL, gc = ST_GeomFromText('GEOMETRYCOLLECTION(POINT(9 9))', 4326) WHERE id = 2",
    );
    await src.query("UPDATE geo.shapes SET g = ST_GeomFromText('POINT(5 5)', 27700) WHERE id = 3"); // NULL → value
    await src.query('UPDATE geo.shapes SET q = ST_GeomFromWKB(ST_AsWKB(q), 4326) WHERE id = 5'); // only the SRID
    await src.query('DELETE FROM geo.shapes WHERE id = 6');
    await src.query("UPDATE geo.places SET p = ST_GeomFromText('POINT(0.5 0.25)', 4326) WHERE id = 2");
    await src.query(
      'CREATE TABLE geo.mid (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL, p POINT REF_SYSTEM_ID=4326 NOT NULL, SPATIAL INDEX (p))',
    );
    await insertPlaces(src, 'mid', [1, 2, 3, 4]);
    await src.query("UPDATE geo.mid SET p = ST_GeomFromText('POINT(1e-7 -1e7)', 4326) WHERE id = 1");
    await src.query('DELETE FROM geo.mid WHERE id = 4');
    await caughtUpWhileRunning(t, child, 60_000);
    await expectSame('shapes', GEO_COLUMNS, 9);
    await expectSame('places', ['p'], 3);
    await expectSame('mid', ['p'], 3);
    expect(await declaredSrids(rep)).toEqual(await declaredSrids(src));
    const [[one]] = (await rep.query(
      'SELECT ST_AsText(p) AS p, ST_SRID(p) AS s FROM geo.shapes WHERE id = 1',
    )) as unknown as [Rows];
    expect(one).toEqual({ p: 'POINT(-1.25 7.000000000000001)', s: 3857 });
    await expectVerifyEqual(['shapes', 'places', 'mid']);
  }, 120_000);

  it('verify tells a geometry that differs only by its SRID', async () => {
    await rep.query('UPDATE geo.places SET p = ST_GeomFromWKB(ST_AsWKB(p), 0) WHERE id = 3');
    try {
      const v = await verifyJson(t, ['--table', 'geo.places']);
      expect(v.out.equal).toBe(false);
      expect(v.code).toBe(3);
      expect(v.out.targets[0]?.tables[0]?.differences).toEqual([
        expect.objectContaining({ key: 'id=3', kind: 'changed' }),
      ]);
    } finally {
      await rep.query('UPDATE geo.places SET p = ST_GeomFromWKB(ST_AsWKB(p), 4326) WHERE id = 3');
    }
  }, 60_000);

  it('rewind takes a geometry change back exactly, and forward --to-head redoes it', async () => {
    const before = await contents(rep, 'shapes', GEO_COLUMNS);
    await src.query(
      "UPDATE geo.shapes SET gc = ST_GeomFromText('GEOMETRYCOLLECTION(POINT(-7 7))', 3857), p = NULL WHERE id IN (3, 7)",
    );
    await caughtUpWhileRunning(t, child, 60_000);
    const after = await contents(src, 'shapes', GEO_COLUMNS);
    expect(after).not.toEqual(before);
    expect(await contents(rep, 'shapes', GEO_COLUMNS)).toEqual(after);
    const back = await runCli(['rewind', '-c', t.config, '--target', 'replica', '--steps', '1']);
    expect(back.code, `${back.stdout}\n${back.stderr}`).toBe(0);
    expect(await contents(rep, 'shapes', GEO_COLUMNS)).toEqual(before);
    const fwd = await runCli(['forward', '-c', t.config, '--target', 'replica', '--to-head']);
    expect(fwd.code, `${fwd.stdout}\n${fwd.stderr}`).toBe(0);
    await caughtUpWhileRunning(t, child, 60_000);
    expect(await contents(rep, 'shapes', GEO_COLUMNS)).toEqual(after);
    await expectVerifyEqual(['shapes']);
  }, 120_000);

  it('undo of a geometry change puts the exact value back (the replica stays held afterwards)', async () => {
    const before = await contents(rep, 'shapes', GEO_COLUMNS);
    await src.query(
      "UPDATE geo.shapes SET p = ST_GeomFromText('POINT(42 43)', 0), mq = NULL, l = ST_GeomFromText('LINESTRING(1 1, 2 2)', 3857) WHERE id IN (1, 4)",
    );
    const [[g]] = (await src.query('SELECT @@last_gtid AS g')) as unknown as [Rows];
    await caughtUpWhileRunning(t, child, 60_000);
    expect(await contents(rep, 'shapes', GEO_COLUMNS)).toEqual(await contents(src, 'shapes', GEO_COLUMNS));
    const r = await runCli(['undo', '-c', t.config, '--target', 'replica', '--tx', String(g?.['g'])]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(await contents(rep, 'shapes', GEO_COLUMNS)).toEqual(before);
  }, 90_000);
});
