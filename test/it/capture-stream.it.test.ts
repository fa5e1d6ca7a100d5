/**
 * Binlog streaming against a real MariaDB: DDL mid-stream in order with the right column sets, filters,
 * resume from a commit's position without gap or duplicate, a connection cut inside a transaction (replayed
 * without duplicating entries), and a purged binlog.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommitEntry, DdlEntry, Entry } from '../../record/record.ts';
import { asMysql, binlogOf } from '../../record/position.ts';
import { MysqlCapture } from '../../capture/mysql/capture.ts';
import { sourceStatus } from '../../capture/mysql/status.ts';
import { checkSeqs, MemorySink, memoryLogger, rowsEntries, sourceConfig } from '../fixtures/capture-kit.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import type { BaselineLedger } from '../../engine/source.ts';
import { baselineLedger } from '../../node/baseline-ledger.ts';

const NAME = 'capstream';
const PORT = 3413;

let conn: mysql.Connection;

/**
 * Until the sink's last commit is the source's last transaction: at the binlog's end offset, or with its GTID.
 * The GTID alone suffices because MariaDB may write a BINLOG_CHECKPOINT event into a new binlog file some time
 * after a rotation, which moves the end offset past the last transaction without anything to capture (a clean
 * run once waited 60 s for an offset no commit could reach).
 */
async function caughtUp(sink: MemorySink): Promise<void> {
  const end = await sourceStatus(conn);
  const [[row]] = (await conn.query('SELECT @@GLOBAL.gtid_binlog_pos AS g')) as unknown as [[{ g: string }]];
  await sink.waitFor((c) => {
    const last = c.at(-1);
    return binlogOf(last?.position)?.offset === end.binlog.offset || (row.g !== '' && last?.txId === row.g);
  }, 60_000);
}

function strip(e: Entry): unknown {
  return e.kind === 'commit' ? { ...e, captureTimeUs: 0n } : e;
}

interface Running {
  sink: MemorySink;
  capture: MysqlCapture;
  lines: Record<string, unknown>[];
  stop: () => Promise<void>;
}

function start(opts: {
  resume: CommitEntry | null;
  sink?: MemorySink;
  include?: string[];
  exclude?: string[];
  ledger?: BaselineLedger;
  forceBaseline?: boolean;
}): Running {
  const sink = opts.sink ?? new MemorySink();
  const ac = new AbortController();
  const { log, lines } = memoryLogger('warn');
  const capture = new MysqlCapture({
    source: sourceConfig(PORT, { include: opts.include ?? ['app.*'], exclude: opts.exclude ?? [] }),
    sink,
    resume: opts.resume,
    log,
    retry: { attempts: 5, baseDelayMs: 100, maxDelayMs: 500 },
    ...(opts.ledger ? { baselineLedger: opts.ledger } : {}),
    ...(opts.forceBaseline ? { forceBaseline: true } : {}),
  });
  const run = capture.run(ac.signal);
  return {
    sink,
    capture,
    lines,
    stop: async () => {
      ac.abort();
      await run;
    },
  };
}

beforeAll(async () => {
  startInstance(NAME, PORT);
  const a = await admin(PORT);
  await resetSchemas(a);
  await a.end();
  conn = await mysql.createConnection({
    host: '127.0.0.1',
    port: PORT,
    user: 'root',
    password: 'tidemark-root',
    supportBigNumbers: true,
    bigNumberStrings: true,
    multipleStatements: true,
  });
  await conn.query('CREATE DATABASE app; CREATE DATABASE other');
}, 120_000);

afterAll(async () => {
  await conn?.end();
  stopInstance(NAME);
});

describe('capture: DDL mid-stream', () => {
  it('captures DDL in order, with the column set in force for each rows entry', async () => {
    await conn.query('CREATE TABLE app.d (id INT PRIMARY KEY, a INT, b VARCHAR(10))');
    const r = start({ resume: null, include: ['app.d', 'app.d2', 'app.keep'], exclude: [] });
    await r.sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    const from = r.sink.entries.length;
    await conn.query("INSERT INTO app.d VALUES (1, 10, 'x')");
    await conn.query('ALTER TABLE app.d ADD COLUMN c DATETIME(3) NULL');
    await conn.query("INSERT INTO app.d VALUES (2, 20, 'y', '2024-01-01 00:00:00.5')");
    await conn.query('UPDATE app.d SET a = a + 1');
    await conn.query('ALTER TABLE app.d DROP COLUMN b');
    await conn.query('INSERT INTO app.d VALUES (3, 30, NULL)');
    await conn.query('USE app; RENAME TABLE d TO d2');
    await conn.query('INSERT INTO app.d2 VALUES (4, 40, NULL)');
    await conn.query('TRUNCATE app.d2');
    await conn.query('INSERT INTO app.d2 VALUES (5, 50, NULL)');
    await conn.query('CREATE TABLE app.notincluded (id INT PRIMARY KEY)');
    await conn.query('INSERT INTO app.notincluded VALUES (1)');
    await conn.query('ALTER TABLE app.notincluded ADD COLUMN z INT');
    await conn.query("CREATE USER IF NOT EXISTS 'zz'@'%' IDENTIFIED BY 'secretpw'");
    await conn.query('CREATE TABLE app.keep (id INT PRIMARY KEY) SELECT 7 AS id');
    await caughtUp(r.sink);
    await r.stop();

    const got = r.sink.entries.slice(from).map((e) => {
      if (e.kind === 'ddl') return `ddl ${e.sql.startsWith('CREATE TABLE `keep`') ? 'CREATE TABLE `keep` …' : e.sql}`;
      if (e.kind === 'rows') return `${e.op} ${e.table} [${e.columns.map((c) => c.name).join(',')}] ${e.rows.length}`;
      return `commit ${e.rowCount}`;
    });
    expect(got).toEqual([
      'insert d [id,a,b] 1',
      'commit 1',
      'ddl ALTER TABLE app.d ADD COLUMN c DATETIME(3) NULL',
      'commit 0',
      'insert d [id,a,b,c] 1',
      'commit 1',
      'update d [id,a,b,c] 2',
      'commit 2',
      'ddl ALTER TABLE app.d DROP COLUMN b',
      'commit 0',
      'insert d [id,a,c] 1',
      'commit 1',
      'ddl RENAME TABLE d TO d2',
      'commit 0',
      'insert d2 [id,a,c] 1',
      'commit 1',
      'ddl TRUNCATE app.d2',
      'commit 0',
      'insert d2 [id,a,c] 1',
      'commit 1',
      'ddl CREATE TABLE `keep` …', // CREATE … SELECT is logged as the resulting CREATE TABLE, then its rows
      'insert keep [id] 1',
      'commit 1',
    ]);
    const ddl = r.sink.entries.filter((e): e is DdlEntry => e.kind === 'ddl' && e.sql.startsWith('RENAME'));
    expect(ddl[0]).toMatchObject({
      schema: 'app',
      tables: [
        { schema: 'app', table: 'd' },
        { schema: 'app', table: 'd2' },
      ],
    });
    const upd = rowsEntries(r.sink.entries.slice(from)).find((e) => e.op === 'update')!;
    expect(upd.rows[1]).toEqual({
      before: [2n, 20n, 'y', '2024-01-01 00:00:00.500'],
      after: [2n, 21n, 'y', '2024-01-01 00:00:00.500'],
    });
    checkSeqs(r.sink.entries, 1n);
    // DDL units carry the GTID of their statement and a resume position after it
    const alter = r.sink.entries.findIndex((e) => e.kind === 'ddl' && e.sql.startsWith('ALTER TABLE app.d ADD'));
    const commit = r.sink.entries[alter + 1] as CommitEntry;
    expect(commit.txId).toMatch(/^0-3413-\d+$/);
    expect(asMysql(commit.position, 'test').gtid).toBe(commit.txId);
  });
});

describe('capture: resume', () => {
  it('resumes from any commit without gap or duplicate', async () => {
    await conn.query('CREATE TABLE app.r (id INT PRIMARY KEY, v INT); CREATE TABLE other.noise (id INT)');
    const first = start({ resume: null, include: ['app.r'] });
    await first.sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    for (let i = 1; i <= 30; i++) {
      if (i % 10 === 0) await conn.query(`INSERT INTO other.noise VALUES (${i})`); // filtered transactions
      await conn.query(`INSERT INTO app.r VALUES (${i}, ${i}), (${i + 1000}, 0)`);
      await conn.query(`UPDATE app.r SET v = v + 1 WHERE id = ${i + 1000}`);
    }
    await caughtUp(first.sink);
    await first.stop();
    const full = first.sink.entries;
    const commits = full.filter((e): e is CommitEntry => e.kind === 'commit' && e.phase === 'stream');
    expect(commits.length).toBe(60);

    // Resume from a commit in the middle: the same entries must follow, byte for byte.
    const mid = commits[17]!;
    const second = start({ resume: mid });
    await caughtUp(second.sink);
    await second.stop();
    const after = full.slice(full.indexOf(mid) + 1);
    expect(second.sink.entries.map(strip)).toEqual(after.map(strip));
    expect(second.sink.entries[0]?.seq).toBe(mid.seq + 1n);

    // Resume from the last commit while the source moves on: continues exactly after it.
    const last = commits.at(-1)!;
    await conn.query('INSERT INTO app.r VALUES (500, 1); INSERT INTO app.r VALUES (501, 1)');
    const third = start({ resume: last });
    await caughtUp(third.sink);
    await third.stop();
    const ids = rowsEntries(third.sink.entries).flatMap((e) => e.rows.map((r) => r.after?.[0]));
    expect(ids).toEqual([500n, 501n]);
    checkSeqs(third.sink.entries, last.seq + 1n);
  });

  it('restarts a baseline that did not finish', async () => {
    const sink = new MemorySink();
    const r = start({ resume: null, sink, include: ['app.r'] });
    await sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    await r.stop();
    const partial = sink.commits.find((c) => c.phase === 'baseline')!;
    const again = start({ resume: partial, include: ['app.r'] });
    await again.sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    await again.stop();
    expect(again.sink.entries[0]).toMatchObject({ kind: 'ddl', seq: partial.seq + 1n });
    expect(again.sink.entries.filter((e) => e.kind === 'ddl').map((e) => (e as DdlEntry).sql.split(' (')[0])).toEqual([
      expect.stringMatching(/^CREATE DATABASE IF NOT EXISTS `app`/),
      'DROP TABLE IF EXISTS `app`.`r`',
      'CREATE TABLE `r`',
    ]);
  });

  it('drops what an unfinished baseline copied and the next one does not (renamed away meanwhile)', async () => {
    await conn.query('CREATE TABLE IF NOT EXISTS app.lr (id INT PRIMARY KEY)');
    const first = start({ resume: null, include: ['app.lr'] });
    await first.sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    await first.stop();
    const partial = first.sink.commits.find((c) => c.phase === 'baseline')!;
    const ledger = baselineLedger(mkdtempSync(join(tmpdir(), 'tm-ledger-')));
    // As an unfinished baseline leaves it: its tables recorded before their DDL was journaled.
    await ledger.record([
      { schema: 'app', table: 'lr' },
      { schema: 'app', table: 'renamed_away' },
    ]);
    const again = start({ resume: partial, include: ['app.lr'], ledger });
    await again.sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    await again.stop();
    const ddl = again.sink.entries.filter((e) => e.kind === 'ddl') as DdlEntry[];
    expect(ddl.map((e) => e.sql.split(' (')[0])).toEqual([
      expect.stringMatching(/^CREATE DATABASE IF NOT EXISTS `app`/),
      'DROP TABLE IF EXISTS `app`.`lr`',
      'CREATE TABLE `lr`',
      'DROP TABLE IF EXISTS `app`.`renamed_away`',
    ]);
    expect(ddl.at(-1)?.tables).toEqual([{ schema: 'app', table: 'renamed_away' }]);
    expect(again.lines.some((l) => String(l['msg']).includes('unfinished baseline copied'))).toBe(true);
    expect(await ledger.tables()).toEqual([]); // the baseline finished
    // A stale ledger (a crash between a finished baseline and its clearing) drops nothing in a later baseline.
    const end = again.sink.commits.find((c) => c.phase === 'baseline-end')!;
    await ledger.record([{ schema: 'app', table: 'stale' }]);
    const forced = start({ resume: end, include: ['app.lr'], ledger, forceBaseline: true });
    await forced.sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    await forced.stop();
    const sqls = forced.sink.entries.filter((e) => e.kind === 'ddl').map((e) => (e as DdlEntry).sql);
    expect(sqls.some((s) => s.includes('stale'))).toBe(false);
    expect(sqls.some((s) => s.startsWith('CREATE TABLE `lr`'))).toBe(true);
  });
});

describe('capture: connection cut inside a transaction', () => {
  it('reconnects and replays the transaction without duplicating entries', async () => {
    await conn.query('CREATE TABLE app.big (id INT PRIMARY KEY, pad VARCHAR(100))');
    const sink = new MemorySink({ appendDelayMs: 5, keepRows: true });
    const r = start({ resume: null, sink, include: ['app.big'] });
    await sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    const base = sink.entries.length;
    // ~12 MB of row events: far more than socket buffers hold, so most is still on the server when cut
    await conn.query("INSERT INTO app.big SELECT seq, REPEAT('x', 100) FROM app.seq_1_to_100000");
    // wait until the transaction is partly in the sink, then kill the binlog dump connection
    while (sink.entries.length < base + 5) await new Promise((res) => setTimeout(res, 20));
    const commitsBefore = sink.commits.length;
    const [procs] = await conn.query<mysql.RowDataPacket[]>('SHOW PROCESSLIST');
    const dumps = procs.filter((p) => String(p['Command']).startsWith('Binlog Dump'));
    expect(dumps.length).toBeGreaterThan(0);
    for (const p of dumps) await conn.query(`KILL ${p['Id']}`);
    expect(sink.commits.length).toBe(commitsBefore); // cut inside the transaction
    sink.appendDelayMs = 0;
    await caughtUp(sink);
    const status = r.capture.status();
    await r.stop();
    expect(status.reconnects).toBeGreaterThanOrEqual(1);
    // the new stream restarted at the transaction's start and skipped what the sink already had
    const txStart = asMysql(sink.commits.find((c) => c.phase === 'baseline-end')!.position, 'test');
    const reconnect = r.lines.find((l) => l['msg'] === 'binlog stream failed: reconnecting');
    expect(reconnect?.['from']).toBe(`${txStart.binlog.file}:${txStart.binlog.offset} (gtid ${txStart.gtid})`);
    const tx = sink.entries.slice(base);
    const ids = rowsEntries(tx).flatMap((e) => e.rows.map((x) => Number(x.after![0])));
    expect(ids.length).toBe(100_000);
    expect(new Set(ids).size).toBe(100_000);
    expect(tx.filter((e) => e.kind === 'commit')).toHaveLength(1);
    expect((tx.at(-1) as CommitEntry).rowCount).toBe(100_000n);
    checkSeqs(sink.entries, 1n);
  });
});

describe('capture: binlog rotation and shutdown', () => {
  it('follows a rotation and resumes from a position in the new file', async () => {
    await conn.query('CREATE TABLE app.rot (id INT PRIMARY KEY)');
    const r = start({ resume: null, include: ['app.rot'] });
    let before: Awaited<ReturnType<typeof sourceStatus>>;
    try {
      await r.sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
      before = await sourceStatus(conn);
      await conn.query('INSERT INTO app.rot VALUES (1)');
      await conn.query('FLUSH BINARY LOGS');
      await conn.query('INSERT INTO app.rot VALUES (2)');
      await conn.query('INSERT INTO app.rot VALUES (3)');
      await caughtUp(r.sink);
    } finally {
      // Stopped even when the test fails: a capture left running would, with the same server_id, take the
      // binlog connection of the next test's capture away.
      await r.stop();
    }
    const commits = r.sink.commits.filter((c) => c.phase === 'stream');
    expect(commits.map((c) => binlogOf(c.position)?.file === before.binlog.file)).toEqual([true, false, false]);
    const again = start({ resume: commits[1]!, include: ['app.rot'] });
    await caughtUp(again.sink);
    await again.stop();
    expect(rowsEntries(again.sink.entries).map((e) => e.rows[0]?.after?.[0])).toEqual([3n]);
  });

  it('on abort, keeps reading to the end of the open transaction', async () => {
    await conn.query('CREATE TABLE app.grace (id INT PRIMARY KEY)');
    const sink = new MemorySink({ appendDelayMs: 20 });
    const r = start({ resume: null, sink, include: ['app.grace'] });
    await sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    const base = sink.entries.length;
    await conn.query('INSERT INTO app.grace SELECT seq FROM app.seq_1_to_40000');
    while (sink.entries.length < base + 3) await new Promise((res) => setTimeout(res, 10));
    const commits = sink.commits.length;
    await r.stop();
    expect(sink.commits.length).toBe(commits + 1); // the abort came inside the transaction
    expect(sink.entries.at(-1)).toMatchObject({ kind: 'commit', rowCount: 40_000n });
  });
});

describe('capture: purged binlog', () => {
  it('refuses to continue and says a new baseline is needed', async () => {
    const resume: CommitEntry = {
      kind: 'commit',
      source: 'src',
      seq: 10n,
      txId: '0-1-1',
      position: { kind: 'mysql', binlog: { file: 'mysql-bin.000999', offset: 4n } },
      commitTimeUs: 0n,
      captureTimeUs: 0n,
      rowCount: 0n,
      phase: 'stream',
    };
    const sink = new MemorySink();
    const { log } = memoryLogger('warn');
    const capture = new MysqlCapture({ source: sourceConfig(PORT), sink, resume, log });
    const err = await capture.run(new AbortController().signal).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BINLOG_PURGED', retriable: false });
    expect(String((err as Error).message)).toMatch(/mysql-bin\.000999:4.*new baseline/);
    expect(sink.entries).toEqual([]);
  });
});

describe('capture: filters', () => {
  it('streams only included tables, skips DDL on excluded ones', async () => {
    await conn.query('CREATE TABLE app.f1 (id INT PRIMARY KEY); CREATE TABLE app.f_skip (id INT PRIMARY KEY)');
    await conn.query('CREATE TABLE other.f1 (id INT PRIMARY KEY)');
    const r = start({ resume: null, include: ['app.f*', 'other.*'], exclude: ['*.f_skip', 'other.f1'] });
    await r.sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));
    const from = r.sink.entries.length;
    await conn.query(
      'BEGIN; INSERT INTO app.f1 VALUES (1); INSERT INTO app.f_skip VALUES (1); INSERT INTO other.f1 VALUES (1); COMMIT',
    );
    await conn.query('INSERT INTO app.f_skip VALUES (2)');
    await conn.query('ALTER TABLE app.f_skip ADD COLUMN x INT');
    await conn.query('CREATE TABLE other.f2 (id INT PRIMARY KEY); INSERT INTO other.f2 VALUES (9)');
    await conn.query('CREATE TABLE mysql.tidemark_probe (id INT); DROP TABLE mysql.tidemark_probe');
    await conn.query('INSERT INTO app.f1 VALUES (2)');
    await caughtUp(r.sink);
    await r.stop();
    const got = r.sink.entries
      .slice(from)
      .map((e) =>
        e.kind === 'commit' ? `commit ${e.rowCount}` : e.kind === 'ddl' ? `ddl ${e.sql}` : `${e.schema}.${e.table}`,
      );
    expect(got).toEqual([
      'app.f1',
      'commit 1',
      'ddl CREATE TABLE other.f2 (id INT PRIMARY KEY)',
      'commit 0',
      'other.f2',
      'commit 1',
      'app.f1',
      'commit 1',
    ]);
  });
});
