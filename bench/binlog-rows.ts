/**
 * Evaluation for issue #15 (not a product path): what one MariaDB server spends to change the same `rows` rows
 *
 *   sql       the guarded multi-row UPDATEs tidemark's undo sends (mysql/batch-sql.ts form: a value list joined by
 *             key, every column held with <=>, 500 rows a statement, ~2 MiB a query), the matched count checked
 *   binlog    the same change as binary row events (Table_map + Update_rows v1) in `BINLOG '…'` statements, the
 *             form mariadb-binlog --flashback and native replication hand the server; unguarded: the server
 *             finds each row by its primary key and writes the after image without comparing the rest
 *   readback  what a row-event path would add to be guarded: the rows read back `FOR UPDATE` by key (1000 keys a
 *             statement) and compared with the expected images here
 *
 * One server, one table (INT key, VARCHAR(64), DECIMAL(12,2), DATETIME(6), BIGINT NULL); the table is put back into
 * the "bad" state between contenders (not timed) and InnoDB's purge drained. Per contender: wall, the server's CPU
 * (/proc of mariadbd) and this process's CPU. The row-event encoder here covers these five types only: it is a
 * measurement, not the encoder a binlog-endpoint mode would need.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type mysql from 'mysql2/promise';
import { admin, startInstance, stopInstance } from '../test/fixtures/mariadb.ts';
import { cpuMs } from '../test/fixtures/proc-tree.ts';
import { purgeDrained } from './rewind.ts';
import { serverPid } from './spine.ts';

const NAME = 'binlogrows';
const PORT = 3895;
const DB = 'brw';
const TABLE = `\`${DB}\`.\`t\``;
const SQL_ROWS = 500;
const PIPE_BYTES = 2 << 20;
const EVENT_BYTES = 64 << 10;
const BINLOG_BYTES = 1 << 20;

export interface BinlogRowsOptions {
  rows: number;
  rounds: number;
  log: (s: string) => void;
}

interface Row {
  id: number;
  a: string;
  /** DECIMAL(12,2) as whole cents. */
  cents: number;
  /** DATETIME(6): microseconds since 2024-01-01 00:00:00. */
  us: number;
  d: bigint | null;
}

const good = (id: number): Row => ({
  id,
  a: `row-${id}-${'x'.repeat(id % 20)}`,
  cents: id * 37,
  us: id * 1234,
  d: BigInt(id) * 1000003n,
});
const bad = (id: number): Row => ({ ...good(id), a: `${good(id).a}-bad`, cents: id * 37 + 100, d: null });

const decimalText = (cents: number) => `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
const BASE_MS = Date.UTC(2024, 0, 1);
function datetimeParts(us: number) {
  const t = new Date(BASE_MS + Math.floor(us / 1000));
  return {
    y: t.getUTCFullYear(),
    mo: t.getUTCMonth() + 1,
    d: t.getUTCDate(),
    h: t.getUTCHours(),
    mi: t.getUTCMinutes(),
    s: t.getUTCSeconds(),
    frac: us % 1_000_000,
  };
}
function datetimeText(us: number): string {
  const p = datetimeParts(us);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${p.y}-${two(p.mo)}-${two(p.d)} ${two(p.h)}:${two(p.mi)}:${two(p.s)}.${String(p.frac).padStart(6, '0')}`;
}
const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
const tuple = (r: Row) => `(${r.id},${q(r.a)},${decimalText(r.cents)},'${datetimeText(r.us)}',${r.d ?? 'NULL'})`;

// ── (a) the guarded SQL, as rollback/guard.ts + mysql/batch-sql.ts write it ──

function guardedStatement(ids: readonly number[]): string {
  const rows = ids.map((id) => {
    const cur = bad(id);
    const next = good(id);
    return `(${id},${q(cur.a)},${decimalText(cur.cents)},'${datetimeText(cur.us)}',${cur.d ?? 'NULL'},${q(next.a)},${decimalText(next.cents)},${next.d ?? 'NULL'})`;
  });
  return (
    `UPDATE (WITH v(k0,c0,c1,c2,c3,n0,n1,n2) AS (VALUES (NULL,(SELECT \`a\` FROM ${TABLE} WHERE 0),NULL,NULL,NULL,NULL,NULL,NULL),\n` +
    `${rows.join(',\n')}) SELECT * FROM v) v STRAIGHT_JOIN ${TABLE} ON ${TABLE}.\`id\` = v.k0 AND ${TABLE}.\`a\` <=> v.c0 ` +
    `AND ${TABLE}.\`b\` <=> v.c1 AND ${TABLE}.\`c\` <=> v.c2 AND ${TABLE}.\`d\` <=> v.c3 ` +
    `SET ${TABLE}.\`a\` = v.n0, ${TABLE}.\`b\` = v.n1, ${TABLE}.\`d\` = v.n2`
  );
}

async function runSql(c: mysql.Connection, rows: number): Promise<void> {
  let batch: string[] = [];
  let bytes = 0;
  let expect = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const [res] = await c.query(batch.join(';\n'));
    const all = (Array.isArray(res) ? res : [res]) as { affectedRows: number }[];
    const matched = all.reduce((n, r) => n + r.affectedRows, 0);
    if (matched !== expect) throw new Error(`guarded UPDATEs matched ${matched} of ${expect} rows`);
    batch = [];
    bytes = 0;
    expect = 0;
  };
  for (let from = rows; from >= 1; from -= SQL_ROWS) {
    const ids: number[] = [];
    for (let id = from; id > Math.max(0, from - SQL_ROWS); id--) ids.push(id);
    const s = guardedStatement(ids);
    batch.push(s);
    bytes += s.length;
    expect += ids.length;
    if (bytes >= PIPE_BYTES) await flush();
  }
  await flush();
}

// ── (b) binary row events ──

const TYPES = [3 /* LONG */, 15 /* VARCHAR */, 246 /* NEWDECIMAL */, 18 /* DATETIME2 */, 8 /* LONGLONG */];
const TABLE_ID = 4242;

/** One event: the 19-byte header, the body, and a CRC32 when the server's binlog carries them. */
function event(type: number, serverId: number, body: Buffer, crc: boolean): Buffer {
  const size = 19 + body.length + (crc ? 4 : 0);
  const ev = Buffer.alloc(size);
  ev.writeUInt32LE(Math.floor(Date.now() / 1000), 0);
  ev[4] = type;
  ev.writeUInt32LE(serverId, 5);
  ev.writeUInt32LE(size, 9);
  ev.writeUInt32LE(0, 13);
  ev.writeUInt16LE(0, 17);
  body.copy(ev, 19);
  if (crc) ev.writeUInt32LE(crc32(ev.subarray(0, size - 4)), size - 4);
  return ev;
}

function tableMap(): Buffer {
  const db = Buffer.from(DB);
  const t = Buffer.from('t');
  const meta = Buffer.from([0x00, 0x01 /* VARCHAR: 256 bytes */, 12, 2 /* DECIMAL(12,2) */, 6 /* DATETIME(6) */]);
  const head = Buffer.alloc(8);
  head.writeUIntLE(TABLE_ID, 0, 6);
  head.writeUInt16LE(1, 6);
  return Buffer.concat([
    head,
    Buffer.from([db.length]),
    db,
    Buffer.from([0, t.length]),
    t,
    Buffer.from([0, TYPES.length, ...TYPES, meta.length]),
    meta,
    Buffer.from([0x10 /* d is nullable */]),
  ]);
}

const dig2bytes = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/** DECIMAL(12,2), non-negative: 1 leading digit, one 9-digit group, 2 fraction digits (6 bytes). */
function putDecimal(b: Buffer, at: number, cents: number): number {
  const int = Math.floor(cents / 100);
  b[at] = Math.floor(int / 1e9) & 0xff;
  b.writeUInt32BE(int % 1e9, at + dig2bytes[1]!);
  b[at + 5] = cents % 100;
  b[at] = b[at]! ^ 0x80;
  return at + 6;
}

function putDatetime(b: Buffer, at: number, us: number): number {
  const p = datetimeParts(us);
  const ymd = ((p.y * 13 + p.mo) << 5) | p.d;
  const hms = (p.h << 12) | (p.mi << 6) | p.s;
  const packed = ymd * 2 ** 17 + hms + 2 ** 39;
  b.writeUIntBE(packed, at, 5);
  b.writeUIntBE(p.frac, at + 5, 3);
  return at + 8;
}

function putRow(b: Buffer, at: number, r: Row): number {
  let o = at;
  b[o++] = r.d === null ? 0x10 : 0;
  b.writeInt32LE(r.id, o);
  o += 4;
  const n = b.write(r.a, o + 2, 'utf8');
  b.writeUInt16LE(n, o);
  o += 2 + n;
  o = putDecimal(b, o, r.cents);
  o = putDatetime(b, o, r.us);
  if (r.d !== null) {
    b.writeBigInt64LE(r.d, o);
    o += 8;
  }
  return o;
}

/** BINLOG statements for rows `rows` down to 1 (newest first, as an undo): bad image → good image. */
function* binlogStatements(fde: string, serverId: number, rows: number, crc: boolean): Generator<string> {
  const map = event(19, serverId, tableMap(), crc);
  let id = rows;
  while (id >= 1) {
    const events: Buffer[] = [map];
    let size = map.length;
    while (id >= 1 && size < BINLOG_BYTES) {
      const buf = Buffer.alloc(EVENT_BYTES + 256);
      buf.writeUIntLE(TABLE_ID, 0, 6);
      buf.writeUInt16LE(0, 6);
      buf[8] = TYPES.length;
      buf[9] = 0x1f;
      buf[10] = 0x1f;
      let o = 11;
      while (id >= 1 && o < EVENT_BYTES) {
        o = putRow(buf, o, bad(id));
        o = putRow(buf, o, good(id));
        id--;
      }
      const last = id < 1 || size + o >= BINLOG_BYTES;
      if (last) buf.writeUInt16LE(1 /* STMT_END_F */, 6);
      const ev = event(24, serverId, buf.subarray(0, o), crc);
      events.push(ev);
      size += ev.length;
    }
    yield `BINLOG '${fde}';\nBINLOG '${Buffer.concat(events).toString('base64')}'`;
  }
}

/** The server's own Format_description event (the first event of its first binlog), base64, and its checksum. */
async function serverFde(c: mysql.Connection): Promise<{ fde: string; crc: boolean; serverId: number }> {
  const [r] = await c.query<mysql.RowDataPacket[]>(
    'SELECT @@log_bin_basename AS b, @@server_id AS id, @@binlog_checksum AS ck',
  );
  const [logs] = await c.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  const file = join(String(r[0]!['b']).replace(/[^/]*$/, ''), String(logs[0]!['Log_name']));
  const bytes = readFileSync(file);
  const size = bytes.readUInt32LE(4 + 9);
  return {
    fde: bytes.subarray(4, 4 + size).toString('base64'),
    crc: String(r[0]!['ck']) === 'CRC32',
    serverId: Number(r[0]!['id']),
  };
}

async function runBinlog(c: mysql.Connection, rows: number): Promise<void> {
  const { fde, crc, serverId } = await serverFde(c);
  for (const s of binlogStatements(fde, serverId, rows, crc)) await c.query(s);
}

// ── (c) the guard a row-event path would need: a locked read-back ──

async function runReadback(c: mysql.Connection, rows: number): Promise<void> {
  for (let from = 1; from <= rows; from += 1000) {
    const ids: number[] = [];
    for (let id = from; id < Math.min(rows + 1, from + 1000); id++) ids.push(id);
    const [got] = await c.query<mysql.RowDataPacket[]>(
      `SELECT id, a, b, c, d FROM ${TABLE} WHERE id IN (${ids.join(',')}) FOR UPDATE`,
    );
    if (got.length !== ids.length) throw new Error(`read back ${got.length} of ${ids.length} rows`);
    for (const g of got) {
      const e = bad(Number(g['id']));
      const same =
        g['a'] === e.a &&
        g['b'] === decimalText(e.cents) &&
        g['c'] === datetimeText(e.us) &&
        (g['d'] === null ? e.d === null : e.d !== null && BigInt(g['d'] as string) === e.d);
      if (!same) throw new Error(`row ${String(g['id'])} is not in the expected state`);
    }
  }
}

// ── the run ──

async function checksum(c: mysql.Connection): Promise<string> {
  const [r] = await c.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE ${TABLE}`);
  return String(r[0]!['Checksum']);
}

interface Measured {
  wall_s: number;
  server_cpu_s: number;
  client_cpu_s: number;
}

async function timed(pid: number, fn: () => Promise<void>): Promise<Measured> {
  const s0 = cpuMs(pid);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) / 1000;
  const c1 = process.cpuUsage(c0);
  return {
    wall_s: wall,
    server_cpu_s: (cpuMs(pid) - s0) / 1000,
    client_cpu_s: (c1.user + c1.system) / 1e6,
  };
}

async function fill(c: mysql.Connection, rows: number, image: (id: number) => Row): Promise<void> {
  await c.query(`TRUNCATE TABLE ${TABLE}`);
  for (let from = 1; from <= rows; from += 2000) {
    const t: string[] = [];
    for (let id = from; id < Math.min(rows + 1, from + 2000); id++) t.push(tuple(image(id)));
    await c.query(`INSERT INTO ${TABLE} (id, a, b, c, d) VALUES ${t.join(',')}`);
  }
}

export async function benchBinlogRows(o: BinlogRowsOptions) {
  startInstance(NAME, PORT, { fresh: true });
  const c = await admin(PORT);
  try {
    await c.query(`CREATE DATABASE ${DB}`);
    await c.query(
      `CREATE TABLE ${TABLE} (id INT NOT NULL PRIMARY KEY, a VARCHAR(64) NOT NULL, b DECIMAL(12,2) NOT NULL, c DATETIME(6) NOT NULL, d BIGINT NULL) CHARSET utf8mb4`,
    );
    await fill(c, o.rows, good);
    const goodSum = await checksum(c);
    await fill(c, o.rows, bad);
    const badSum = await checksum(c);
    const pid = await serverPid(c);
    const out: Record<string, Measured[]> = { sql: [], binlog: [], readback: [] };
    for (let round = 1; round <= o.rounds; round++) {
      for (const [name, fn] of [
        ['sql', runSql],
        ['binlog', runBinlog],
        ['readback', runReadback],
      ] as const) {
        if ((await checksum(c)) !== badSum) await fill(c, o.rows, bad);
        await purgeDrained(c);
        await c.query('START TRANSACTION');
        const m = await timed(pid, async () => {
          await fn(c, o.rows);
          await c.query(name === 'readback' ? 'ROLLBACK' : 'COMMIT');
        });
        const sum = await checksum(c);
        const want = name === 'readback' ? badSum : goodSum;
        if (sum !== want) throw new Error(`${name}: the table does not hold the expected rows afterwards`);
        out[name]!.push(m);
        o.log(
          `round ${round} ${name}: ${m.wall_s.toFixed(2)} s wall, server CPU ${m.server_cpu_s.toFixed(2)} s, this process ${m.client_cpu_s.toFixed(2)} s`,
        );
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
    const r2 = (x: number) => Math.round(x * 100) / 100;
    const summary = Object.fromEntries(
      Object.entries(out).map(([k, ms]) => [
        k,
        {
          wall_s: r2(med(ms.map((m) => m.wall_s))),
          server_cpu_s: r2(med(ms.map((m) => m.server_cpu_s))),
          client_cpu_s: r2(med(ms.map((m) => m.client_cpu_s))),
        },
      ]),
    );
    const runs = Object.fromEntries(
      Object.entries(out).map(([k, ms]) => [
        k,
        ms.map((m) => ({ wall_s: r2(m.wall_s), server_cpu_s: r2(m.server_cpu_s), client_cpu_s: r2(m.client_cpu_s) })),
      ]),
    );
    return { benchmark: 'binlog-rows', rows: o.rows, rounds: o.rounds, median: summary, runs };
  } finally {
    await c.end().catch(() => {});
    stopInstance(NAME);
  }
}
