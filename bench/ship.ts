/**
 * Ship benchmark (issue #3): lag and throughput from a primary site to a standby site over each transport (tcp
 * with TLS, Kafka, Redis Streams), next to the spine (local apply at the primary site) as the reference.
 *
 *   contenders: one at a time (2 shared cores: running them at once would measure contention). Each has its own
 *               schema and source name on the same source server, its own config and journals, and applies into
 *               the same replica server: `local` = one `tidemark run` with the target at the primary site; `tcp`,
 *               `kafka`, `redis` = `run --site primary` (capture, journal, shipper) and `run --site drN` (receiver,
 *               mirror journal, applier of the target at that site), two processes as on two machines.
 *   lag:        a steady `rate` tx/s of one-row transactions, commit at the source → visible at the replica
 *               (bench/ship-lag.ts), p50/p99 after a warm-up.
 *   throughput: the run processes are stopped, `rows` rows are inserted on the source in transactions of
 *               `txRows`, the processes are started again and timed until the last row is at the replica
 *               (capture → journal → [ship → mirror journal →] apply, all of it, like the spine benchmark).
 *   checks:     after each contender the replica's schema checksums must equal the source's.
 *
 * Servers (started and stopped here): MariaDB shipbsrc 3571 / shipbrep 3572, Kafka shipbkafka 3591 (controller
 * 3691), Redis shipbredis 3595; the tcp receiver listens on 127.0.0.1:7571.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../core/log.ts';
import { schemaChecksums } from '../test/fixtures/checksums.ts';
import { readTopic, startKafka, stopKafka } from '../test/fixtures/kafka.ts';
import { admin, destroyInstance, REPO_ROOT, startInstance, stopInstance } from '../test/fixtures/mariadb.ts';
import { startRedis, stopRedis } from '../test/fixtures/redis.ts';
import { appliedRowOn } from '../test/fixtures/sites.ts';
import {
  cpuSeconds,
  logProblems,
  peakRssMb,
  type SiteProcess,
  type StandbySpec,
  startSite,
  stopSite,
  writeSitesConfig,
} from '../test/fixtures/sites-brokers.ts';
import { runCli } from '../test/fixtures/topology.ts';
import { BULK_TABLE, LAG_TABLE, type LagResult, measureLag, measureThroughput, writeBulk } from './ship-lag.ts';
import { DurableSampler, lagCommits, stageFigures } from './ship-stages.ts';

const SRC = 3571;
const REP = 3572;
const KAFKA = 3591;
const REDIS = 3595;
const TCP = 7571;
const WORK = join(REPO_ROOT, '.run', 'work', 'shipbench');

export const CONTENDERS = ['local', 'tcp', 'kafka', 'redis'] as const;
export type Contender = (typeof CONTENDERS)[number];

export interface ShipOptions {
  contenders: Contender[];
  /** Transactions per second of the lag workload. */
  rate: number;
  warmupS: number;
  measureS: number;
  /** The targets' batch.max_wait_ms (apply grouping); undefined: the default. */
  applyMaxWaitMs?: number | undefined;
  /** Rows of the throughput bulk… */
  rows: number;
  /** …in transactions of this many rows. */
  txRows: number;
  log: (s: string) => void;
}

interface ContenderResult {
  lag: LagResult & { run_cpu_pct: Record<string, number> };
  /** Where the lag goes (ship-stages.ts): each stage's time from the source commit, and from the stage before. */
  stages: ReturnType<typeof stageFigures>;
  throughput: {
    rows_per_s: number;
    end_to_end_s: number;
    window_s: number;
    window_rows: number;
    source_insert_s: number;
    /** CPU ms of each run process per 1000 rows, inside the measured window (start-up excluded). */
    run_cpu_ms_per_1k_rows: Record<string, number>;
  };
  peak_rss_mb: Record<string, number>;
  equal: boolean;
  wall_s: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Removes a broker's data (compose/local/kafka.sh or redis.sh destroy). */
function destroyBroker(kind: 'kafka' | 'redis', name: string): void {
  execFileSync('bash', [join(REPO_ROOT, 'compose/local', `${kind}.sh`), 'destroy', name], { stdio: 'ignore' });
}

function standbyOf(c: Exclude<Contender, 'local'>): StandbySpec {
  if (c === 'tcp') {
    return {
      name: 'dr1',
      transport: 'tcp',
      address: `127.0.0.1:${TCP}`,
      listen: `127.0.0.1:${TCP}`,
      journal_dir: './dr1/mirrors',
    };
  }
  if (c === 'kafka')
    return { name: 'dr2', transport: 'kafka', brokers: [`127.0.0.1:${KAFKA}`], journal_dir: './dr2/mirrors' };
  return { name: 'dr3', transport: 'redis', address: `127.0.0.1:${REDIS}`, journal_dir: './dr3/mirrors' };
}

/** The processes of one contender: sites of its config, each `tidemark run` in its own process. */
class Sites {
  procs: { site: string; p: SiteProcess }[] = [];
  readonly rss: Record<string, number> = {};
  readonly config: string;
  readonly sites: (string | undefined)[];
  constructor(config: string, sites: (string | undefined)[]) {
    this.config = config;
    this.sites = sites;
  }
  start(): void {
    this.procs = this.sites.map((s) => ({ site: s ?? 'all', p: startSite(this.config, s) }));
  }
  /** null while every process runs, else what ended. */
  dead(dir: string): string | null {
    for (const { site, p } of this.procs) {
      if (p.exitCode !== null || p.signalCode !== null) {
        return `tidemark run (site ${site}) exited (code ${p.exitCode}, signal ${p.signalCode})\nlast lines: ${p.lastStderr()}\nlogs:\n${logProblems(dir)}`;
      }
    }
    return null;
  }
  /** CPU seconds used so far, per site. */
  cpu(): Record<string, number> {
    return Object.fromEntries(this.procs.map(({ site, p }) => [site, cpuSeconds(p)]));
  }
  sampleRss(): void {
    for (const { site, p } of this.procs) this.rss[site] = Math.max(this.rss[site] ?? -1, peakRssMb(p));
  }
  async stop(): Promise<void> {
    this.sampleRss();
    await Promise.all(this.procs.map(({ p }) => stopSite(p)));
    this.procs = [];
  }
}

async function contender(c: Contender, i: number, o: ShipOptions): Promise<ContenderResult> {
  const wall0 = performance.now();
  const db = `shipb_${c}`;
  const dir = join(WORK, c);
  mkdirSync(dir, { recursive: true });
  const src = await admin(SRC);
  try {
    await src.query(`CREATE DATABASE ${db}`);
    await src.query(LAG_TABLE(db));
    await src.query(BULK_TABLE(db));
  } finally {
    await src.end();
  }
  const standby = c === 'local' ? null : standbyOf(c);
  const config = writeSitesConfig({
    dir,
    source: { name: db, port: SRC, serverId: 45_000 + i, include: [`${db}.*`] },
    standbys: standby ? [standby] : [],
    targets: [
      {
        name: `replica-${standby?.name ?? 'primary'}`,
        port: REP,
        ...(standby ? { site: standby.name } : {}),
        ...(o.applyMaxWaitMs === undefined ? {} : { batch: { max_wait_ms: o.applyMaxWaitMs } }),
      },
    ],
    ship: c === 'tcp' ? { certs_dir: '../certs' } : {},
  });
  const sites = new Sites(config, standby ? ['primary', standby.name] : [undefined]);
  const rep = await admin(REP);
  try {
    o.log(`${c}: starting ${standby ? `run --site primary + run --site ${standby.name}` : 'run'}; empty baseline`);
    sites.start();
    const deadline = Date.now() + 120_000;
    for (;;) {
      const dead = sites.dead(dir);
      if (dead) throw new Error(`${c}: ${dead}`);
      const at = await appliedRowOn(rep, db);
      if (at?.phase && at.phase !== 'baseline') break;
      if (Date.now() > deadline) throw new Error(`${c}: baseline not applied after 120 s\nlog:\n${logProblems(dir)}`);
      await sleep(100);
    }

    o.log(`${c}: lag at ${o.rate} tx/s for ${o.warmupS} + ${o.measureS} s`);
    const primary = new DurableSampler(join(dir, 'primary', 'journal'));
    const mirror = standby ? new DurableSampler(join(dir, standby.journal_dir, db)) : null;
    primary.start();
    mirror?.start();
    const keep: { commitAt?: Float64Array; visibleAt?: Float64Array; first?: number } = {};
    const lagCpu0 = sites.cpu();
    const lagT0 = performance.now();
    let lagDone = false;
    const watch = (async () => {
      while (!lagDone) {
        if (sites.dead(dir)) return sites.dead(dir);
        sites.sampleRss();
        await sleep(250);
      }
      return null;
    })();
    const lag = await measureLag({
      sourcePort: SRC,
      replicaPort: REP,
      db,
      rate: o.rate,
      warmupMs: o.warmupS * 1000,
      measureMs: o.measureS * 1000,
      connections: 8,
      pollMs: 2,
      drainMs: 60_000,
      keep,
    }).catch(async (err) => {
      lagDone = true;
      await primary.stop();
      await mirror?.stop();
      const dead = await watch;
      throw dead ? new Error(`${c}: ${dead}`) : err;
    });
    lagDone = true;
    await watch;
    await primary.stop();
    await mirror?.stop();
    const lagCpu = sites.cpu();
    const lagWall = (performance.now() - lagT0) / 1000;
    const cpuPct = Object.fromEntries(
      Object.entries(lagCpu).map(([k, v]) => [k, Math.round(((v - (lagCpu0[k] ?? 0)) / lagWall) * 100)]),
    );
    o.log(
      `${c}: lag p50 ${lag.p50} ms, p99 ${lag.p99} ms, max ${lag.max} ms (${lag.samples} tx, source at ${lag.achieved_tx_per_s} tx/s)`,
    );
    await sites.stop();
    const commitAt = keep.commitAt as Float64Array;
    let shipped: Map<bigint, number> | null = null;
    if (c === 'kafka') {
      const sent = new Map<bigint, number>();
      await readTopic([`127.0.0.1:${KAFKA}`], `tidemark.${db}.dr2`, db, silentLogger, (m, ch) => {
        if (ch.part === ch.parts - 1) sent.set(ch.lsn, Number(m.timestamp));
      });
      shipped = sent;
    }
    const stages = stageFigures({
      first: keep.first as number,
      commitAt,
      visibleAt: keep.visibleAt as Float64Array,
      commits: await lagCommits(join(dir, 'primary', 'journal'), db, commitAt.length),
      primary,
      shipped,
      mirror,
    });
    o.log(`${c}: stages ${JSON.stringify(stages)}`);

    o.log(`${c}: ${o.rows} rows on the source (transactions of ${o.txRows}), run stopped`);
    const insertS = await writeBulk(SRC, db, o.rows, o.txRows);
    const startedAt = performance.timeOrigin + performance.now();
    sites.start();
    const rssTimer = setInterval(() => sites.sampleRss(), 200);
    let tp: Awaited<ReturnType<typeof measureThroughput>>;
    try {
      tp = await measureThroughput({
        replicaPort: REP,
        db,
        rows: o.rows,
        startedAt,
        timeoutMs: 300_000,
        pollMs: 20,
        isAlive: () => sites.dead(dir),
        probe: () => sites.cpu(),
      });
    } finally {
      clearInterval(rssTimer);
    }
    o.log(
      `${c}: ${tp.rows_per_s} rows/s at the replica (${tp.window_s} s window; ${tp.end_to_end_s} s from process start)`,
    );
    await sites.stop();
    const s = await admin(SRC);
    let equal: boolean;
    try {
      equal = JSON.stringify(await schemaChecksums(s, db)) === JSON.stringify(await schemaChecksums(rep, db));
    } finally {
      await s.end();
    }
    if (!equal) o.log(`${c}: the replica's ${db} DIFFERS from the source`);
    return {
      lag: { ...lag, run_cpu_pct: cpuPct },
      stages,
      throughput: {
        rows_per_s: tp.rows_per_s,
        end_to_end_s: tp.end_to_end_s,
        window_s: tp.window_s,
        window_rows: tp.window_rows,
        source_insert_s: Math.round(insertS * 100) / 100,
        run_cpu_ms_per_1k_rows: Object.fromEntries(
          Object.entries(tp.probe_delta).map(([k, v]) => [k, Math.round((v * 1e7) / tp.window_rows) / 10]),
        ),
      },
      peak_rss_mb: sites.rss,
      equal,
      wall_s: Math.round((performance.now() - wall0) / 1000),
    };
  } finally {
    await sites.stop();
    await rep.end().catch(() => {});
  }
}

export async function benchShip(o: ShipOptions) {
  const wall0 = performance.now();
  const load0 = loadavg()[0] ?? -1;
  const log = o.log;
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const need = new Set(o.contenders);
  const started: (() => void)[] = [];
  const results: Partial<Record<Contender, ContenderResult>> = {};
  let ok = false;
  try {
    log(
      'starting servers: MariaDB source + replica' +
        (need.has('kafka') ? ', Kafka' : '') +
        (need.has('redis') ? ', Redis' : ''),
    );
    startInstance('shipbsrc', SRC, { fresh: true });
    started.push(() => stopInstance('shipbsrc'));
    startInstance('shipbrep', REP, { fresh: true });
    started.push(() => stopInstance('shipbrep'));
    if (need.has('kafka')) {
      startKafka('shipbkafka', KAFKA, { fresh: true });
      started.push(() => stopKafka('shipbkafka'));
    }
    if (need.has('redis')) {
      startRedis('shipbredis', REDIS, { fresh: true });
      started.push(() => stopRedis('shipbredis'));
    }
    if (need.has('tcp')) {
      const certs = await runCli(
        [
          'certs',
          '--dir',
          join(WORK, 'certs'),
          '--ca',
          'shipbench',
          '--site',
          'primary',
          '--site',
          'dr1',
          '--ip',
          '127.0.0.1',
        ],
        { timeoutMs: 60_000 },
      );
      if (certs.code !== 0) throw new Error(`tidemark certs exited ${certs.code}: ${certs.stderr}`);
    }
    for (const [i, c] of CONTENDERS.entries()) {
      if (need.has(c)) results[c] = await contender(c, i, o);
    }
    ok = true;
  } finally {
    for (const stop of started.reverse()) {
      try {
        stop();
      } catch (err) {
        log(`cleanup: ${(err as Error).message}`);
      }
    }
    if (ok) {
      rmSync(WORK, { recursive: true, force: true });
      for (const n of ['shipbsrc', 'shipbrep']) destroyInstance(n);
      if (need.has('kafka')) destroyBroker('kafka', 'shipbkafka');
      if (need.has('redis')) destroyBroker('redis', 'shipbredis');
    } else log(`work directory kept for a post-mortem: ${WORK}`);
  }
  const transports = o.contenders.filter((c) => c !== 'local');
  const pick = <T>(f: (r: ContenderResult) => T, which: readonly Contender[] = transports) =>
    Object.fromEntries(which.flatMap((c) => (results[c] ? [[c, f(results[c])]] : [])));
  const local = results.local?.throughput.rows_per_s;
  return {
    lag_ms: pick((r) => ({ p50: r.lag.p50, p99: r.lag.p99 })),
    throughput_rows_per_s: pick((r) => r.throughput.rows_per_s),
    mode:
      'one contender at a time on one machine: a transport = run --site primary (capture, journal, shipper) + run --site drN ' +
      '(receiver, mirror journal, applier), two processes; local = the spine, one run with the target at the primary site ' +
      '(capture and apply share one process). Throughput = the whole pipeline draining a backlog, capture included',
    spine: results.local
      ? {
          lag_ms: { p50: results.local.lag.p50, p99: results.local.lag.p99 },
          throughput_rows_per_s: results.local.throughput.rows_per_s,
        }
      : null,
    // > 1: the transport moves fewer rows/s than local apply.
    throughput_local_over_transport:
      local === undefined ? null : pick((r) => Math.round((local / r.throughput.rows_per_s) * 100) / 100),
    lag_detail_ms: pick((r) => r.lag, o.contenders),
    lag_stages_ms: pick((r) => r.stages, o.contenders),
    throughput_detail: pick((r) => r.throughput, o.contenders),
    peak_rss_mb: pick((r) => r.peak_rss_mb, o.contenders),
    replica_equal: pick((r) => r.equal, o.contenders),
    contender_wall_s: pick((r) => r.wall_s, o.contenders),
    rate_tx_per_s: o.rate,
    apply_max_wait_ms: o.applyMaxWaitMs ?? 'default',
    warmup_s: o.warmupS,
    measure_s: o.measureS,
    bulk_rows: o.rows,
    bulk_tx_rows: o.txRows,
    // Other work on the machine skews every figure: the 1-minute load average before and after.
    machine: {
      cpus: cpus().length,
      loadavg_1m_start: Math.round(load0 * 100) / 100,
      loadavg_1m_end: Math.round((loadavg()[0] ?? -1) * 100) / 100,
    },
    bench_wall_s: Math.round((performance.now() - wall0) / 1000),
  };
}
