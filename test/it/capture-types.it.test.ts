/**
 * Every supported column type round-trips exactly, through both capture paths: the baseline (mysql2 SELECT)
 * and the binlog stream (zongji). Captured values are compared with explicit expectations and with what a
 * plain mysql2 SELECT returns (supportBigNumbers, bigNumberStrings, dateStrings, timezone 'Z', time_zone
 * '+00:00'), normalized the same way.
 */
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowsEntry, Value } from '../../record/record.ts';
import { MysqlCapture } from '../../capture/mysql/capture.ts';
import {
  MemorySink,
  memoryLogger,
  type Row,
  rowsEntries,
  selectRows,
  sourceConfig,
  valueConnection,
} from '../fixtures/capture-kit.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';

const NAME = 'captypes';
const PORT = 3411;

const DDL = `CREATE TABLE app.types (
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
  de DECIMAL(65,30), dn DECIMAL(10,2), f FLOAT, d DOUBLE,
  dt DATE, dt0 DATETIME, dt1 DATETIME(1), dt2 DATETIME(2), dt3 DATETIME(3), dt4 DATETIME(4), dt5 DATETIME(5),
  dt6 DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), tm0 TIME, y YEAR,
  c CHAR(5), vc VARCHAR(50), tx TEXT, b BINARY(4), vb VARBINARY(10), bl BLOB,
  b1 BIT(1), b64 BIT(64), e ENUM('a','b,c','d''q'), st SET('x','y','z'), j JSON
) DEFAULT CHARSET=utf8mb4`;

const COLS =
  'ti,tu,si,su,mi,mu,i,iu,bi,bu,de,dn,f,d,dt,dt0,dt1,dt2,dt3,dt4,dt5,dt6,ts,tm,tm0,y,c,vc,tx,b,vb,bl,b1,b64,e,st,j';

/** Value sets as SQL literals, inserted once for the baseline (ids 1..4) and once for the stream (ids 11..14). */
const SETS: string[] = [
  // minimums and empties
  `-128,0,-32768,0,-8388608,0,-2147483648,0,-9223372036854775808,0,
   '-99999999999999999999999999999999999.999999999999999999999999999999',-99999999.99,-3.40282e38,
   -1.7976931348623157e308,'1000-01-01','1000-01-01 00:00:00','1000-01-01 00:00:00.0','1000-01-01 00:00:00.00',
   '1000-01-01 00:00:00.000','1000-01-01 00:00:00.0000','1000-01-01 00:00:00.00000','1000-01-01 00:00:00.000000',
   '1970-01-01 05:00:01.000000','-838:59:59.000000','-838:59:59',1901,'','','',x'00000000',x'',x'',b'0',b'0',
   'a','','[]'`,
  // maximums, emoji, bytes with 0x00
  `127,255,32767,65535,8388607,16777215,2147483647,4294967295,9223372036854775807,18446744073709551615,
   '99999999999999999999999999999999999.999999999999999999999999999999',99999999.99,3.40282e38,
   1.7976931348623157e308,'9999-12-31','9999-12-31 23:59:59','9999-12-31 23:59:59.9','9999-12-31 23:59:59.99',
   '9999-12-31 23:59:59.999','9999-12-31 23:59:59.9999','9999-12-31 23:59:59.99999','9999-12-31 23:59:59.999999',
   '2038-01-19 03:14:07.999999','838:59:59.000000','838:59:59',2155,'ab😀c','h😀é✓ 𝄞 中文',REPEAT('😀',300),
   x'00ff0000',x'000102',x'00ff00',b'1',b'1111111111111111111111111111111111111111111111111111111111111111',
   'b,c','x,z','{"a": [1, 2.50, "x"], "big": 12345678901234567890}'`,
  // in-between values: fractions, negative TIME, YEAR 0000, 2^53+1, float needing 7 digits
  `-1,1,-1,1,-1,1,-1,1,9007199254740993,9007199254740993,
   '0.000000000000000000000000000001',-0.5,0.1234567,0.30000000000000004,'2024-02-29','2024-02-29 12:34:56',
   '2024-02-29 12:34:56.1','2024-02-29 12:34:56.12','2024-02-29 12:34:56.123','2024-02-29 12:34:56.1234',
   '2024-02-29 12:34:56.12345','2024-02-29 12:34:56.000001','2024-06-01 12:00:00.123456','-00:00:00.000001',
   '-01:02:03',0,'a',' lead','tab\\tnl\\n',x'ffffffff',x'00',x'000000',b'1',b'1000000000000000000000000000000000000000000000000000000000000001',
   'd''q','x,y,z','{"k": "v\\\\u00e9", "n": null}'`,
  // NULL in every column
  Array.from({ length: 37 }, () => 'NULL').join(','),
];

let conn: mysql.Connection;

const selectConn = () => valueConnection(PORT);

async function insertSet(id: number, set: string): Promise<void> {
  // TIMESTAMP literals are written in a +05:00 session for the third set: capture must still give UTC.
  await conn.query(`INSERT INTO app.types (id, ${COLS}) VALUES (${id}, ${set})`);
}

function rowObjects(entries: RowsEntry[]): Map<bigint, Row> {
  const out = new Map<bigint, Row>();
  for (const e of entries) {
    for (const r of e.rows) {
      const values = r.after ?? r.before!;
      const row: Row = {};
      e.columns.forEach((c, i) => {
        row[c.name] = values[i] ?? null;
      });
      out.set(row['id'] as bigint, row);
    }
  }
  return out;
}

function withoutId(r: Row | undefined): Row {
  const { id: _id, ...rest } = r ?? {};
  return rest;
}

describe('capture: every type round-trips exactly', () => {
  const sink = new MemorySink();
  const ac = new AbortController();
  let run: Promise<void>;

  beforeAll(async () => {
    startInstance(NAME, PORT);
    const a = await admin(PORT);
    await resetSchemas(a);
    await a.end();
    conn = await selectConn();
    await conn.query('CREATE DATABASE app');
    await conn.query(DDL);
    await conn.query("SET time_zone = '+05:00'");
    for (const [i, s] of SETS.entries()) await insertSet(i + 1, s);
    const { log } = memoryLogger('warn');
    const capture = new MysqlCapture({ source: sourceConfig(PORT), sink, resume: null, log });
    run = capture.run(ac.signal);
    await sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    for (const [i, s] of SETS.entries()) await insertSet(i + 11, s);
    await conn.query('UPDATE app.types SET vc = CONCAT(vc, "!"), ti = ti + 0 WHERE id = 12');
    await conn.query('DELETE FROM app.types WHERE id = 13');
    await conn.query("SET time_zone = '+00:00'");
    await sink.waitFor((c) => c.filter((x) => x.phase === 'stream').length >= SETS.length + 2);
  });

  afterAll(async () => {
    ac.abort();
    await run;
    await conn?.end();
    stopInstance(NAME);
  });

  it('captures the expected values', () => {
    const base = rowObjects(
      rowsEntries(
        sink.entries.filter((e) => e.txId.startsWith('baseline')),
        'types',
      ),
    );
    const r2 = base.get(2n)!;
    expect(r2['bu']).toBe(18446744073709551615n);
    expect(r2['bi']).toBe(9223372036854775807n);
    expect(base.get(1n)!['bi']).toBe(-9223372036854775808n);
    expect(r2['de']).toBe('99999999999999999999999999999999999.999999999999999999999999999999');
    expect(base.get(1n)!['de']).toBe('-99999999999999999999999999999999999.999999999999999999999999999999');
    expect(r2['b64']).toBe(2n ** 64n - 1n);
    expect(base.get(3n)!['b64']).toBe(2n ** 63n + 1n);
    expect(r2['b1']).toBe(1n);
    expect(r2['f']).toBe(3.40282e38);
    expect(base.get(3n)!['f']).toBe(0.1234567);
    expect(base.get(3n)!['d']).toBe(0.30000000000000004);
    expect(r2['d']).toBe(1.7976931348623157e308);
    expect(r2['dt6']).toBe('9999-12-31 23:59:59.999999');
    expect(base.get(3n)!['dt1']).toBe('2024-02-29 12:34:56.1');
    expect(base.get(3n)!['dt6']).toBe('2024-02-29 12:34:56.000001');
    expect(base.get(3n)!['ts']).toBe('2024-06-01 07:00:00.123456'); // written at +05:00, captured in UTC
    expect(r2['ts']).toBe('2038-01-18 22:14:07.999999');
    expect(base.get(1n)!['tm']).toBe('-838:59:59.000000');
    expect(base.get(3n)!['tm']).toBe('-00:00:00.000001');
    expect(base.get(3n)!['tm0']).toBe('-01:02:03');
    expect(base.get(3n)!['y']).toBe(0n);
    expect(r2['y']).toBe(2155n);
    expect(r2['vc']).toBe('h😀é✓ 𝄞 中文');
    expect(r2['tx']).toBe('😀'.repeat(300));
    expect(r2['b']).toEqual(new Uint8Array([0, 255, 0, 0]));
    expect(base.get(3n)!['bl']).toEqual(new Uint8Array([0, 0, 0]));
    expect(base.get(1n)!['vb']).toEqual(new Uint8Array([]));
    expect(r2['e']).toBe('b,c');
    expect(base.get(3n)!['e']).toBe("d'q");
    expect(r2['st']).toBe('x,z');
    expect(r2['j']).toBe('{"a": [1, 2.50, "x"], "big": 12345678901234567890}');
    expect(base.get(1n)!['ts']).toBe('1970-01-01 00:00:01.000000');
    expect(Object.entries(base.get(4n)!).filter(([k, v]) => k !== 'id' && v !== null)).toEqual([]);
  });

  it('stream values equal baseline values for the same inserts', () => {
    const base = rowObjects(
      rowsEntries(
        sink.entries.filter((e) => e.txId.startsWith('baseline')),
        'types',
      ),
    );
    const inserts = rowsEntries(sink.entries, 'types').filter(
      (e) => !e.txId.startsWith('baseline') && e.op === 'insert',
    );
    const stream = rowObjects(inserts);
    expect(stream.size).toBe(SETS.length);
    for (let i = 1; i <= SETS.length; i++)
      expect(withoutId(stream.get(BigInt(i + 10)))).toEqual(withoutId(base.get(BigInt(i))));
  });

  it('captured values equal what SELECT returns, for both paths', async () => {
    const selected = new Map((await selectRows(conn, 'app', 'types')).map((r) => [r['id'] as bigint, r]));
    const base = rowObjects(
      rowsEntries(
        sink.entries.filter((e) => e.txId.startsWith('baseline')),
        'types',
      ),
    );
    for (const [id, r] of base) expect(r).toEqual(selected.get(id));
    const streamEntries = rowsEntries(sink.entries, 'types').filter((e) => !e.txId.startsWith('baseline'));
    const update = streamEntries.find((e) => e.op === 'update')!;
    const after: Row = {};
    update.columns.forEach((c, i) => {
      after[c.name] = update.rows[0]!.after![i] ?? null;
    });
    expect(after).toEqual(selected.get(12n));
    const del = streamEntries.find((e) => e.op === 'delete')!;
    expect(del.rows[0]!.before![0]).toBe(13n);
    expect(del.rows[0]!.after).toBeNull();
    for (const id of [11n, 14n]) expect(rowObjects(streamEntries).get(id)).toBeDefined();
  });

  it('documents why FLOAT is read as CAST(col AS DOUBLE): plain SELECT keeps 6 digits', async () => {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT f FROM app.types WHERE id = 3');
    expect(rows[0]?.['f']).toBe(0.123457);
  });

  it('describes columns identically on both paths', () => {
    const entries = rowsEntries(sink.entries, 'types');
    const baseCols = entries.find((e) => e.txId.startsWith('baseline'))!.columns;
    const streamCols = entries.find((e) => !e.txId.startsWith('baseline'))!.columns;
    expect(streamCols).toEqual(baseCols);
    expect(baseCols.find((c) => c.name === 'bu')).toEqual({
      name: 'bu',
      type: 'bigint',
      columnType: 'bigint unsigned',
      unsigned: true,
    });
    expect(baseCols.find((c) => c.name === 'j')?.type).toBe('longtext'); // MariaDB JSON is LONGTEXT
    expect(entries.every((e) => e.pk.length === 1 && e.pk[0] === 'id')).toBe(true);
  });

  it('values are plain Uint8Array, never Buffer views', () => {
    const v: Value[] = rowsEntries(sink.entries, 'types').flatMap((e) => e.rows.flatMap((r) => [...(r.after ?? [])]));
    const bytes = v.filter((x): x is Uint8Array => x instanceof Uint8Array);
    expect(bytes.length).toBeGreaterThan(0);
    expect(bytes.some((b) => Buffer.isBuffer(b))).toBe(false);
  });
});
