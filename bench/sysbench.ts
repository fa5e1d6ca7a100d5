/**
 * sysbench benchmark (issue #15): `sysbench oltp_read_write` (Debian's package) on a MariaDB primary for a fixed
 * time while (a) MariaDB's native replication and (b) tidemark replicate it, one contender at a time (2 shared
 * cores: running both at once would measure their contention), on the same prepared tables.
 *
 *   tps        sysbench's transactions per second on the primary during each run (the replication's cost on the
 *              primary's machine shows here: everything shares the cores, as on a host running its replication)
 *   lag        the replica's lag under that load, by a heartbeat row written on the primary every 100 ms and
 *              polled on the replica every 10 ms (bench/heartbeat-lag.ts), the same method for both: p50/p99/max
 *   drain_s    from sysbench's end until the replica shows the last heartbeat
 *   cpu_s      CPU seconds during the run of the replication's processes (native: the replica's mariadbd, its
 *              I/O and SQL threads; tidemark: `tidemark run`, the rollback index follower it starts and the replica's
 *              mariadbd it applies to; `replication_parts` splits the sum) and of the
 *              primary's mariadbd (sysbench's server, and the binlog dump thread either contender reads from)
 *   checksums  at the end every replica's sbtest and heartbeat tables equal the primary's (row hashes)
 *
 * tidemark is `tidemark run` (capture → journal → apply), the process users run, spawned from the CLI as in the
 * spine benchmark, not the in-process pieces: its start-up, journal fsyncs and single process are part of it;
 * its journal at the config's default fsync policy (`transaction`: concurrent transactions share an fsync).
 * Native replication is a replica at its defaults (slave_parallel_threads 0: one SQL thread) unless
 * --native-parallel N. Flow: prepare on the primary; both replicas brought level (tidemark: baseline), then
 * stopped; run (a) with native replication running; run (b) with `tidemark run` running (it first catches up
 * run (a), not timed); native catches up run (b); checksums. Both runs start from the same prepared tables
 * (oltp_read_write keeps their size: each DELETE is followed by an INSERT of the same id).
 *
 * Instances: `sysbsrc` (primary, 3890), `sysbnat` (native replica, 3891), `sysbrep` (tidemark's, 3892).
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type mysql from 'mysql2/promise';
import { schemaChecksums } from '../test/fixtures/checksums.ts';
import { admin, REPO_ROOT, ROOT_PASSWORD, startInstance, stopInstance } from '../test/fixtures/mariadb.ts';
import { cpuMs, descendants } from '../test/fixtures/proc-tree.ts';
import { caughtUpWhileRunning, createTopology, startRun, stopRun } from '../test/fixtures/topology.ts';
import { createHeartbeat, HEARTBEAT_DB, HeartbeatLag } from './heartbeat-lag.ts';
import { masterPos, nativeCatchUp } from './spine.ts';

const SRC = 3890;
const NATIVE = 3891;
const TM = 3892;
const DB = 'sbtest';

export interface SysbenchOptions {
  tables: number;
  tableSize: number;
  /** Seconds of each sysbench run. */
  timeS: number;
  threads: number;
  /** slave_parallel_threads of the native replica (0: its default, one SQL thread). */
  nativeParallel: number;
  /** tidemark's journal.fsync: `transaction` (the config's default) or `group` (5 ms, as the spine bench). */
  fsync: 'transaction' | 'group';
  /** targets[].parallel.workers of the tidemark replica (1: the serial applier). */
  workers: number;
  log: (s: string) => void;
}

const run = promisify(execFile);

/** sysbench from Debian when it is missing (compose/local/sysbench.sh install; a no-op when present). */
function ensureSysbench(): void {
  execFileSync('bash', [resolve(REPO_ROOT, 'compose/local/sysbench.sh'), 'install'], { stdio: 'inherit' });
}

function sysbenchArgs(o: SysbenchOptions): string[] {
  return [
    'oltp_read_write',
    '--db-driver=mysql',
    '--mysql-host=127.0.0.1',
    `--mysql-port=${SRC}`,
    '--mysql-user=root',
    `--mysql-password=${ROOT_PASSWORD}`,
    `--mysql-db=${DB}`,
    `--tables=${o.tables}`,
    `--table-size=${o.tableSize}`,
  ];
}

export interface SysbenchRun {
  tps: number;
  qps: number;
  latency_p95_ms: number;
  ignored_errors: number;
}

/** Parses sysbench 1.0's `run` report. */
export function parseSysbenchRun(out: string): SysbenchRun {
  const num = (re: RegExp, what: string): number => {
    const m = re.exec(out);
    if (!m?.[1]) throw new Error(`no ${what} in sysbench's output:\n${out}`);
    return Number(m[1]);
  };
  return {
    tps: Math.round(num(/transactions:\s+\d+\s+\(([\d.]+) per sec/, 'transactions per second')),
    qps: Math.round(num(/queries:\s+\d+\s+\(([\d.]+) per sec/, 'queries per second')),
    latency_p95_ms: num(/95th percentile:\s+([\d.]+)/, '95th percentile latency'),
    ignored_errors: num(/ignored errors:\s+(\d+)/, 'ignored errors'),
  };
}

/** The pid of a compose/local/mariadb.sh instance's mariadbd. */
function mariadbPid(name: string): number {
  const runDir = process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run');
  return Number(readFileSync(resolve(runDir, 'mariadb', name, 'mariadbd.pid'), 'utf8').trim());
}

/** CPU ms of each pid, summed. */
const cpuOf = (pids: readonly number[]): number => pids.reduce((n, p) => n + cpuMs(p), 0);

/**
 * One timed sysbench run with the heartbeat measuring `replicaPort`'s lag; `replication` names the groups of pids
 * doing the replication (their CPU during the run is reported, summed and per group).
 */
async function measuredRun(
  o: SysbenchOptions,
  replicaPort: number,
  replication: Readonly<Record<string, readonly number[]>>,
) {
  const lag = new HeartbeatLag({ primaryPort: SRC, replicaPort, intervalMs: 100, pollMs: 10 });
  const primary = [mariadbPid('sysbsrc')];
  const groups = Object.entries(replication);
  await lag.start();
  const cpu0 = { rep: groups.map(([, pids]) => cpuOf(pids)), src: cpuOf(primary) };
  let stdout: string;
  try {
    ({ stdout } = await run(
      'sysbench',
      [
        ...sysbenchArgs(o),
        `--threads=${o.threads}`,
        `--time=${o.timeS}`,
        '--events=0',
        '--rand-seed=15',
        '--report-interval=0',
        // Deadlocks and lock-wait timeouts between sysbench's own threads: retried, counted.
        '--mysql-ignore-errors=1213,1205,1020',
        'run',
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    ));
  } catch (err) {
    await lag.stop(0).catch(() => {});
    throw err;
  }
  const parts = Object.fromEntries(groups.map(([name, pids], i) => [name, (cpuOf(pids) - cpu0.rep[i]!) / 1000]));
  const cpu = {
    replication: Math.round(Object.values(parts).reduce((a, b) => a + b, 0) * 1000) / 1000,
    replication_parts: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, Math.round(v * 1000) / 1000])),
    primary_mariadbd: Math.round(cpuOf(primary) - cpu0.src) / 1000,
  };
  // Waits for the replica to show the last heartbeat (a replica far behind: up to 10 min).
  const lagged = await lag.stop(600_000);
  return {
    ...parseSysbenchRun(stdout),
    cpu_s: cpu,
    lag_p50_ms: lagged.p50_ms,
    lag_p99_ms: lagged.p99_ms,
    lag_max_ms: lagged.max_ms,
    lag_samples: lagged.samples,
    drain_s: lagged.drain_s,
  };
}

async function equalTo(primary: mysql.Connection, replica: mysql.Connection): Promise<boolean> {
  for (const db of [DB, HEARTBEAT_DB]) {
    const [a, b] = [await schemaChecksums(primary, db), await schemaChecksums(replica, db)];
    if (JSON.stringify(a) !== JSON.stringify(b)) return false;
  }
  return true;
}

export async function benchSysbench(o: SysbenchOptions) {
  const log = o.log;
  ensureSysbench();
  const load0 = loadavg()[0] ?? -1;
  log('starting servers (primary, native replica, tidemark replica)');
  const t = await createTopology({
    name: 'sysb',
    sourcePort: SRC,
    replicaPort: TM,
    include: [`${DB}.*`, `${HEARTBEAT_DB}.*`],
    fsync: o.fsync,
    ...(o.workers > 1 ? { targetYaml: `    parallel:\n      workers: ${o.workers}\n` } : {}),
  });
  startInstance('sysbnat', NATIVE, { fresh: true });
  const src = await admin(SRC);
  const nat = await admin(NATIVE);
  let child: ReturnType<typeof startRun> | null = null;
  try {
    const start = await masterPos(src);
    await nat.query('SET GLOBAL gtid_strict_mode = 0');
    await nat.query(`SET GLOBAL slave_parallel_threads = ${o.nativeParallel}`);
    await nat.query(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${SRC}, MASTER_USER='root', MASTER_PASSWORD='${ROOT_PASSWORD}', MASTER_LOG_FILE='${start.file}', MASTER_LOG_POS=${start.pos}, MASTER_USE_GTID=no`,
    );
    await src.query(`CREATE DATABASE ${DB}`);
    await createHeartbeat(src);
    log(`prepare: ${o.tables} tables × ${o.tableSize} rows`);
    await run('sysbench', [...sysbenchArgs(o), '--threads=2', 'prepare'], { maxBuffer: 16 * 1024 * 1024 });

    log('levelling both replicas with the primary (tidemark: baseline)');
    await nativeCatchUp(nat, await masterPos(src));
    child = startRun(t.config);
    await caughtUpWhileRunning(t, child, 600_000);
    await stopRun(child);
    child = null;

    log(`(a) native replication: sysbench oltp_read_write, ${o.threads} threads, ${o.timeS} s`);
    await nat.query('START SLAVE');
    const native = await measuredRun(o, NATIVE, { replica_mariadbd: [mariadbPid('sysbnat')] });
    await nativeCatchUp(nat, await masterPos(src)); // stops it: run (b) runs without it
    log(`(a) native: ${native.tps} tps, lag p99 ${native.lag_p99_ms} ms`);

    log(`(b) tidemark run: catching up run (a) first (not timed), then the same ${o.timeS} s`);
    child = startRun(t.config);
    await caughtUpWhileRunning(t, child, 600_000);
    // `run`'s children too: the rollback index follower it starts is part of what tidemark costs.
    const tidemark = await measuredRun(o, TM, {
      run: [child.pid as number],
      index_follower: descendants(child.pid as number),
      replica_mariadbd: [mariadbPid('sysbrep')],
    });
    await caughtUpWhileRunning(t, child, 600_000);
    await stopRun(child);
    child = null;
    log(`(b) tidemark: ${tidemark.tps} tps, lag p99 ${tidemark.lag_p99_ms} ms`);

    await nativeCatchUp(nat, await masterPos(src));
    const tmConn = await admin(TM);
    const equal = { native: await equalTo(src, nat), tidemark: await equalTo(src, tmConn) };
    await tmConn.end();
    if (!equal.native || !equal.tidemark) {
      throw new Error(`a replica differs from the primary at the end: ${JSON.stringify(equal)}`);
    }
    log('checksums: both replicas equal the primary');
    const r2 = (x: number) => Math.round(x * 100) / 100;
    return {
      benchmark: 'sysbench',
      workload: {
        test: 'oltp_read_write',
        tables: o.tables,
        table_size: o.tableSize,
        threads: o.threads,
        time_s: o.timeS,
      },
      native: { ...native, slave_parallel_threads: o.nativeParallel },
      tidemark_workers: o.workers,
      tidemark: { ...tidemark, journal_fsync: o.fsync },
      tps_ratio: r2(tidemark.tps / native.tps),
      replicas_equal: equal,
      load_1m_before: load0,
    };
  } finally {
    await stopRun(child);
    await src.end().catch(() => {});
    await nat.end().catch(() => {});
    for (const n of ['sysbsrc', 'sysbrep', 'sysbnat']) stopInstance(n);
  }
}
