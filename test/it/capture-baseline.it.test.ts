/**
 * Baseline under load: a background writer inserts, updates and deletes while the baseline copies the tables;
 * rebuilding the tables from the captured units (baseline, then stream) must give exactly the final tables.
 * Also: include/exclude filters, tables without a primary key (warned once), unit structure and order.
 */
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DdlEntry, Entry } from '../../record/record.ts';
import { binlogOf } from '../../record/position.ts';
import { MysqlCapture } from '../../capture/mysql/capture.ts';
import {
  checkSeqs,
  MemoryReplica,
  MemorySink,
  memoryLogger,
  rowKey,
  selectRows,
  sourceConfig,
  valueConnection,
} from '../fixtures/capture-kit.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { sourceStatus } from '../../capture/mysql/status.ts';

const NAME = 'capbase';
const PORT = 3412;
const ROWS = 30_000;

let conn: mysql.Connection;

const connect = () => valueConnection(PORT, { multipleStatements: true });

/** Random small transactions on app.t and app.nopk until stopped; returns how many committed. */
function startWriter(): { stop: () => Promise<number> } {
  let stopped = false;
  let count = 0;
  const done = (async () => {
    const w = await connect();
    let next = ROWS + 1;
    while (!stopped) {
      const r = Math.random();
      await w.query('BEGIN');
      if (r < 0.4) {
        await w.query('INSERT INTO app.t (id, v, s) VALUES (?, ?, ?)', [next++, count, `w${count}`]);
      } else if (r < 0.75) {
        const id = 1 + Math.floor(Math.random() * ROWS);
        await w.query('UPDATE app.t SET v = v + 1, s = ? WHERE id = ?', [`u${count}`, id]);
        await w.query('UPDATE app.t SET v = v - 1 WHERE id = ?', [1 + Math.floor(Math.random() * ROWS)]);
      } else if (r < 0.9) {
        await w.query('DELETE FROM app.t WHERE id = ?', [1 + Math.floor(Math.random() * ROWS)]);
      } else {
        await w.query('INSERT INTO app.nopk (a, b) VALUES (?, ?)', [count % 7, `n${count}`]);
        await w.query('DELETE FROM app.nopk WHERE a = ? LIMIT 1', [(count + 3) % 7]);
      }
      await w.query('INSERT INTO app.skipme (x) VALUES (?)', [count]);
      await w.query('COMMIT');
      count++;
    }
    await w.end();
    return count;
  })();
  return {
    stop: async () => {
      stopped = true;
      return done;
    },
  };
}

describe('capture: baseline while writes continue', () => {
  // A slow journal makes the baseline take a few seconds, so the writer runs well inside it.
  const sink = new MemorySink({ appendDelayMs: 15 });
  const ac = new AbortController();
  const { log, lines } = memoryLogger('info');
  let run: Promise<void>;
  let writesDuringBaseline = 0;
  let totalWrites = 0;

  beforeAll(async () => {
    startInstance(NAME, PORT);
    const a = await admin(PORT);
    await resetSchemas(a);
    await a.end();
    conn = await connect();
    await conn.query('CREATE DATABASE app; CREATE DATABASE other');
    await conn.query('CREATE TABLE app.t (id INT PRIMARY KEY, v INT NOT NULL, s VARCHAR(40))');
    await conn.query('CREATE TABLE app.nopk (a INT, b VARCHAR(20))');
    await conn.query('CREATE TABLE app.skipme (x INT)');
    await conn.query('CREATE TABLE `app`.`odd``name` (k VARCHAR(10) PRIMARY KEY, n BIGINT UNSIGNED)');
    await conn.query('CREATE TABLE other.t (id INT PRIMARY KEY)');
    await conn.query('INSERT INTO other.t VALUES (1), (2)');
    await conn.query("INSERT INTO `app`.`odd``name` VALUES ('a', 18446744073709551615), ('b', 0)");
    await conn.query(`INSERT INTO app.t (id, v, s) SELECT seq, seq % 1000, CONCAT('r', seq) FROM app.seq_1_to_${ROWS}`);
    await conn.query('INSERT INTO app.nopk VALUES (1, "x"), (1, "x"), (2, NULL)');

    const writer = startWriter();
    const capture = new MysqlCapture({
      source: sourceConfig(PORT, { include: ['app.*'], exclude: ['app.skip*'], baseline: { chunk_rows: 2000 } }),
      sink,
      resume: null,
      log,
    });
    run = capture.run(ac.signal);
    await sink.waitFor((c) => c.some((x) => x.phase === 'baseline'), 30_000);
    const before = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM app.skipme');
    await sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'), 120_000);
    const after = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM app.skipme');
    writesDuringBaseline = Number(after[0][0]?.['n']) - Number(before[0][0]?.['n']);
    sink.appendDelayMs = 0;
    await new Promise((r) => setTimeout(r, 500));
    totalWrites = await writer.stop();
    await conn.query("INSERT INTO app.t (id, v, s) VALUES (1000000, 0, 'marker')"); // last writer tx may be filtered
    const end = await sourceStatus(conn);
    await sink.waitFor((c) => binlogOf(c.at(-1)?.position)?.offset === end.binlog.offset, 60_000);
  }, 240_000);

  afterAll(async () => {
    ac.abort();
    await run;
    await conn?.end();
    stopInstance(NAME);
  });

  it('really wrote during the baseline', () => {
    expect(writesDuringBaseline).toBeGreaterThan(20);
    expect(totalWrites).toBeGreaterThan(writesDuringBaseline);
  });

  it('emits databases, then per table DROP+CREATE, then rows, then baseline-end', () => {
    const entries = sink.entries;
    const endIdx = entries.findIndex((e) => e.kind === 'commit' && e.phase === 'baseline-end');
    const baseline = entries.slice(0, endIdx + 1);
    const ddls = baseline.filter((e): e is DdlEntry => e.kind === 'ddl').map((e) => e.sql.split(' (')[0]);
    expect(ddls[0]).toMatch(/^CREATE DATABASE IF NOT EXISTS `app`/);
    expect(ddls.slice(1)).toEqual([
      'DROP TABLE IF EXISTS `app`.`nopk`',
      'CREATE TABLE `nopk`',
      'DROP TABLE IF EXISTS `app`.`odd``name`',
      'CREATE TABLE `odd``name`',
      'DROP TABLE IF EXISTS `app`.`t`',
      'CREATE TABLE `t`',
    ]);
    const commits = baseline.filter((e) => e.kind === 'commit');
    const snapshot = commits[0]!.position;
    for (const c of commits) expect(c.position).toEqual(snapshot);
    expect(commits.at(-1)).toMatchObject({ phase: 'baseline-end', rowCount: 0n });
    for (const c of commits.slice(0, -1)) expect(c.phase).toBe('baseline');
    // units of at most chunk_rows rows, rows entries of at most 500 rows
    let unit = 0n;
    for (const e of baseline) {
      if (e.kind === 'rows') {
        expect(e.rows.length).toBeLessThanOrEqual(500);
        unit += BigInt(e.rows.length);
      } else if (e.kind === 'commit') {
        expect(e.rowCount).toBe(unit);
        expect(unit).toBeLessThanOrEqual(2000n);
        unit = 0n;
      }
    }
    checkSeqs(entries, 1n);
  });

  it('never captures excluded tables or other schemas', () => {
    const names = new Set(sink.entries.flatMap((e) => (e.kind === 'rows' ? [`${e.schema}.${e.table}`] : [])));
    expect([...names].sort()).toEqual(['app.nopk', 'app.odd`name', 'app.t']);
  });

  it('rebuilds exactly the final tables from the captured units', async () => {
    const replica = new MemoryReplica();
    replica.apply(sink.committed() as Entry[]);
    for (const table of ['t', 'nopk', 'odd`name']) {
      const actual = (await selectRows(conn, 'app', table)).map(rowKey).sort();
      expect(replica.dump(`app.${table}`)).toEqual(actual);
    }
    expect(replica.dump('app.t').length).toBeGreaterThan(ROWS / 2);
  });

  it('warns once per table without a primary key', () => {
    const warnings = lines.filter((l) => String(l['msg']).includes('no primary key'));
    expect(warnings.map((w) => w['table'])).toEqual(['app.nopk']);
    const nopk = sink.entries.filter((e) => e.kind === 'rows' && e.table === 'nopk');
    expect(nopk.every((e) => e.kind === 'rows' && e.pk.length === 0)).toBe(true);
  });

  it('logs the snapshot method and lock time', () => {
    const started = lines.find((l) => l['msg'] === 'baseline snapshot started');
    expect(started).toMatchObject({ method: 'consistent-snapshot', lockMs: 0 });
    expect(lines.some((l) => l['msg'] === 'baseline table copied' && l['table'] === 'app.t')).toBe(true);
  });
});
