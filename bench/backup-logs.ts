/**
 * The log-backup half of the backup benchmark (issue #13), run after the full backup and restore figures on the
 * same source (bench/backup.ts), one contender at a time:
 *
 *   archive: `tidemark backup logs` (the live binlog archiver, default segment_seconds) runs from the full backup's
 *            binlog file on, through both phases below; its peak RSS and CPU are measured.
 *   PITR:    N sysbench oltp_write_only transactions after the full backup; then
 *            tidemark restore --job J --to-gtid <last>  (the replay phase: its "replaying" line → its "done" line)
 *            vs a native replica: a second MariaDB on another restore of the same full, CHANGE MASTER to the backup's
 *            binlog position, START SLAVE, timed until it executed the last of the N transactions;
 *            and the floor: `mariadb-binlog FILES | mariadb` of the source's own binlog files, the same range, into a
 *            server on a copy of that restore (what the replay does once the segments are written as files).
 *   latency: a paced writer (single-row autocommit inserts, `--archive-rate` tx/s for `--archive-s` s, 8
 *            connections), each commit's GTID and wall-clock time kept; latency = ctime of the manifest of the
 *            first segment whose last GTID covers it (the moment the manifest was linked into the store) minus
 *            the commit time (when the client got the OK).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { admin, destroyInstance, REPO_ROOT, ROOT_PASSWORD } from '../test/fixtures/mariadb.ts';
import { CLI } from '../test/fixtures/topology.ts';
import { between, measure, shellQuote, type Tracked, track } from './backup-measure.ts';

const NATIVE_PORT = 3472;
const NATIVE = 'bench-bk-nat';
const FLOOR_PORT = 3473;
const FLOOR = 'bench-bk-floor';
const SCRATCH_PORT = 3471;
export const LOG_JOB = 'binlogs';

export interface LogBenchOptions {
  readonly port: number;
  readonly work: string;
  /** The directory store the full backup `backupId` is in; the config's log job writes there too. */
  readonly storeDir: string;
  readonly keyFile: string;
  readonly config: string;
  /** The source's binlog directory (the floor replays its files directly). */
  readonly binlogDir: string;
  readonly backupId: string;
  /** A second restore of the same full backup (a prepared datadir): the native replica's. */
  readonly nativeDatadir: string;
  readonly sysbench: readonly string[];
  readonly pitrTx: number;
  readonly archiveRate: number;
  readonly archiveS: number;
  readonly log: (s: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d = 2): number => Math.round(n * 10 ** d) / 10 ** d;

/** The sequence number of domain 0 in a GTID position (`0-3470-12,1-…`). */
function seq0(pos: string): number {
  const g = pos.split(',').find((x) => x.trim().startsWith('0-'));
  if (g === undefined) throw new Error(`no domain 0 in GTID position '${pos}'`);
  return Number(g.trim().split('-')[2]);
}

async function one<T>(c: mysql.Connection, sql: string): Promise<T> {
  const [rows] = (await c.query(sql)) as unknown as [T[]];
  if (rows[0] === undefined) throw new Error(`no row from: ${sql}`);
  return rows[0];
}

interface Segment {
  readonly lastSeq: number;
  /** When the manifest was linked into the store (ms since the epoch). */
  readonly ms: number;
}

/** The sealed log segments of the directory store, by last GTID. */
function segments(storeDir: string): Segment[] {
  const out: Segment[] = [];
  for (const id of readdirSync(storeDir)) {
    if (!id.includes(`-${LOG_JOB}-log-`)) continue;
    const f = join(storeDir, id, 'manifest.json');
    if (!existsSync(f)) continue;
    const m = JSON.parse(readFileSync(f, 'utf8')) as { log: { lastGtid: string | null } };
    if (m.log.lastGtid !== null) out.push({ lastSeq: seq0(m.log.lastGtid), ms: statSync(f).ctimeMs });
  }
  return out.sort((a, b) => a.lastSeq - b.lastSeq);
}

async function sealedUpTo(storeDir: string, seq: number, archiver: Tracked, timeoutS = 120): Promise<void> {
  const until = Date.now() + timeoutS * 1000;
  while ((segments(storeDir).at(-1)?.lastSeq ?? 0) < seq) {
    if (archiver.child.exitCode !== null) await archiver.done; // throws with its stderr
    if (Date.now() > until) throw new Error(`the archiver did not seal GTID seq ${seq} within ${timeoutS} s`);
    await sleep(100);
  }
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

function startOn(name: string, port: number, datadir: string): void {
  execFileSync(
    'bash',
    [join(REPO_ROOT, 'compose/local/mariadb.sh'), 'start', name, String(port), '--datadir', datadir],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
}

/** `mariadb-binlog --start-position … --stop-position … FILES | mariadb` into a server on `datadir`; seconds. */
async function floorReplay(
  o: LogBenchOptions,
  datadir: string,
  start: { file: string; pos: number },
  until: { file: string; pos: number },
): Promise<number> {
  startOn(FLOOR, FLOOR_PORT, datadir);
  try {
    const files = readdirSync(o.binlogDir)
      .filter((f) => /^mysql-bin\.\d+$/.test(f) && f >= start.file && f <= until.file)
      .sort()
      .map((f) => shellQuote(join(o.binlogDir, f)));
    const m = await measure(
      'bash',
      [
        '-c',
        `set -o pipefail; mariadb-binlog --no-defaults --start-position=${start.pos} --stop-position=${until.pos} ` +
          `${files.join(' ')} | mariadb --no-defaults --host=127.0.0.1 --port=${FLOOR_PORT} --user=root --binary-mode`,
      ],
      { MYSQL_PWD: ROOT_PASSWORD },
    );
    return m.s;
  } finally {
    destroyInstance(FLOOR);
  }
}

/**
 * Native replication from the backup's binlog position until the replica executed `until`: seconds, and when its
 * I/O thread had received everything (the rest is the SQL thread applying).
 */
async function nativeReplay(
  o: LogBenchOptions,
  start: { file: string; pos: number },
  until: { file: string; pos: number },
): Promise<{ s: number; ioS: number }> {
  startOn(NATIVE, NATIVE_PORT, o.nativeDatadir);
  const rep = await admin(NATIVE_PORT);
  try {
    await rep.query('SET GLOBAL gtid_strict_mode = 0');
    await rep.query(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${o.port}, MASTER_USER='root', MASTER_PASSWORD='${ROOT_PASSWORD}', MASTER_LOG_FILE='${start.file}', MASTER_LOG_POS=${start.pos}, MASTER_USE_GTID=no`,
    );
    const t0 = performance.now();
    await rep.query('START SLAVE');
    let ioS = Number.NaN;
    for (;;) {
      const s = await one<Record<string, unknown>>(rep, 'SHOW SLAVE STATUS');
      if (s['Last_SQL_Error'] || s['Last_IO_Error']) {
        throw new Error(`native replica: ${s['Last_SQL_Error'] || s['Last_IO_Error']}`);
      }
      const read = s['Master_Log_File'] === until.file && Number(s['Read_Master_Log_Pos']) >= until.pos;
      if (read && Number.isNaN(ioS)) ioS = (performance.now() - t0) / 1000;
      if (s['Relay_Master_Log_File'] === until.file && Number(s['Exec_Master_Log_Pos']) >= until.pos) break;
      await sleep(20);
    }
    const seconds = (performance.now() - t0) / 1000;
    await rep.query('STOP SLAVE');
    return { s: seconds, ioS };
  } finally {
    await rep.end();
    destroyInstance(NATIVE);
  }
}

/** Paced single-row commits; each commit's domain-0 GTID seq and wall-clock ms. */
async function pacedWriter(o: LogBenchOptions): Promise<{ seq: number; ms: number }[]> {
  const setup = await admin(o.port);
  await setup.query(
    'CREATE DATABASE IF NOT EXISTS bench_arch; DROP TABLE IF EXISTS bench_arch.t; ' +
      'CREATE TABLE bench_arch.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, n INT NOT NULL, at DATETIME(6) NOT NULL)',
  );
  await setup.end();
  const conns = await Promise.all(Array.from({ length: 8 }, () => admin(o.port)));
  const total = Math.round(o.archiveRate * o.archiveS);
  const commits: { seq: number; ms: number }[] = [];
  let next = 0;
  const t0 = performance.now();
  try {
    await Promise.all(
      conns.map(async (c) => {
        for (let i = next++; i < total; i = next++) {
          const wait = t0 + (i * 1000) / o.archiveRate - performance.now();
          if (wait > 1) await sleep(wait);
          const [res] = (await c.query(
            `INSERT INTO bench_arch.t (n, at) VALUES (${i}, NOW(6)); SELECT @@last_gtid AS g`,
          )) as unknown as [[unknown, { g: string }[]]];
          const ms = Date.now();
          commits.push({ seq: seq0(res[1][0]?.g ?? ''), ms });
        }
      }),
    );
  } finally {
    await Promise.all(conns.map((c) => c.end()));
  }
  const s = (performance.now() - t0) / 1000;
  o.log(`  ${commits.length} commits in ${round(s)} s (${Math.round(commits.length / s)} tx/s)`);
  return commits;
}

export async function benchLogs(o: LogBenchOptions): Promise<object> {
  const manifest = JSON.parse(readFileSync(join(o.storeDir, o.backupId, 'manifest.json'), 'utf8')) as {
    gtid: string;
    binlog: { file: string; position: string };
  };
  const start = { file: manifest.binlog.file, pos: Number(manifest.binlog.position) };
  const src = await admin(o.port);
  let archiver: Tracked | null = null;
  try {
    // The archiver's first run starts at the oldest binlog: make that the full backup's file.
    await src.query(`PURGE BINARY LOGS TO '${start.file}'`);
    o.log(`log archiver: tidemark backup logs ${LOG_JOB} (from ${start.file}, default segment_seconds)`);
    archiver = track(CLI, ['backup', 'logs', LOG_JOB, '-c', o.config]);

    o.log(`pitr 1/4: sysbench oltp_write_only, ${o.pitrTx} transactions after the full backup`);
    execFileSync(
      'sysbench',
      ['oltp_write_only', ...o.sysbench, '--threads=4', `--events=${o.pitrTx}`, '--time=0', 'run'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const target = String((await one<{ g: string }>(src, 'SELECT @@gtid_binlog_pos AS g')).g);
    const ms = await one<Record<string, unknown>>(src, 'SHOW MASTER STATUS');
    const until = { file: String(ms['File']), pos: Number(ms['Position']) };
    const tx = seq0(target) - seq0(manifest.gtid);
    await sealedUpTo(o.storeDir, seq0(target), archiver);
    o.log(`  ${tx} transactions to replay, target GTID ${target}, archived`);

    o.log(`pitr 2/4: tidemark restore --job bench --to-gtid ${target} (scratch server port ${SCRATCH_PORT})`);
    const pitrDir = join(o.work, 'restore-pitr');
    const pitrArgs = [
      'restore',
      '--job',
      'bench',
      '--log-job',
      LOG_JOB,
      '--to-gtid',
      target,
      '--into',
      pitrDir,
      '--scratch-port',
      String(SCRATCH_PORT),
      '--store-dir',
      o.storeDir,
      '--key-file',
      o.keyFile,
    ];
    // The scratch server is left running by the restore (for the caller): removed here, also on failure.
    const pitr = await measure(CLI, pitrArgs, { TIDEMARK_SCRATCH_PASSWORD: ROOT_PASSWORD }).finally(() => {
      destroyInstance(`pitr-${SCRATCH_PORT}`);
      rmSync(pitrDir, { recursive: true, force: true });
    });
    const replayS = between(pitr, 'replaying ', 'done: the server');
    o.log(`  replay ${round(replayS)} s (whole restore ${round(pitr.s)} s)`);

    const floorDir = join(o.work, 'restore-floor');
    cpSync(o.nativeDatadir, floorDir, { recursive: true });
    o.log(
      `pitr 3/4: native replica from the backup's binlog position ${start.file}:${start.pos} (port ${NATIVE_PORT})`,
    );
    const native = await nativeReplay(o, start, until);
    const nativeS = native.s;
    rmSync(o.nativeDatadir, { recursive: true, force: true });
    o.log(`  ${round(nativeS)} s (all received by its I/O thread after ${round(native.ioS)} s)`);
    o.log(`pitr 4/4: floor, mariadb-binlog | mariadb of the source's binlog files, same range (port ${FLOOR_PORT})`);
    const floorS = await floorReplay(o, floorDir, start, until);
    rmSync(floorDir, { recursive: true, force: true });
    o.log(`  ${round(floorS)} s`);

    o.log(`archive latency: paced writer, ${o.archiveRate} tx/s for ${o.archiveS} s`);
    const commits = await pacedWriter(o);
    const last = Math.max(...commits.map((c) => c.seq));
    await sealedUpTo(o.storeDir, last, archiver);
    const segs = segments(o.storeDir);
    const lat = commits
      .map((c) => {
        const seg = segs.find((s) => s.lastSeq >= c.seq);
        if (seg === undefined) throw new Error(`no sealed segment holds GTID seq ${c.seq}`);
        return (seg.ms - c.ms) / 1000;
      })
      .sort((a, b) => a - b);
    await src.query('DROP DATABASE bench_arch'); // the next run's datadir is sysbench's again
    const inPhase = segs.filter((s) => s.lastSeq >= Math.min(...commits.map((c) => c.seq))).length;
    archiver.child.kill('SIGTERM');
    const arch = await archiver.done;
    archiver = null;
    o.log(`  p50 ${round(quantile(lat, 0.5))} s, p99 ${round(quantile(lat, 0.99))} s over ${inPhase} segments`);
    const spanS = (Math.max(...commits.map((c) => c.ms)) - Math.min(...commits.map((c) => c.ms))) / 1000;
    return {
      pitr_replay_tx_per_s: {
        transactions: tx,
        native_replica: Math.round(tx / nativeS),
        tidemark: Math.round(tx / replayS),
        floor_mariadb_binlog_pipe: Math.round(tx / floorS),
        ratio: round(nativeS / replayS),
        ratio_to_floor: round(floorS / replayS),
        goal_min: 0.8,
        native_io_received_s: round(native.ioS),
        tidemark_whole_restore_s: round(pitr.s),
      },
      log_archive_latency_s: {
        rate_tx_per_s: Math.round(commits.length / spanS),
        transactions: commits.length,
        segments: inPhase,
        p50: round(quantile(lat, 0.5)),
        p99: round(quantile(lat, 0.99)),
        max: round(lat.at(-1) ?? Number.NaN),
        goal_p99_max: 5,
      },
      archiver: { peak_rss_mb: arch.rssMb['tidemark'], cpu_s: round(arch.cpu['tidemark'] ?? 0) },
    };
  } finally {
    if (archiver !== null) {
      archiver.child.kill('SIGTERM');
      await archiver.done.catch(() => undefined);
    }
    await src.end();
  }
}
