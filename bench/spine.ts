/**
 * Spine benchmark: native MariaDB replication vs tidemark (capture → journal → apply), side by side in one run,
 * on the same binlog, one contender at a time (2 shared cores: running them at once would measure contention).
 *
 *   bulk:    one 300k-row INSERT transaction + one 100k-row UPDATE transaction
 *   oltp:    N small transactions (1–5 rows, several tables) from the shop workload
 *   capture: raw zongji decode rate vs tidemark capture into the journal, over the bulk binlog; both timed from
 *            the dump's start (zongji's 'ready'), plus main-thread CPU per 100k rows of each (cpu_ratio: zongji's
 *            over tidemark's), which a loaded machine disturbs less than wall-clock rates
 *
 * Method: both replicas are first brought level with the source (native: START SLAVE; tidemark: baseline), then
 * stopped; the load runs on the source alone; then each contender is started and timed until it has applied
 * the source's last transaction. Peak RSS of the tidemark process is read from /proc (VmHWM).
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, cpSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import ZongJi from '@vlasky/zongji';
import type mysql from 'mysql2/promise';
import { admin, ROOT_PASSWORD, startInstance, stopInstance } from '../test/fixtures/mariadb.ts';
import { cpuMs, descendants } from '../test/fixtures/proc-tree.ts';
import { createTopology, exited, positions, replicaPhase, startRun, type Topology } from '../test/fixtures/topology.ts';
import { runWorkload, SHOP_SCHEMA } from './workload.ts';
import { asMysql } from '../record/position.ts';

const SRC = 3461;
const NATIVE = 3462;
const TM = 3463;

export interface SpineOptions {
  bulkRows: number;
  updateRows: number;
  oltpTx: number;
  /** targets[].parallel.workers of the tidemark replica (1: the serial applier). */
  workers: number;
  /** slave_parallel_threads of the native replica (0: its default, one SQL thread; else optimistic mode). */
  nativeParallel: number;
  /** targets[].batch.max_transactions of the tidemark replica (absent: the default). */
  groupTx?: number;
  /** tidemark as two processes, `run --only capture` and `run --only apply` (bulk and OLTP catch-up). */
  split?: boolean;
  log: (s: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function one<T extends mysql.RowDataPacket>(c: mysql.Connection, sql: string): Promise<T> {
  const [rows] = await c.query<T[]>(sql);
  if (!rows[0]) throw new Error(`no row from: ${sql}`);
  return rows[0];
}

export async function masterPos(c: mysql.Connection): Promise<{ file: string; pos: number }> {
  const r = await one(c, 'SHOW MASTER STATUS');
  return { file: String(r['File']), pos: Number(r['Position']) };
}

/** The server's process id (its pid file). */
export async function serverPid(c: mysql.Connection): Promise<number> {
  const r = await one(c, 'SELECT @@pid_file AS f');
  return Number(readFileSync(String(r['f']), 'utf8').trim());
}

/** CPU ms of a process (all threads); 0 once it is gone. */
function cpuOf(pid: number): number {
  try {
    return cpuMs(pid);
  } catch {
    return 0;
  }
}

/**
 * Where the CPU of one catch-up went, in seconds: the replica's and the source's server (its binlog dump), and for
 * tidemark its `run` process(es) and the rollback index follower they start. The profile behind the ratios: on 2
 * shared cores, the sum against the wall time says whether a contender waited or computed.
 */
export interface CatchUpCpu {
  replica_s: number;
  source_s: number;
  run_s?: number;
  index_s?: number;
}

/** Samples the servers' CPU at a catch-up's start; `end()` returns the deltas. */
function serverCpu(pids: { replica: number; source: number }): { end(): CatchUpCpu } {
  const r0 = cpuOf(pids.replica);
  const s0 = cpuOf(pids.source);
  return {
    end: () => ({ replica_s: r2((cpuOf(pids.replica) - r0) / 1000), source_s: r2((cpuOf(pids.source) - s0) / 1000) }),
  };
}

const r2 = (x: number) => Math.round(x * 100) / 100;

/** CPU ms of tidemark processes `roots` and their descendants, split into the index follower and the rest. */
function tidemarkCpu(roots: readonly number[]): { run: number; index: number } {
  let run = 0;
  let index = 0;
  for (const root of roots) {
    for (const pid of [root, ...descendants(root)]) {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmd.includes('index-child')) index += cpuOf(pid);
      else run += cpuOf(pid);
    }
  }
  return { run, index };
}

/** Native replication: starts the SQL/IO threads and waits until the replica executed up to `until`. */
export async function nativeCatchUp(rep: mysql.Connection, until: { file: string; pos: number }): Promise<number> {
  const t0 = performance.now();
  await rep.query('START SLAVE');
  for (;;) {
    const s = await one(rep, 'SHOW SLAVE STATUS');
    if (s['Last_SQL_Error'] || s['Last_IO_Error'])
      throw new Error(`native replica: ${s['Last_SQL_Error'] || s['Last_IO_Error']}`);
    if (s['Relay_Master_Log_File'] === until.file && Number(s['Exec_Master_Log_Pos']) >= until.pos) break;
    await sleep(20);
  }
  const s = (performance.now() - t0) / 1000;
  await rep.query('STOP SLAVE');
  return s;
}

function peakRssMb(child: ChildProcess): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return m?.[1] ? Math.round(Number(m[1]) / 1024) : -1;
  } catch {
    return -1;
  }
}

/**
 * tidemark: starts `run`, waits until the replica applied the source's last transaction. `split`: capture and apply
 * as two processes sharing the journal (`run --only capture` + `run --only apply`), each on its own thread.
 */
async function tidemarkCatchUp(
  t: Topology,
  split = false,
  pids?: { replica: number; source: number },
): Promise<{ s: number; rssMb: number; startupS: number; cpu?: CatchUpCpu }> {
  const servers = pids ? serverCpu(pids) : null;
  const t0 = performance.now();
  const spawnedMs = Date.now();
  const children = split
    ? [startRun(t.config, ['--only', 'capture']), startRun(t.config, ['--only', 'apply'])]
    : [startRun(t.config)];
  const peak = () => Math.max(...children.map(peakRssMb));
  let rssMb = -1;
  let cpu: CatchUpCpu | undefined;
  try {
    for (;;) {
      const p = await positions(t);
      rssMb = Math.max(rssMb, peak());
      // Every baseline unit carries the snapshot's GTID: equal GTIDs mid-baseline do not mean caught up.
      if (p.replica === p.source && (await replicaPhase(t)) !== 'baseline') {
        // Measured before the processes stop (the index follower exits with them).
        const tm = tidemarkCpu(children.map((c) => c.pid!));
        if (servers) cpu = { ...servers.end(), run_s: r2(tm.run / 1000), index_s: r2(tm.index / 1000) };
        break;
      }
      const dead = children.find((c) => c.exitCode !== null);
      if (dead) throw new Error(`tidemark run exited with ${dead.exitCode}`);
      await sleep(20);
    }
    const s = (performance.now() - t0) / 1000;
    // Included in s: process start-up until the binlog stream runs (native's threads exist already).
    const startupS = (streamStartedMs(`${t.dir}/tidemark.log`, children[0]!.pid) - spawnedMs) / 1000;
    return { s, rssMb: Math.max(rssMb, peak()), startupS, ...(cpu ? { cpu } : {}) };
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map(exited));
  }
}

/**
 * Raw zongji: decode rows from `from` until the binlog position reaches `until`. Timed from its 'ready' event (the
 * dump about to start, after its set-up queries), as tidemark's capture is timed from its "binlog streaming
 * started" line, which that same event logs; `mainCpuS` is this thread's CPU over the same span.
 */
async function zongjiRate(
  from: { file: string; pos: number },
  until: { file: string; pos: number },
): Promise<{ rate: number; mainCpuS: number }> {
  const zj = new ZongJi({ host: '127.0.0.1', port: SRC, user: 'root', password: ROOT_PASSWORD, dateStrings: true });
  let rows = 0;
  let t0 = performance.now();
  let c0 = process.threadCpuUsage();
  zj.on('ready', () => {
    t0 = performance.now();
    c0 = process.threadCpuUsage();
  });
  await new Promise<void>((resolve, reject) => {
    zj.on('error', reject);
    zj.on('binlog', (e: { getEventName(): string; rows?: unknown[]; nextPosition: number }) => {
      if (e.rows) rows += e.rows.length;
      if (e.getEventName() === 'xid' && zj.options.filename === until.file && e.nextPosition >= until.pos) resolve();
    });
    zj.start({
      filename: from.file,
      position: from.pos,
      serverId: 9911,
      includeEvents: ['tablemap', 'writerows', 'updaterows', 'deleterows', 'xid', 'rotate'],
    });
  });
  const s = (performance.now() - t0) / 1000;
  const c = process.threadCpuUsage(c0);
  zj.stop();
  return { rate: rows / s, mainCpuS: (c.user + c.system) / 1e6 };
}

/** Whether the part of `logFile` written after byte `from` has the "binlog streaming started" line of `pid`. */
function streamStartedSince(logFile: string, from: number, pid: number | undefined): boolean {
  const size = statSync(logFile).size;
  if (size <= from) return false;
  const fd = openSync(logFile, 'r');
  try {
    const buf = Buffer.alloc(size - from);
    readSync(fd, buf, 0, buf.length, from);
    return buf
      .toString('utf8')
      .split('\n')
      .some((l) => l.includes(`"pid":${pid},`) && l.includes('binlog streaming started'));
  } finally {
    closeSync(fd);
  }
}

async function journalHead(dir: string) {
  const { lastCommit } = await import('../journal/index.ts');
  return lastCommit(dir);
}

/** Wall-clock ms of the "binlog streaming started" log line of process `pid`. */
function streamStartedMs(logFile: string, pid: number | undefined): number {
  for (const line of readFileSync(logFile, 'utf8').split('\n').reverse()) {
    if (!line.includes('binlog streaming started')) continue;
    const rec = JSON.parse(line) as { pid: number; time: number };
    if (rec.pid === pid) return rec.time;
  }
  throw new Error(`no "binlog streaming started" line of pid ${pid} in ${logFile}`);
}

export async function benchSpine(o: SpineOptions) {
  const log = o.log;
  log('starting servers (source, native replica, tidemark replica)');
  const t = await createTopology({
    name: 'bench',
    sourcePort: SRC,
    replicaPort: TM,
    include: ['bench.*', 'shop.*'],
    targetYaml:
      (o.workers > 1 ? `    parallel:\n      workers: ${o.workers}\n` : '') +
      (o.groupTx ? `    batch:\n      max_transactions: ${o.groupTx}\n` : ''),
  });
  startInstance('benchnat', NATIVE, { fresh: true });
  const src = await admin(SRC);
  const nat = await admin(NATIVE);
  try {
    const start = await masterPos(src);
    await nat.query('SET GLOBAL gtid_strict_mode = 0');
    if (o.nativeParallel > 0) {
      await nat.query(`SET GLOBAL slave_parallel_threads = ${o.nativeParallel}, slave_parallel_mode = 'optimistic'`);
    }
    await nat.query(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${SRC}, MASTER_USER='root', MASTER_PASSWORD='${ROOT_PASSWORD}', MASTER_LOG_FILE='${start.file}', MASTER_LOG_POS=${start.pos}, MASTER_USE_GTID=no`,
    );
    await src.query('CREATE DATABASE bench');
    await src.query('CREATE DATABASE IF NOT EXISTS seq'); // the SEQUENCE engine's tables need a database to live in
    await src.query(
      'CREATE TABLE bench.bulk (id INT NOT NULL PRIMARY KEY, a VARCHAR(64) NOT NULL, b DECIMAL(12,2) NOT NULL, c DATETIME(6) NOT NULL, d BIGINT NULL)',
    );
    for (const s of SHOP_SCHEMA('shop')) await src.query(s);
    log('levelling both replicas with the source');
    await nativeCatchUp(nat, await masterPos(src));
    await tidemarkCatchUp(t);
    const journal = `${t.dir}/journal`;
    cpSync(journal, `${t.dir}/journal-before-bulk`, { recursive: true });
    const before = await masterPos(src);

    log(`bulk: ${o.bulkRows}-row insert + ${o.updateRows}-row update on the source`);
    await src.query(
      `INSERT INTO bench.bulk SELECT seq, CONCAT('row-', seq, '-', REPEAT('x', seq % 20)), seq / 7, TIMESTAMPADD(MICROSECOND, seq * 1234, '2024-01-01'), seq * 1000003 FROM seq.seq_1_to_${o.bulkRows}`,
    );
    await src.query(`UPDATE bench.bulk SET b = b + 1, a = CONCAT(a, 'u') WHERE id <= ${o.updateRows}`);
    const afterBulk = await masterPos(src);
    const srcPid = await serverPid(src);
    const natPids = { replica: await serverPid(nat), source: srcPid };
    const tmRep = await admin(TM);
    const tmPids = { replica: await serverPid(tmRep), source: srcPid };
    await tmRep.end();
    let natCpu = serverCpu(natPids);
    const bulkNative = await nativeCatchUp(nat, afterBulk);
    const bulkNativeCpu = natCpu.end();
    log(`bulk native: ${bulkNative.toFixed(2)} s`);
    const bulkTm = await tidemarkCatchUp(t, o.split === true, tmPids);
    log(`bulk tidemark: ${bulkTm.s.toFixed(2)} s, peak RSS ${bulkTm.rssMb} MB`);

    log('capture: zongji raw decode vs tidemark capture into the journal, same binlog range');
    const zj = await zongjiRate(before, afterBulk);
    const zjRate = zj.rate;
    const capCfg = `${t.dir}/capture-only.yaml`;
    writeFileSync(capCfg, readFileSync(t.config, 'utf8').replace('dir: ./journal', 'dir: ./journal-before-bulk'));
    const srcGtid = (await positions(t)).source;
    const logFrom = statSync(`${t.dir}/tidemark.log`).size;
    const cap = startRun(capCfg, ['--only', 'capture']);
    let head: Awaited<ReturnType<typeof journalHead>> = null;
    // The capture process's main-thread CPU from its stream start (first poll that sees the line) to the poll
    // that sees the journal level: the CPU measure beside the wall-clock one, less sensitive to a loaded machine.
    let cpuAtStart: number | null = null;
    let cpuAtHead = 0;
    try {
      for (;;) {
        const cpu = cpuMs(cap.pid!, true);
        if (cpuAtStart === null && streamStartedSince(`${t.dir}/tidemark.log`, logFrom, cap.pid)) cpuAtStart = cpu;
        head = await journalHead(`${t.dir}/journal-before-bulk`);
        if (head && asMysql(head.position, 'journal head').gtid === srcGtid) {
          cpuAtHead = cpuMs(cap.pid!, true);
          break;
        }
        if (cap.exitCode !== null) throw new Error(`capture exited with ${cap.exitCode}`);
        await sleep(10);
      }
    } finally {
      cap.kill('SIGTERM');
      await exited(cap);
    }
    // Timed inside the capture process, from the moment its binlog stream started (log line) to the capture time
    // of the last commit it journaled: process start-up (Node, module loading, preflight, prerequisite checks)
    // is not decode throughput, and raw zongji above is measured in-process too.
    const startedMs = streamStartedMs(`${t.dir}/tidemark.log`, cap.pid);
    const capSeconds = (Number(head!.captureTimeUs / 1000n) - startedMs) / 1000;
    const capRate = (o.bulkRows + o.updateRows) / capSeconds;
    const per100k = 100_000 / (o.bulkRows + o.updateRows);
    const capCpuS = (cpuAtHead - (cpuAtStart ?? 0)) / 1000;

    log(`oltp: ${o.oltpTx} small transactions on the source`);
    await runWorkload(() => admin(SRC), { db: 'shop', seed: 42, transactions: o.oltpTx, workers: 4 });
    const afterOltp = await masterPos(src);
    natCpu = serverCpu(natPids);
    const oltpNative = await nativeCatchUp(nat, afterOltp);
    const oltpNativeCpu = natCpu.end();
    const oltpTm = await tidemarkCatchUp(t, o.split === true, tmPids);
    log(`oltp native: ${oltpNative.toFixed(2)} s, tidemark: ${oltpTm.s.toFixed(2)} s`);
    return {
      bulk: {
        native_s: r2(bulkNative),
        tidemark_s: r2(bulkTm.s),
        ratio: r2(bulkTm.s / bulkNative),
        tidemark_startup_s: r2(bulkTm.startupS),
        tidemark_peak_rss_mb: bulkTm.rssMb,
        cpu_s: { native: bulkNativeCpu, tidemark: bulkTm.cpu },
      },
      oltp: {
        transactions: o.oltpTx,
        native_tx_per_s: Math.round(o.oltpTx / oltpNative),
        tidemark_tx_per_s: Math.round(o.oltpTx / oltpTm.s),
        ratio: r2(oltpNative / oltpTm.s),
        // The process start (until its binlog stream runs) excluded: native's threads run already.
        tidemark_tx_per_s_after_start: Math.round(o.oltpTx / (oltpTm.s - oltpTm.startupS)),
        ratio_after_start: r2(oltpNative / (oltpTm.s - oltpTm.startupS)),
        tidemark_workers: o.workers,
        tidemark_split: o.split === true,
        native_slave_parallel_threads: o.nativeParallel,
        tidemark_startup_s: r2(oltpTm.startupS),
        tidemark_peak_rss_mb: oltpTm.rssMb,
        cpu_s: { native: oltpNativeCpu, tidemark: oltpTm.cpu },
      },
      capture: {
        zongji_rows_per_s: Math.round(zjRate),
        tidemark_rows_per_s: Math.round(capRate),
        ratio: r2(capRate / zjRate),
        zongji_main_cpu_s_per_100k_rows: r2(zj.mainCpuS * per100k),
        tidemark_main_cpu_s_per_100k_rows: r2(capCpuS * per100k),
        cpu_ratio: r2(zj.mainCpuS / capCpuS),
      },
    };
  } finally {
    await src.end();
    await nat.end();
    for (const n of ['benchsrc', 'benchrep', 'benchnat']) stopInstance(n);
  }
}
