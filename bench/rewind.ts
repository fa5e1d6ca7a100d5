/**
 * Rewind benchmark (issue #4): tidemark undo of one bad 100k-row transaction vs the peer, `mariadb-binlog
 * --flashback` piped into the `mariadb` client, side by side in one run; then the rollback index at scale.
 *
 *   setup:   source + replica, tables rwb.upd and rwb.del of rows + 10 % rows each, levelled by `tidemark run`
 *            (baseline); then two bad transactions on the source: an UPDATE of `rows` rows of rwb.upd and a
 *            DELETE of `rows` rows of rwb.del; the replica catches up; run stops
 *   tidemark: `tidemark undo --target replica --tx <GTID>` for each, on the replica; CLI wall time (process start,
 *            index catch-up, planning, the guarded statements, commit) and the undo's own time from its
 *            "committed" log line; peak RSS and CPU time by GNU time; the replica server's CPU time meanwhile
 *   peer:    the same two transactions on the SOURCE (same rows as the replica), `mariadb-binlog --flashback
 *            --start-position … --stop-position … FILE | mariadb`, positions from SHOW MASTER STATUS around each
 *            bad transaction; wall time, peak RSS of mariadb-binlog, CPU time of both clients and of the source
 *            server meanwhile (what each way of undoing costs the server that runs it: issue #15)
 *   checks:  each contender must give back the checksums of the table before its bad transaction; then source and
 *            replica must hold the same data (same_result)
 *   index:   bench/rewind-index.ts on a synthetic journal of `changes` changes (build rows/s, history p50/p99)
 *
 * One contender at a time (2 shared cores). MariaDB instances rwbenchsrc/rwbenchrep on ports 3880/3881.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync, statfsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type mysql from 'mysql2/promise';
import { type Checksums, schemaChecksums } from '../test/fixtures/checksums.ts';
import { admin, stopInstance } from '../test/fixtures/mariadb.ts';
import { caughtUpWhileRunning, createTopology, exited, startRun, type Topology } from '../test/fixtures/topology.ts';
import { type BinlogRange, flashback, type Timed, timedCli } from './rewind-procs.ts';
import { benchIndex, type IndexBenchResult } from './rewind-index.ts';
import { serverPid } from './spine.ts';
import { cpuMs } from '../test/fixtures/proc-tree.ts';

const NAME = 'rwbench';
const SRC = 3880;
const REP = 3881;
const DB = 'rwb';
const CATCH_UP_MS = 30 * 60_000;
/** Journal + index bytes per change of the synthetic journal (measured ≈ 115 at 200k changes), with headroom. */
const INDEX_BYTES_PER_CHANGE = 250;

export interface RewindOptions {
  /** Rows changed by each bad transaction. */
  rows: number;
  /** Changes in the synthetic journal of the index benchmark. */
  changes: number;
  /** Work directory of the index benchmark (emptied first, removed afterwards). */
  indexDir: string;
  log: (s: string) => void;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

async function one<T extends mysql.RowDataPacket>(c: mysql.Connection, sql: string): Promise<T> {
  const [rows] = await c.query<T[]>(sql);
  if (!rows[0]) throw new Error(`no row from: ${sql}`);
  return rows[0];
}

async function masterPos(c: mysql.Connection): Promise<{ file: string; pos: number }> {
  const r = await one(c, 'SHOW MASTER STATUS');
  return { file: String(r['File']), pos: Number(r['Position']) };
}

interface BadTx {
  gtid: string;
  range: BinlogRange;
  seconds: number;
}

/** Runs one autocommitted statement on the source; returns its GTID and where it lies in the binlog. */
async function badTransaction(src: mysql.Connection, sql: string): Promise<BadTx> {
  const before = await masterPos(src);
  const t0 = performance.now();
  await src.query(sql);
  const seconds = (performance.now() - t0) / 1000;
  const gtid = String((await one(src, 'SELECT @@last_gtid AS g'))['g']);
  const after = await masterPos(src);
  const dir = String((await one(src, 'SELECT @@log_bin_basename AS b'))['b']).replace(/[^/]*$/, '');
  // The server rotates only after a transaction: the transaction lies in before.file, up to after.pos if the
  // file did not change, else up to that file's end.
  const range = {
    file: join(dir, before.file),
    start: before.pos,
    stop: after.file === before.file ? after.pos : null,
  };
  return { gtid, range, seconds };
}

/** The undo's own time: the "committed" line the CLI logged after `offset` of the log file. */
async function undoSeconds(logFile: string, offset: number): Promise<number> {
  const text = (await readFile(logFile)).subarray(offset).toString('utf8');
  for (const line of text.split('\n').reverse()) {
    if (!line.includes('"msg":"committed"')) continue;
    return Number((JSON.parse(line) as { seconds: number }).seconds);
  }
  return -1;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function mustSucceed(what: string, r: Timed): Timed {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr}`);
  return r;
}

const same = (a: Checksums, b: Checksums) => JSON.stringify(a) === JSON.stringify(b);

/** `fn` on an admin connection to the server on `port`, closed afterwards. */
async function onServer<T>(port: number, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const c = await admin(port);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const checksumsOn = (port: number) => onServer(port, (c) => schemaChecksums(c, DB));
const pidOn = (port: number) => onServer(port, serverPid);

/**
 * Waits (up to 60 s) until InnoDB purged the undo history of earlier transactions on the server of `c`, so no
 * contender pays for the purge of the bad transactions or of another's work (bench/binlog-rows.ts uses it too).
 */
export async function purgeDrained(c: mysql.Connection): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await one(
      c,
      "SELECT count AS n FROM information_schema.innodb_metrics WHERE name = 'trx_rseg_history_len'",
    );
    if (Number(r['n']) < 100 || Date.now() > deadline) return;
    await new Promise((res) => setTimeout(res, 200));
  }
}

const quiesce = (port: number) => onServer(port, purgeDrained);

/** Source + replica, both tables filled on the source, levelled by `tidemark run` (baseline). */
async function setUp(o: RewindOptions): Promise<{ t: Topology; run: ChildProcess; src: mysql.Connection }> {
  const t = await createTopology({ name: NAME, sourcePort: SRC, replicaPort: REP, include: [`${DB}.*`] });
  const src = await admin(SRC);
  const total = o.rows + Math.ceil(o.rows / 10);
  await src.query(`CREATE DATABASE ${DB}`);
  await src.query('CREATE DATABASE IF NOT EXISTS seq'); // the SEQUENCE engine's tables need a database to live in
  for (const table of ['upd', 'del']) {
    await src.query(
      `CREATE TABLE ${DB}.${table} (id INT NOT NULL PRIMARY KEY, a VARCHAR(64) NOT NULL, b DECIMAL(12,2) NOT NULL, c DATETIME(6) NOT NULL, d BIGINT NULL)`,
    );
    await src.query(
      `INSERT INTO ${DB}.${table} SELECT seq, CONCAT('row-', seq, '-', REPEAT('x', seq % 20)), seq / 7, TIMESTAMPADD(MICROSECOND, seq * 1234, '2024-01-01'), seq * 1000003 FROM seq.seq_1_to_${total}`,
    );
  }
  o.log(`levelling the replica: tidemark run, baseline of 2 × ${total} rows`);
  const run = startRun(t.config);
  await caughtUpWhileRunning(t, run, CATCH_UP_MS);
  return { t, run, src };
}

type Table = 'upd' | 'del';

/** The database round: both bad transactions, undone by tidemark on the replica and by the peer on the source. */
async function undoRound(o: RewindOptions) {
  const log = o.log;
  log('starting servers (source, replica)');
  const { t, run, src } = await setUp(o);
  const logFile = join(t.dir, 'tidemark.log');
  let running: ChildProcess | null = run;
  try {
    const clean = await schemaChecksums(src, DB);
    log(`bad transactions on the source: UPDATE of ${o.rows} rows, DELETE of ${o.rows} rows`);
    const upd = await badTransaction(
      src,
      `UPDATE ${DB}.upd SET b = b + 1, a = CONCAT(a, '-bad'), d = NULL WHERE id <= ${o.rows}`,
    );
    const del = await badTransaction(src, `DELETE FROM ${DB}.del WHERE id <= ${o.rows}`);
    log(`  UPDATE ${upd.gtid} (${upd.seconds.toFixed(2)} s), DELETE ${del.gtid} (${del.seconds.toFixed(2)} s)`);
    const c0 = performance.now();
    await caughtUpWhileRunning(t, run, CATCH_UP_MS);
    log(`replica caught up in ${((performance.now() - c0) / 1000).toFixed(1)} s; stopping tidemark run`);
    run.kill('SIGTERM');
    await exited(run);
    running = null;
    const bad = await schemaChecksums(src, DB);
    if (!same(bad, await checksumsOn(REP))) throw new Error('the replica does not hold the source data before undo');

    const repPid = await pidOn(REP);
    const srcPid = await serverPid(src);
    const undo = async (what: string, tx: BadTx, table: Table) => {
      const args = ['undo', '-c', t.config, '--target', 'replica', '--tx', tx.gtid, '--mode', 'nocascade'];
      await quiesce(REP);
      const offset = fileSize(logFile);
      const cpu0 = cpuMs(repPid);
      const r = mustSucceed(`tidemark undo ${tx.gtid}`, await timedCli(args));
      const serverCpuS = (cpuMs(repPid) - cpu0) / 1000;
      const exec = await undoSeconds(logFile, offset);
      const ok = (await checksumsOn(REP))[table] === clean[table];
      // Afterwards (so it warms nothing for the timed run): the same command with --dry-run = process start,
      // index catch-up and planning, no execution.
      const dry = mustSucceed(`tidemark undo --dry-run ${tx.gtid}`, await timedCli([...args, '--dry-run']));
      const cpuS = r.cpuS[0] ?? -1;
      log(
        `tidemark undo ${what}: ${r.s.toFixed(2)} s wall (undo itself ${exec} s; a dry run takes ${dry.s.toFixed(2)} s), CPU: tidemark ${cpuS.toFixed(2)} s, replica server ${serverCpuS.toFixed(2)} s; peak RSS ${r.rssMb[0]} MB, ok=${ok}`,
      );
      return { s: r.s, exec, dry: dry.s, rssMb: r.rssMb[0] ?? -1, ok, cpuS, serverCpuS };
    };
    const peer = async (what: string, tx: BadTx, table: Table) => {
      await quiesce(SRC);
      const cpu0 = cpuMs(srcPid);
      const r = mustSucceed(`mariadb-binlog --flashback ${tx.gtid} | mariadb`, await flashback(tx.range, SRC));
      const serverCpuS = (cpuMs(srcPid) - cpu0) / 1000;
      const ok = (await schemaChecksums(src, DB))[table] === clean[table];
      const [binlogCpu = -1, clientCpu = -1] = r.cpuS;
      const cpuS = binlogCpu < 0 || clientCpu < 0 ? -1 : binlogCpu + clientCpu;
      log(
        `flashback ${what}: ${r.s.toFixed(2)} s wall, CPU: mariadb-binlog + mariadb ${cpuS.toFixed(2)} s, source server ${serverCpuS.toFixed(2)} s; mariadb-binlog peak RSS ${r.rssMb[0]} MB, ok=${ok}`,
      );
      return { s: r.s, rssMb: r.rssMb[0] ?? -1, ok, cpuS, serverCpuS };
    };
    const undoUpd = await undo('UPDATE', upd, 'upd');
    const undoDel = await undo('DELETE', del, 'del');
    // A user's history query through the CLI, on this (small) journal: process start included.
    const h = mustSucceed(
      'tidemark history',
      await timedCli(['history', '-c', t.config, '--table', `${DB}.upd`, '--key', 'id=5', '--json']),
    );
    const versions = (JSON.parse(h.stdout) as { versions: unknown[] }).versions.length;
    if (versions !== 2) throw new Error(`tidemark history of rwb.upd id=5: ${versions} versions, expected 2`);
    log(`tidemark history (CLI, ${versions} versions): ${h.s.toFixed(2)} s wall`);
    const fbUpd = await peer('UPDATE', upd, 'upd');
    const fbDel = await peer('DELETE', del, 'del');
    const sameResult = same(await schemaChecksums(src, DB), await checksumsOn(REP));
    log(`same result on source and replica: ${sameResult}`);
    return { undoUpd, undoDel, fbUpd, fbDel, sameResult, historyCliS: h.s };
  } finally {
    if (running) {
      running.kill('SIGTERM');
      await exited(running);
    }
    await src.end().catch(() => {});
    // TIDEMARK_BENCH_KEEP=1: leave both servers running (to profile `tidemark undo` by hand); stop them with
    // compose/local/mariadb.sh stop-all.
    if (process.env['TIDEMARK_BENCH_KEEP'] === '1') log(`servers kept: config ${t.config}`);
    else {
      stopInstance(`${NAME}src`);
      stopInstance(`${NAME}rep`);
    }
  }
}

export async function benchRewind(o: RewindOptions) {
  const wall0 = performance.now();
  const need = o.changes * INDEX_BYTES_PER_CHANGE;
  const fs = statfsSync(dirname(o.indexDir));
  const free = fs.bavail * fs.bsize;
  if (free < need) {
    throw new Error(
      `index benchmark: ${(need / 1e9).toFixed(1)} GB needed for ${o.changes} changes, ${(free / 1e9).toFixed(1)} GB free under ${dirname(o.indexDir)}`,
    );
  }
  const { undoUpd, undoDel, fbUpd, fbDel, sameResult, historyCliS } = await undoRound(o);

  o.log(`rollback index: ${o.changes} changes in ${o.indexDir}`);
  let ix: IndexBenchResult;
  try {
    ix = await benchIndex({ changes: o.changes, dir: o.indexDir });
  } finally {
    rmSync(o.indexDir, { recursive: true, force: true });
  }
  return {
    undo_100k_rows_s: r2(undoUpd.s),
    history_p99_ms_at_10m: ix.history_p99_ms,
    index_build_rows_per_s: ix.index_build_rows_per_s,
    binlog_flashback_100k_rows_s: r2(fbUpd.s),
    rows: o.rows,
    table_rows: o.rows + Math.ceil(o.rows / 10),
    undo_100k_update_s: r2(undoUpd.s),
    undo_100k_delete_s: r2(undoDel.s),
    undo_update_exec_s: r2(undoUpd.exec),
    undo_delete_exec_s: r2(undoDel.exec),
    undo_update_dry_run_s: r2(undoUpd.dry),
    undo_delete_dry_run_s: r2(undoDel.dry),
    flashback_100k_update_s: r2(fbUpd.s),
    flashback_100k_delete_s: r2(fbDel.s),
    // < 1: tidemark undo is faster than the peer.
    ratio_vs_flashback_update: r2(undoUpd.s / fbUpd.s),
    ratio_vs_flashback_delete: r2(undoDel.s / fbDel.s),
    // CPU seconds while each ran: the client side (tidemark's process; mariadb-binlog + mariadb) and the server
    // that did the undo (tidemark: the replica; flashback: the source). -1: GNU time missing.
    undo_update_cpu_s: r2(undoUpd.cpuS),
    undo_update_server_cpu_s: r2(undoUpd.serverCpuS),
    flashback_update_cpu_s: r2(fbUpd.cpuS),
    flashback_update_server_cpu_s: r2(fbUpd.serverCpuS),
    undo_delete_cpu_s: r2(undoDel.cpuS),
    undo_delete_server_cpu_s: r2(undoDel.serverCpuS),
    flashback_delete_cpu_s: r2(fbDel.cpuS),
    flashback_delete_server_cpu_s: r2(fbDel.serverCpuS),
    undo_peak_rss_mb: Math.max(undoUpd.rssMb, undoDel.rssMb),
    flashback_binlog_peak_rss_mb: Math.max(fbUpd.rssMb, fbDel.rssMb),
    undo_restored: undoUpd.ok && undoDel.ok,
    flashback_restored: fbUpd.ok && fbDel.ok,
    same_result: sameResult,
    history_p50_ms: ix.history_p50_ms,
    history_cli_s: r2(historyCliS),
    changes_indexed: ix.changes,
    index_bytes: ix.index_bytes,
    index_peak_rss_mb: ix.peak_rss_mb,
    bench_wall_s: Math.round((performance.now() - wall0) / 1000),
  };
}
