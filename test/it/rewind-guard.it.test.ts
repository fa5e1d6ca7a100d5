/**
 * Guarded rewind statements against real MariaDB: redo then undo of a hand-built source transaction restores the
 * exact prior state (many column types, a backticked table name, a table without a primary key, a generated
 * column); a row changed behind tidemark's back aborts the undo and changes nothing; the script run through the
 * plain `mariadb` client gives the same result and fails the same way. Multi-row statements (batch.ts) compare
 * like the per-row ones (latin1, a case-insensitive collation, NULLs, -0, zero dates, BIT(64), a 2^64-1 key),
 * keep row order (a unique swap) and name the exact row when one fails. Instance A runs plans directly, B runs
 * the scripts. The 100k-row timings are logged (not asserted).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSession } from '../../mysql/session.ts';
import { readRows, type TableDef } from '../fixtures/apply-kit.ts';
import type { TidemarkError } from '../../core/errors.ts';
import type { RowsEntry, Value } from '../../record/record.ts';
import { executePlan } from '../../rollback/execute.ts';
import { type Direction, GuardError, guardedStatements, type PlanItem } from '../../rollback/guard.ts';
import { writeScript } from '../../rollback/script.ts';
import { ROOT_PASSWORD, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import {
  BT,
  BT_DDL,
  badTransaction,
  btTransaction,
  GENERATED,
  initialEntries,
  NOPK_DDL,
  S0_BT,
  S0_TYPES,
  S1_TYPES,
  TYPES,
  TYPES_DDL,
  txEntries,
  WEIRD_DDL,
} from '../fixtures/rewind-rows.ts';

const A = { name: 'rwguard1', port: 3501 };
const B = { name: 'rwguard2', port: 3502 };
const ep = (port: number) => ({ host: '127.0.0.1', port, user: 'root', password: ROOT_PASSWORD });
const dir = mkdtempSync(join(tmpdir(), 'tidemark-rewind-guard-'));
let a: mysql.Connection;
let b: mysql.Connection;

beforeAll(async () => {
  startInstance(A.name, A.port, { fresh: true });
  startInstance(B.name, B.port, { fresh: true });
  a = await openSession(ep(A.port), { apply: true, multipleStatements: true });
  b = await openSession(ep(B.port), { apply: true, multipleStatements: true });
});

afterAll(async () => {
  await a?.end();
  await b?.end();
  stopInstance(A.name);
  stopInstance(B.name);
  rmSync(dir, { recursive: true, force: true });
});

function mariadbClient(): string {
  for (const d of (process.env['PATH'] ?? '').split(':'))
    if (d && existsSync(join(d, 'mariadb'))) return join(d, 'mariadb');
  return '/usr/bin/mariadb';
}

/** The plain client, as a user would run it: mariadb -h… -P… -uroot -p… < file. */
function runClient(port: number, file: string, extra: string[] = []): { code: number | null; stderr: string } {
  const fd = openSync(file, 'r');
  try {
    const r = spawnSync(mariadbClient(), ['-h127.0.0.1', `-P${port}`, '-uroot', `-p${ROOT_PASSWORD}`, ...extra], {
      stdio: [fd, 'pipe', 'pipe'],
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    return { code: r.status, stderr: r.stderr };
  } finally {
    closeSync(fd);
  }
}

/** Plan items for one source transaction: entries in order (redo) or reversed (undo). */
async function* planOf(entries: readonly RowsEntry[], dir: Direction): AsyncGenerator<PlanItem> {
  const rows = entries.reduce((n, e) => n + e.rows.length, 0);
  // A hostile id: the script's comment line must not let it out.
  const txId = `${entries[0]?.txId}\n$$ DELIMITER ;\nDROP DATABASE db;\n`;
  yield { kind: 'tx', txId, commitSeq: 9999n, commitTimeUs: 1_700_000_000_123_456n, direction: dir, rows };
  for (const e of dir === 'undo' ? [...entries].reverse() : entries) {
    const skipColumns = GENERATED.get(`${e.schema}.${e.table}`);
    const opts = { flavor: 'mariadb' as const, txId: e.txId, ...(skipColumns ? { skipColumns } : {}) };
    for (const stmt of guardedStatements(e, dir, opts)) yield { kind: 'stmt', stmt };
  }
}

const direct = (conn: mysql.Connection, entries: readonly RowsEntry[], d: Direction) =>
  executePlan(conn, planOf(entries, d));

let scripts = 0;
async function viaScript(port: number, entries: readonly RowsEntry[], d: Direction, extra: string[] = []) {
  const file = join(dir, `plan-${++scripts}.sql`);
  await writeScript(file, planOf(entries, d), [`test plan ${scripts}: ${d}`]);
  return { ...runClient(port, file, extra), file };
}

/** CHECKSUM TABLE of every table in db, plus row counts. */
async function sums(conn: mysql.Connection): Promise<string> {
  const [tables] = await conn.query<mysql.RowDataPacket[]>(
    "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'db' ORDER BY TABLE_NAME",
  );
  const names = tables.map((r) => `db.\`${String(r['t']).replaceAll('`', '``')}\``);
  const [rows] = await conn.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE ${names.join(', ')} EXTENDED`);
  const counts: string[] = [];
  for (const n of names) {
    const [c] = await conn.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${n}`);
    counts.push(String(c[0]?.['n']));
  }
  return JSON.stringify([rows.map((r) => [r['Table'], String(r['Checksum'])]), counts]);
}

async function reset(conn: mysql.Connection): Promise<void> {
  await conn.query('DROP DATABASE IF EXISTS db; CREATE DATABASE db');
  for (const ddl of [TYPES_DDL, WEIRD_DDL, NOPK_DDL]) await conn.query(ddl);
  await direct(conn, initialEntries(), 'redo');
}

const types = (conn: mysql.Connection) => readRows(conn, TYPES, 'id');

describe('guarded redo and undo', () => {
  let c0 = '';
  let c1 = '';

  it('redo then undo restores the exact prior state (direct)', async () => {
    await reset(a);
    expect(await types(a)).toEqual(S0_TYPES);
    c0 = await sums(a);
    const r = await direct(a, badTransaction(), 'redo');
    expect(r).toEqual({ statements: 12, rows: 14, txs: 1 }); // the two deletes of db.types share one statement
    expect(await types(a)).toEqual(S1_TYPES);
    c1 = await sums(a);
    expect(c1).not.toBe(c0);
    await direct(a, badTransaction(), 'undo');
    expect(await types(a)).toEqual(S0_TYPES);
    expect(await sums(a)).toBe(c0);
  });

  it('the script run by the mariadb client gives the same checksums', async () => {
    await reset(b);
    expect(await sums(b)).toBe(c0);
    const redo = await viaScript(B.port, badTransaction(), 'redo');
    expect(redo.stderr).toBe('');
    expect(redo.code).toBe(0);
    expect(await types(b)).toEqual(S1_TYPES);
    expect(await sums(b)).toBe(c1);
    const undo = await viaScript(B.port, badTransaction(), 'undo');
    expect(undo.code).toBe(0);
    expect(await types(b)).toEqual(S0_TYPES);
    expect(await sums(b)).toBe(c0);
  });

  /** Brings both servers to the state after the bad transaction, then tampers with both. */
  async function tampered(sql: string): Promise<string> {
    await reset(a);
    await reset(b);
    await direct(a, badTransaction(), 'redo');
    await direct(b, badTransaction(), 'redo');
    await a.query(sql);
    await b.query(sql);
    const s = await sums(a);
    expect(await sums(b)).toBe(s);
    return s;
  }

  async function expectRefused(sql: string, message: RegExp, scriptMessage: RegExp = message): Promise<void> {
    const before = await tampered(sql);
    const err = await direct(a, badTransaction(), 'undo').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuardError);
    expect((err as GuardError).code).toBe('REWIND_GUARD');
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toMatch(/nothing was changed/);
    expect(await sums(a)).toBe(before);
    const s = await viaScript(B.port, badTransaction(), 'undo');
    expect(s.code).not.toBe(0);
    expect(s.stderr).toMatch(scriptMessage);
    expect(await sums(b)).toBe(before);
  }

  it('a row changed behind our back aborts the undo and changes nothing', async () => {
    await expectRefused(
      "UPDATE db.types SET vc = 'tampered', ou = ou WHERE id = 1",
      /^guard failed: undo update of `db`.`types` \(id=1\) at seq 14 of tx tx-1: the row is not in the state/,
      /ERROR 1644 \(45000\) at line \d+: undo update of `db`.`types` \(id=1\) at seq 14 of tx tx-1/,
    );
  });

  it('a re-inserted key fails the inverse INSERT: the server error names the statement', async () => {
    await expectRefused(
      "INSERT INTO db.types (id, ou) VALUES (5, '2000-01-01 00:00:00')",
      /^undo delete of `db`.`types` \(2 rows: id=5 ... id=4\) at seq 6..7 of tx tx-1: the server refused it: Duplicate entry '5'/,
      /ERROR 1062 \(23000\) at line \d+: Duplicate entry '5'/,
    );
  });

  it('a no-op update still proves its row exists (script: the locking existence check)', async () => {
    await expectRefused('DELETE FROM db.types WHERE id = 3', /undo update of `db`.`types` \(id=3\) at seq 5 /);
  });

  it('a row without a primary key that is gone fails the guard', async () => {
    await expectRefused("DELETE FROM db.np WHERE b = 'w'", /undo insert of `db`.`np` \(a=3, b='w'\) at seq 13 /);
  });

  it('even with --force the script changes nothing when a guard fails', async () => {
    const before = await tampered("UPDATE db.`we``ird; $$ 'name` SET `v;al` = 'x' WHERE `k``ey` = 3");
    const s = await viaScript(B.port, badTransaction(), 'undo', ['--force']);
    expect(s.stderr).toMatch(/undo insert of `db`.`we``ird; \$\$ 'name` \(k`ey=3\) at seq 8 /);
    expect(s.stderr).toMatch(/rolled back/);
    expect(await sums(b)).toBe(before);
  });
});

describe('multi-row statements', () => {
  async function resetBt(conn: mysql.Connection): Promise<string> {
    await conn.query('DROP DATABASE IF EXISTS db; CREATE DATABASE db');
    await conn.query(BT_DDL);
    await direct(
      conn,
      txEntries((t) => t.insert(BT, S0_BT)),
      'redo',
    );
    expect(await readRows(conn, BT, 'id')).toEqual(S0_BT);
    return sums(conn);
  }

  it('redo and undo merge rows and restore the exact prior state, direct and by script alike', async () => {
    const s0 = await resetBt(a);
    expect(await resetBt(b)).toBe(s0);
    // 14 rows: runs of one shape merge; a NULL row, a row changed twice and the swap's second step stay alone.
    expect(await direct(a, btTransaction(), 'redo')).toEqual({ statements: 8, rows: 14, txs: 1 });
    const s1 = await sums(a);
    expect(s1).not.toBe(s0);
    const redo = await viaScript(B.port, btTransaction(), 'redo');
    expect(redo.stderr).toBe('');
    expect(await sums(b)).toBe(s1);
    expect(await readRows(b, BT, 'id')).toEqual(await readRows(a, BT, 'id'));
    expect(await direct(a, btTransaction(), 'undo')).toEqual({ statements: 8, rows: 14, txs: 1 });
    expect(await readRows(a, BT, 'id')).toEqual(S0_BT);
    expect(await sums(a)).toBe(s0);
    const undo = await viaScript(B.port, btTransaction(), 'undo');
    expect(undo.stderr).toBe('');
    expect(await sums(b)).toBe(s0);
  });

  it('text compares under the column collation, as per-row: a case-only change behind our back passes', async () => {
    const s0 = await resetBt(a);
    await resetBt(b);
    for (const conn of [a, b]) {
      await direct(conn, btTransaction(), 'redo');
      await conn.query("UPDATE db.bt SET ci = LOWER(ci), ou = ou WHERE ci LIKE 'STRASSE %'");
    }
    await direct(a, btTransaction(), 'undo');
    expect(await sums(a)).toBe(s0);
    const undo = await viaScript(B.port, btTransaction(), 'undo');
    expect(undo.stderr).toBe('');
    expect(await sums(b)).toBe(s0);
  });

  it('a row changed inside a multi-row statement: direct names the row, the script the statement', async () => {
    await resetBt(a);
    await resetBt(b);
    for (const conn of [a, b]) {
      await direct(conn, btTransaction(), 'redo');
      await conn.query('UPDATE db.bt SET dbl = 1, ou = ou WHERE id = 4');
    }
    const before = await sums(a);
    expect(await sums(b)).toBe(before);
    const err = await direct(a, btTransaction(), 'undo').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuardError);
    expect((err as Error).message).toMatch(
      /^guard failed: undo update of `db`.`bt` \(id=4\) at seq 12 of tx tx-1: the row is not in the state .*nothing was changed$/,
    );
    expect(await sums(a)).toBe(before);
    const s = await viaScript(B.port, btTransaction(), 'undo');
    expect(s.code).not.toBe(0);
    expect(s.stderr).toMatch(
      /ERROR 1644 \(45000\) at line \d+: undo update of `db`.`bt` \(2 rows: id=4 ... id=5\) at seq 11..12 /,
    );
    expect(await sums(b)).toBe(before);
  });
});

describe('100k rows', () => {
  const BIG: TableDef = {
    schema: 'db',
    table: 'big',
    pk: ['id'],
    columns: [
      { name: 'id', type: 'int' },
      { name: 'a', type: 'int' },
      { name: 'b', type: 'varchar', columnType: 'varchar(64)' },
      { name: 'c', type: 'double' },
      { name: 'd', type: 'datetime', columnType: 'datetime(6)' },
    ],
  };
  const N = 100_000;
  const rowsOf = (k: number): Value[][] =>
    Array.from({ length: N }, (_, i) => [
      BigInt(i + 1),
      BigInt((i * 7 + k) % 1000),
      `row ${i} 'v${k}'`,
      i / 7 + k,
      '2024-05-06 07:08:09.123456',
    ]);
  const load = rowsOf(0);
  const loadTx = txEntries((t) => t.insert(BIG, load));
  const deleteTx = txEntries((t) => t.delete(BIG, load));
  const updated = rowsOf(1);
  const updateTx = txEntries((t) =>
    t.update(
      BIG,
      load.map((r, i) => [r, updated[i]!] as const),
    ),
  );
  const timings: Record<string, number> = {};

  async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const r = await f();
    timings[name] = Math.round(performance.now() - t0) / 1000;
    return r;
  }

  it('undo of a 100k-row DELETE and a 100k-row UPDATE, direct and by script', async () => {
    for (const conn of [a, b]) {
      await conn.query('DROP DATABASE IF EXISTS db; CREATE DATABASE db');
      await conn.query('CREATE TABLE db.big (id INT PRIMARY KEY, a INT, b VARCHAR(64), c DOUBLE, d DATETIME(6))');
    }
    await timed('load (redo insert) direct', () => direct(a, loadTx, 'redo'));
    await direct(b, loadTx, 'redo');
    const loaded = await sums(a);
    expect(await sums(b)).toBe(loaded);

    await timed('redo delete direct', () => direct(a, deleteTx, 'redo'));
    const r = await timed('undo delete direct', () => direct(a, deleteTx, 'undo'));
    expect(r.rows).toBe(N);
    expect(await sums(a)).toBe(loaded);
    await timed('redo update direct', () => direct(a, updateTx, 'redo'));
    const updatedSums = await sums(a);
    // One row changed behind our back in the middle of a multi-row statement: the error names that row.
    await a.query("UPDATE db.big SET b = 'tampered' WHERE id = 54321");
    const err = await direct(a, updateTx, 'undo').catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^guard failed: undo update of `db`.`big` \(id=54321\) at seq 54321 /);
    await a.query(`UPDATE db.big SET b = 'row 54320 \\'v1\\'' WHERE id = 54321`);
    expect(await sums(a)).toBe(updatedSums);
    await timed('undo update direct', () => direct(a, updateTx, 'undo'));
    expect(await sums(a)).toBe(loaded);

    await direct(b, deleteTx, 'redo');
    const s1 = await timed('undo delete by script (write + client)', () => viaScript(B.port, deleteTx, 'undo'));
    expect(s1.code).toBe(0);
    expect(await sums(b)).toBe(loaded);
    await direct(b, updateTx, 'redo');
    expect(await sums(b)).toBe(updatedSums);
    const s2 = await timed('undo update by script (write + client)', () => viaScript(B.port, updateTx, 'undo'));
    expect(s2.code).toBe(0);
    expect(await sums(b)).toBe(loaded);
    const mib = (f: string) => Math.round(statSync(f).size / 104857.6) / 10;
    console.log(
      `rewind guard timings (s) for ${N} rows: ${JSON.stringify(timings)}; scripts: delete-undo ${mib(s1.file)} MiB, update-undo ${mib(s2.file)} MiB`,
    );
  });

  it('an abort rolls back', async () => {
    const ac = new AbortController();
    const before = await sums(a);
    async function* items(): AsyncGenerator<PlanItem> {
      let n = 0;
      for await (const it of planOf(updateTx, 'redo')) {
        if (++n === 50_000) ac.abort();
        yield it;
      }
    }
    const err = await executePlan(a, items(), { signal: ac.signal }).catch((e: unknown) => e);
    expect((err as TidemarkError).code).toBe('ABORTED');
    expect(await sums(a)).toBe(before);
  });
});
