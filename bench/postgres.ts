/**
 * PostgreSQL benchmark: PostgreSQL's own logical replication (a CREATE SUBSCRIPTION subscriber) vs tidemark
 * (capture/postgres → journal → apply/postgres), on the same source and the same WAL, one contender at a time
 * (2 shared cores: running both at once would measure contention). PostgreSQL 15 servers from
 * compose/local/postgres.sh on ports 5500 (source), 5501 (native subscriber), 5502 (tidemark target); the environment
 * variable TIDEMARK_BENCH_PG_PORT moves the three (base, base+1, base+2).
 *
 *   bulk:    one N-row INSERT transaction + one M-row UPDATE transaction
 *   oltp:    N small multi-table transactions (bench/pg-workload.ts)
 *   capture: pg_recvlogical (pgoutput v1, to /dev/null) vs tidemark capture into a journal, same slot position,
 *            over the bulk's WAL
 *   lag:     single-row transactions at a paced rate (2k tx/s), p50/p99 of source clock_timestamp() at insert →
 *            target clock_timestamp() at apply, for each contender running alone
 *
 * Method (as bench/spine.ts): both targets are first brought level with the source (native: the subscription
 * enabled; tidemark: `tidemark run` through its baseline), then stopped (ALTER SUBSCRIPTION … DISABLE; SIGTERM);
 * the load runs on the source alone; then each contender is started and timed until the source's last
 * transaction (a marker row) is on its target. Peak RSS of the `tidemark run` process from /proc (VmHWM).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { stringify } from 'yaml';
import { JournalReader, lastCommit, readEntries } from '../journal/index.ts';
import {
  APPLY_USER,
  CAPTURE_USER,
  SUPERUSER_PASSWORD,
  pgAdmin,
  startPostgres,
  stopPostgres,
} from '../test/fixtures/postgres.ts';
import { exited, startRun } from '../test/fixtures/topology.ts';
import type { SequencePosition } from '../record/position.ts';
import { LAG_SOURCE, LAG_TARGET, PG_SHOP_SCHEMA, lagPercentiles, runPaced, runPgOltp } from './pg-workload.ts';

/** Ports base, base+1, base+2 (default 5500; TIDEMARK_BENCH_PG_PORT moves them, e.g. beside other test servers). */
const BASE = Number(process.env['TIDEMARK_BENCH_PG_PORT'] ?? '5500');
const SRC = { name: 'benchpg-src', port: BASE };
const NAT = { name: 'benchpg-nat', port: BASE + 1 };
const TM = { name: 'benchpg-tm', port: BASE + 2 };
const DB = 'benchdb';
const RECVLOGICAL = '/usr/lib/postgresql/15/bin/pg_recvlogical';

export interface PgBenchOptions {
  bulkRows: number;
  updateRows: number;
  oltpTx: number;
  lagRate: number;
  lagSeconds: number;
  /** synchronous_commit of the apply role on the tidemark target (native's subscription defaults to off). */
  applySyncCommit: 'on' | 'off';
  /** The target's batch.max_wait_ms (absent: the default, 5). */
  applyMaxWaitMs?: number;
  log: (s: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r2 = (x: number) => Math.round(x * 100) / 100;

const TABLES = `CREATE SCHEMA bench;
  CREATE TABLE bench.bulk (id int PRIMARY KEY, a text NOT NULL, b numeric(12,2) NOT NULL, c timestamp(6) NOT NULL,
    d bigint);
  CREATE TABLE bench.marker (id int PRIMARY KEY);
  ${PG_SHOP_SCHEMA}`;
const PUBLISHED = [
  'bench.bulk',
  'bench.marker',
  'bench.lag',
  'shop.customers',
  'shop.orders',
  'shop.order_items',
  'shop.audit_log',
];

function peakRssMb(child: ChildProcess): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return m?.[1] ? Math.round(Number(m[1]) / 1024) : -1;
  } catch {
    return -1;
  }
}

async function one(c: pg.Client, sql: string, params: unknown[] = []): Promise<Record<string, unknown>> {
  const r = await c.query(sql, params);
  if (!r.rows[0]) throw new Error(`no row from: ${sql}`);
  return r.rows[0] as Record<string, unknown>;
}

const lsnOf = (s: string): bigint => {
  const [hi, lo] = s.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
};
const lsnText = (v: bigint): string =>
  `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;

async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs = 600_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

const hasMarker = (c: pg.Client, id: number) => async () =>
  (await c.query('SELECT 1 FROM bench.marker WHERE id = $1', [id])).rows.length === 1;

/** Native: enables the subscription and waits until marker `id` is on the subscriber; returns seconds. */
async function nativeCatchUp(nat: pg.Client, id: number): Promise<number> {
  const t0 = performance.now();
  await nat.query('ALTER SUBSCRIPTION nat ENABLE');
  await waitFor(`marker ${id} on the native subscriber`, hasMarker(nat, id));
  const s = (performance.now() - t0) / 1000;
  await nat.query('ALTER SUBSCRIPTION nat DISABLE');
  return s;
}

interface TmRun {
  s: number;
  rssMb: number;
  /** Process start until its replication connection (slot tm_bench) began: included in `s`. */
  startupS: number;
  /** Process start until its apply session on the target began: included in `s`. */
  applyStartS: number;
}

/** tidemark: starts `run`, waits until marker `id` is on the target (and `during` is done); returns seconds, RSS. */
async function tidemarkCatchUp(
  src: pg.Client,
  config: string,
  tm: pg.Client,
  id: () => number,
  during?: () => Promise<void>,
  args: string[] = [],
): Promise<TmRun> {
  const t0 = performance.now();
  const spawnedMs = Date.now();
  const child = startRun(config, args);
  let rssMb = -1;
  let startupS = -1;
  let applyStartS = -1;
  try {
    if (during) await during();
    await waitFor(`marker ${id()} on the tidemark target`, async () => {
      rssMb = Math.max(rssMb, peakRssMb(child));
      if (startupS < 0) {
        const r = await src.query(
          `SELECT extract(epoch FROM s.backend_start) * 1000 AS ms FROM pg_replication_slots r
             JOIN pg_stat_replication s ON s.pid = r.active_pid WHERE r.slot_name = 'tm_bench'`,
        );
        if (r.rows[0]) startupS = (Number((r.rows[0] as { ms: unknown }).ms) - spawnedMs) / 1000;
      }
      if (applyStartS < 0) {
        const r = await tm.query(
          `SELECT extract(epoch FROM backend_start) * 1000 AS ms FROM pg_stat_activity
            WHERE application_name = 'tidemark-apply' ORDER BY backend_start DESC LIMIT 1`,
        );
        const ms = r.rows[0] ? Number((r.rows[0] as { ms: unknown }).ms) : 0;
        if (ms >= spawnedMs) applyStartS = (ms - spawnedMs) / 1000;
      }
      if (child.exitCode !== null) {
        throw new Error(
          `tidemark run exited with ${child.exitCode}: ${(child as ChildProcess & { lastStderr: () => string }).lastStderr()}`,
        );
      }
      return hasMarker(tm, id())();
    });
    return { s: (performance.now() - t0) / 1000, rssMb: Math.max(rssMb, peakRssMb(child)), startupS, applyStartS };
  } finally {
    child.kill('SIGTERM');
    await exited(child);
  }
}

/**
 * Seconds from the start of the slot's walsender connection (pg_stat_replication.backend_start, so polling does not
 * round it) to `done()`'s wall-clock ms, while `proc` runs.
 */
async function slotActiveTo(slot: string, proc: ChildProcess, done: () => Promise<number | null>) {
  let startMs: number | null = null;
  let stop = false;
  // Its own loop on its own session: done() may be slow (reading the journal) and must not hide the start.
  const watcher = (async () => {
    const c = await pgAdmin(SRC.port, DB);
    try {
      while (startMs === null && !stop) {
        const r = await c.query(
          `SELECT extract(epoch FROM s.backend_start) * 1000 AS ms FROM pg_replication_slots r
             JOIN pg_stat_replication s ON s.pid = r.active_pid WHERE r.slot_name = $1`,
          [slot],
        );
        if (r.rows[0]) startMs = Number((r.rows[0] as { ms: unknown }).ms);
        else await sleep(5);
      }
    } finally {
      await c.end();
    }
  })();
  try {
    for (;;) {
      const end = await done();
      if (end !== null) {
        stop = true;
        await watcher;
        // Not seen (it ended between two polls): no figure (NaN → null in the JSON) rather than no benchmark.
        if (startMs === null) {
          process.stderr.write(`bench: ${slot}: done before its walsender was seen; its figure is left out\n`);
          return Number.NaN;
        }
        return (end - startMs) / 1000;
      }
      if (proc.exitCode !== null && proc.exitCode !== 0)
        throw new Error(`${slot}: reader exited with ${proc.exitCode}`);
      await sleep(5);
    }
  } finally {
    stop = true;
    await watcher.catch(() => {});
  }
}

/**
 * Capture race over the WAL since the last race: tidemark capture (`--only capture`, slot tm_cap, its own journal)
 * until its journal holds a commit ending after `after` (the source's last transaction must be the only one
 * there), then pg_recvlogical on slot `recv` up to that commit's end LSN. Returns both durations in seconds.
 */
async function captureRace(capCfg: string, journal: string, after: bigint) {
  const capRun = startRun(capCfg, ['--only', 'capture']);
  let end = 0n;
  let tmS: number;
  try {
    tmS = await slotActiveTo('tm_cap', capRun, async () => {
      const h = await lastCommit(journal);
      if (!h || (h.position as SequencePosition).value <= after) return null;
      end = (h.position as SequencePosition).value;
      return Number(h.captureTimeUs / 1000n);
    });
  } finally {
    capRun.kill('SIGTERM');
    await exited(capRun);
  }
  const recv = spawn(
    RECVLOGICAL,
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(SRC.port),
      '-U',
      'postgres',
      '-d',
      DB,
      '-S',
      'recv',
      '--start',
      '--no-loop',
      '-o',
      'proto_version=1',
      '-o',
      'publication_names=bench_pub',
      '-E',
      lsnText(end),
      '-f',
      '/dev/null',
    ],
    { env: { ...process.env, PGPASSWORD: SUPERUSER_PASSWORD }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  let exitMs: number | null = null;
  recv.once('exit', () => {
    exitMs = Date.now();
  });
  const recvS = await slotActiveTo('recv', recv, async () => exitMs);
  if (recv.exitCode !== 0) throw new Error(`pg_recvlogical exited with ${recv.exitCode}`);
  return { tmS, recvS };
}

/**
 * Where the lag goes, from the journal (the lag run's single-row stream transactions, committed on the source from
 * `fromUs` on) and the target: capture = source commit → handed to the journal (captureTimeUs); apply = that →
 * the row's insert on the target (applied_at: the journal read, the group's wait, the statement). p50 / p99 in ms.
 */
async function lagShares(journal: string, fromUs: bigint, tm: pg.Client) {
  const captured = new Map<string, bigint>();
  const cap: number[] = [];
  const app: number[] = [];
  let ids: string[] = [];
  for await (const { entry: e } of readEntries(new JournalReader({ dir: journal, fromLsn: 1n, follow: false }))) {
    if (e.kind === 'rows' && e.table === 'lag') ids.push(...e.rows.map((r) => String(r.after?.[0])));
    else if (e.kind === 'commit') {
      if (e.phase === 'stream' && e.commitTimeUs !== null && e.commitTimeUs >= fromUs) {
        for (const id of ids) captured.set(id, e.captureTimeUs);
        cap.push(Number(e.captureTimeUs - e.commitTimeUs) / 1000);
      }
      ids = [];
    }
  }
  const rows = await tm.query(
    'SELECT id::text AS id, (extract(epoch FROM applied_at) * 1000000)::bigint::text AS us FROM bench.lag WHERE id = ANY($1::bigint[])',
    [[...captured.keys()]],
  );
  for (const r of rows.rows as { id: string; us: string }[]) {
    const c = captured.get(r.id);
    if (c !== undefined) app.push(Number(BigInt(r.us) - c) / 1000);
  }
  const pct = (xs: number[], q: number) => {
    xs.sort((a, b) => a - b);
    return Math.round((xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? -1) * 10) / 10;
  };
  return {
    capture: { p50: pct(cap, 0.5), p99: pct(cap, 0.99) },
    apply: { p50: pct(app, 0.5), p99: pct(app, 0.99) },
  };
}

const walNow = async (src: pg.Client) => lsnOf(String((await one(src, 'SELECT pg_current_wal_lsn()::text AS l'))['l']));

export async function benchPostgres(o: PgBenchOptions) {
  const log = o.log;
  const dir = mkdtempSync(join(tmpdir(), 'tm-bench-pg-'));
  log(`starting servers (source ${SRC.port}, native subscriber ${NAT.port}, tidemark target ${TM.port})`);
  for (const s of [SRC, NAT, TM]) {
    startPostgres(s.name, s.port, { fresh: true });
    const a = await pgAdmin(s.port);
    await a.query(`CREATE DATABASE ${DB}`);
    await a.end();
  }
  const src = await pgAdmin(SRC.port, DB);
  const nat = await pgAdmin(NAT.port, DB);
  const tm = await pgAdmin(TM.port, DB);
  let marker = 0;
  const mark = async () => {
    await src.query('INSERT INTO bench.marker VALUES ($1)', [++marker]);
    return marker;
  };
  try {
    await src.query(`${TABLES}; ${LAG_SOURCE};
      ${PUBLISHED.map((t) => `ALTER TABLE ${t} REPLICA IDENTITY FULL;`).join('\n')}
      CREATE PUBLICATION bench_pub FOR TABLE ${PUBLISHED.join(', ')};
      GRANT USAGE ON SCHEMA bench, shop TO tidemark_cap;
      GRANT SELECT ON ALL TABLES IN SCHEMA bench, shop TO tidemark_cap;`);
    await nat.query(`${TABLES}; ${LAG_TARGET};`);
    await tm.query(`${TABLES}; ${LAG_TARGET};
      GRANT SET ON PARAMETER session_replication_role TO tidemark_apply;
      GRANT CREATE ON DATABASE ${DB} TO tidemark_apply;
      GRANT USAGE ON SCHEMA bench, shop TO tidemark_apply;
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bench, shop TO tidemark_apply;
      ALTER ROLE tidemark_apply IN DATABASE ${DB} SET synchronous_commit = ${o.applySyncCommit === 'off' ? 'off' : 'on'};`);
    await nat.query(
      `CREATE SUBSCRIPTION nat CONNECTION 'host=127.0.0.1 port=${SRC.port} dbname=${DB} user=postgres password=${SUPERUSER_PASSWORD}'
       PUBLICATION bench_pub WITH (copy_data = false)`,
    );
    const config = (name: string, slot: string, journal: string) => {
      const file = join(dir, name);
      const source = { kind: 'postgres', name: 'pgsrc', port: SRC.port, ...CAPTURE_USER, database: DB };
      writeFileSync(
        file,
        stringify({
          source: { ...source, publication: 'bench_pub', slot, baseline: { chunk_rows: 10_000 } },
          journal: { dir: join(dir, journal) },
          targets: [
            {
              kind: 'postgres',
              name: 'pgtm',
              port: TM.port,
              ...APPLY_USER,
              database: DB,
              ...(o.applyMaxWaitMs !== undefined ? { batch: { max_wait_ms: o.applyMaxWaitMs } } : {}),
            },
          ],
          rollback: { index: false },
          log: { level: 'warn' },
        }),
      );
      return file;
    };
    const runCfg = config('tidemark.yaml', 'tm_bench', 'journal');
    const capCfg = config('capture.yaml', 'tm_cap', 'journal-cap');

    log('levelling both targets with the source');
    await nativeCatchUp(nat, await mark());
    await tidemarkCatchUp(
      src,
      runCfg,
      tm,
      () => marker,
      async () => {
        // The baseline may copy the first marker: wait for one that only streaming can bring.
        await waitFor('the first marker on the tidemark target', hasMarker(tm, marker));
        await mark();
      },
    );
    // The capture contenders' slots, at the same point: pg_recvlogical's, and tidemark's (levelled, capture only).
    await src.query(`SELECT pg_create_logical_replication_slot('recv', 'pgoutput')`);
    const cap = startRun(capCfg, ['--only', 'capture']);
    try {
      const level = await walNow(src);
      await mark();
      await waitFor('tidemark capture levelled', async () => {
        const h = await lastCommit(join(dir, 'journal-cap'));
        return h !== null && (h.position as SequencePosition).value > level;
      });
    } finally {
      cap.kill('SIGTERM');
      await exited(cap);
    }

    log(`bulk: ${o.bulkRows}-row insert + ${o.updateRows}-row update on the source`);
    await src.query(
      `INSERT INTO bench.bulk SELECT g, 'row-' || g || '-' || repeat('x', g % 20), g / 7.0,
         '2024-01-01'::timestamp + g * interval '1234 microseconds', g * 1000003::bigint FROM generate_series(1, ${o.bulkRows}) g`,
    );
    const afterInsert = await walNow(src);
    await src.query(`UPDATE bench.bulk SET b = b + 1, a = a || 'u' WHERE id <= ${o.updateRows}`);

    log('capture: tidemark capture into a journal vs pg_recvlogical to /dev/null, same WAL range');
    const capBulk = await captureRace(capCfg, join(dir, 'journal-cap'), afterInsert);
    const capRows = o.bulkRows + o.updateRows;
    log(`capture: pg_recvlogical ${capBulk.recvS.toFixed(2)} s, tidemark ${capBulk.tmS.toFixed(2)} s`);

    const bulkMark = await mark();
    const bulkNative = await nativeCatchUp(nat, bulkMark);
    log(`bulk native: ${bulkNative.toFixed(2)} s`);
    const bulkTm = await tidemarkCatchUp(src, runCfg, tm, () => bulkMark);
    log(`bulk tidemark: ${bulkTm.s.toFixed(2)} s, peak RSS ${bulkTm.rssMb} MB`);

    log(`oltp: ${o.oltpTx} small transactions on the source`);
    const oltpSrcS = await runPgOltp(() => pgAdmin(SRC.port, DB), { transactions: o.oltpTx, workers: 4, seed: 42 });
    const beforeOltpMark = await walNow(src);
    const oltpMark = await mark();
    const capOltp = await captureRace(capCfg, join(dir, 'journal-cap'), beforeOltpMark);
    log(`capture oltp: pg_recvlogical ${capOltp.recvS.toFixed(2)} s, tidemark ${capOltp.tmS.toFixed(2)} s`);
    const oltpNative = await nativeCatchUp(nat, oltpMark);
    const oltpTm = await tidemarkCatchUp(src, runCfg, tm, () => oltpMark);
    log(`oltp: source ${oltpSrcS.toFixed(2)} s, native ${oltpNative.toFixed(2)} s, tidemark ${oltpTm.s.toFixed(2)} s`);

    // Apply alone: a second OLTP run journaled first by `--only capture`, then `--only apply` timed (from process
    // start, and from its first target session on) — what the applier does without capture in the same process.
    log('oltp apply only: a second OLTP run captured first, then apply alone');
    await runPgOltp(() => pgAdmin(SRC.port, DB), {
      transactions: o.oltpTx,
      workers: 4,
      seed: 43,
      firstId: 500_000_000,
    });
    const beforeApplyMark = await walNow(src);
    const applyMark = await mark();
    const capOnly = startRun(runCfg, ['--only', 'capture']);
    try {
      await waitFor('the second OLTP run in the journal', async () => {
        const h = await lastCommit(join(dir, 'journal'));
        return h !== null && (h.position as SequencePosition).value > beforeApplyMark;
      });
    } finally {
      capOnly.kill('SIGTERM');
      await exited(capOnly);
    }
    const applyOnly = await tidemarkCatchUp(src, runCfg, tm, () => applyMark, undefined, ['--only', 'apply']);
    // Not seen (the poll missed its start): no after-start figure (NaN → null in the JSON).
    const applyAfterS = applyOnly.applyStartS >= 0 ? applyOnly.s - applyOnly.applyStartS : Number.NaN;
    const oltp2Native = await nativeCatchUp(nat, applyMark);
    log(`oltp apply only: native ${oltp2Native.toFixed(2)} s, tidemark apply ${applyOnly.s.toFixed(2)} s`);

    log(`lag: ${o.lagRate} tx/s for ${o.lagSeconds} s, each contender alone`);
    const paced = (first: number) =>
      runPaced(() => pgAdmin(SRC.port, DB), { first, rate: o.lagRate, seconds: o.lagSeconds, workers: 16 });
    const n = Math.round(o.lagRate * o.lagSeconds);
    await nat.query('ALTER SUBSCRIPTION nat ENABLE');
    await waitFor('native subscriber level', hasMarker(nat, await mark()));
    const natWrite = await paced(1);
    await waitFor('native lag rows', hasMarker(nat, await mark()));
    await nat.query('ALTER SUBSCRIPTION nat DISABLE');
    const natLag = await lagPercentiles(nat, 1, n);
    let tmWrite = { transactions: 0, txPerS: 0 };
    let lagFromUs = 0n;
    const levelMark = await mark();
    const lagTm = await tidemarkCatchUp(
      src,
      runCfg,
      tm,
      () => marker,
      async () => {
        await waitFor('tidemark level before the lag run', hasMarker(tm, levelMark));
        lagFromUs = BigInt(Date.now()) * 1000n;
        tmWrite = await paced(1_000_001);
        await mark();
      },
    );
    const tmLag = await lagPercentiles(tm, 1_000_001, n);
    const shares = await lagShares(join(dir, 'journal'), lagFromUs, tm);
    log(`lag p99: native ${natLag.p99} ms, tidemark ${tmLag.p99} ms`);

    return {
      apply_synchronous_commit: o.applySyncCommit,
      apply_max_wait_ms: o.applyMaxWaitMs ?? 5,
      bulk: {
        insert_rows: o.bulkRows,
        update_rows: o.updateRows,
        native_s: r2(bulkNative),
        tidemark_s: r2(bulkTm.s),
        ratio: r2(bulkTm.s / bulkNative),
        tidemark_startup_s: r2(bulkTm.startupS),
        tidemark_peak_rss_mb: bulkTm.rssMb,
      },
      oltp: {
        transactions: o.oltpTx + 1,
        native_tx_per_s: Math.round((o.oltpTx + 1) / oltpNative),
        tidemark_tx_per_s: Math.round((o.oltpTx + 1) / oltpTm.s),
        ratio: r2(oltpNative / oltpTm.s),
        tidemark_startup_s: r2(oltpTm.startupS),
        // From its replication connection on (process start, config and journal open left out, as for capture).
        tidemark_tx_per_s_after_start: Math.round((o.oltpTx + 1) / (oltpTm.s - oltpTm.startupS)),
        ratio_after_start: r2(oltpNative / (oltpTm.s - oltpTm.startupS)),
        tidemark_peak_rss_mb: oltpTm.rssMb,
        apply_only: {
          native_tx_per_s: Math.round((o.oltpTx + 1) / oltp2Native),
          tidemark_tx_per_s: Math.round((o.oltpTx + 1) / applyOnly.s),
          tidemark_tx_per_s_after_start: Math.round((o.oltpTx + 1) / applyAfterS),
          ratio: r2(oltp2Native / applyOnly.s),
          ratio_after_start: r2(oltp2Native / applyAfterS),
        },
      },
      capture: {
        rows: capRows,
        pg_recvlogical_rows_per_s: Math.round(capRows / capBulk.recvS),
        tidemark_rows_per_s: Math.round(capRows / capBulk.tmS),
        ratio: r2(capBulk.recvS / capBulk.tmS),
      },
      capture_oltp: {
        transactions: o.oltpTx + 1,
        pg_recvlogical_tx_per_s: Math.round((o.oltpTx + 1) / capOltp.recvS),
        tidemark_tx_per_s: Math.round((o.oltpTx + 1) / capOltp.tmS),
        ratio: r2(capOltp.recvS / capOltp.tmS),
      },
      lag: {
        rate_tx_per_s: o.lagRate,
        native: { achieved_tx_per_s: natWrite.txPerS, p50_ms: natLag.p50, p99_ms: natLag.p99 },
        tidemark: {
          achieved_tx_per_s: tmWrite.txPerS,
          p50_ms: tmLag.p50,
          p99_ms: tmLag.p99,
          peak_rss_mb: lagTm.rssMb,
          // Source commit → handed to the journal (capture's share) and from there → inserted on the target.
          capture_p50_ms: shares.capture.p50,
          capture_p99_ms: shares.capture.p99,
          apply_p50_ms: shares.apply.p50,
          apply_p99_ms: shares.apply.p99,
        },
      },
      tidemark_peak_rss_mb: Math.max(bulkTm.rssMb, oltpTm.rssMb, lagTm.rssMb),
    };
  } finally {
    for (const c of [src, nat, tm]) await c.end().catch(() => {});
    for (const s of [SRC, NAT, TM]) stopPostgres(s.name);
    rmSync(dir, { recursive: true, force: true });
  }
}
