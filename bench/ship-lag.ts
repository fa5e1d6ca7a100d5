/**
 * Lag from commit at the source to visible at a replica, at a steady rate, and bulk throughput at a replica.
 *
 *   lag:        `connections` writers share one schedule of `rate` transactions per second (transaction i is due
 *               at t0 + i / rate; a writer that is late sends at once, so the schedule never drifts). Each
 *               transaction is one autocommitted INSERT of row id = i into <db>.lag; its commit time is when the
 *               server's OK arrived. A poller on the replica reads the ids above the lowest one not yet seen every
 *               `pollMs`; an id's visible time is the send time of the first poll that returned it. lag = visible
 *               − commit, per transaction, after the warm-up.
 *   throughput: rows/s of <db>.bulk at the replica from the first poll that saw any of the new rows to the
 *               poll that saw the last one (MAX(id): transactions are applied whole and in commit order, and the
 *               bulk's ids grow with its transactions), counting only the rows that arrived in that window.
 */
import type mysql from 'mysql2/promise';
import { admin } from '../test/fixtures/mariadb.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

export const LAG_TABLE = (db: string) =>
  `CREATE TABLE ${db}.lag (id BIGINT NOT NULL PRIMARY KEY, at_us BIGINT NOT NULL, pad VARCHAR(40) NOT NULL)`;
export const BULK_TABLE = (db: string) =>
  `CREATE TABLE ${db}.bulk (id INT NOT NULL PRIMARY KEY, a VARCHAR(64) NOT NULL, b DECIMAL(12,2) NOT NULL, c DATETIME(6) NOT NULL, d BIGINT NULL)`;

export interface LagOptions {
  sourcePort: number;
  replicaPort: number;
  db: string;
  /** Transactions per second. */
  rate: number;
  warmupMs: number;
  measureMs: number;
  connections: number;
  pollMs: number;
  /** How long to wait after the last commit for every row to be visible. */
  drainMs: number;
  /** Filled with each transaction's commit and visible times (ms) and the first one measured, for a breakdown. */
  keep?: { commitAt?: Float64Array; visibleAt?: Float64Array; first?: number };
}

export interface LagResult {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Transactions measured (after the warm-up). */
  samples: number;
  /** Transactions per second the source really committed over the whole run. */
  achieved_tx_per_s: number;
  /** Transactions whose commit came later than 10 ms after its due time (the source or writer could not keep up). */
  late_commits: number;
}

/** The p-th percentile (nearest rank) of an ascending array; NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

export async function measureLag(o: LagOptions): Promise<LagResult> {
  const total = Math.round((o.rate * (o.warmupMs + o.measureMs)) / 1000);
  const commitAt = new Float64Array(total);
  const visibleAt = new Float64Array(total);
  const writers = await Promise.all(Array.from({ length: o.connections }, () => admin(o.sourcePort)));
  const poller = await admin(o.replicaPort);
  const t0 = now() + 100;
  const dueAt = (i: number) => t0 + (i * 1000) / o.rate;
  let next = 0;
  let late = 0;
  let writing = true;
  let failure: unknown;
  try {
    const write = Promise.all(
      writers.map(async (c) => {
        for (;;) {
          const i = next++;
          if (i >= total || failure !== undefined) return;
          const wait = dueAt(i) - now();
          if (wait > 0.5) await sleep(wait);
          await c.query(`INSERT INTO ${o.db}.lag VALUES (?, ?, 'x')`, [i, Math.round(now() * 1000)]);
          const at = now();
          commitAt[i] = at;
          if (at - dueAt(i) > 10) late++;
        }
      }),
    ).then(
      () => {
        writing = false;
      },
      (err) => {
        failure = err;
        writing = false;
      },
    );
    let low = 0;
    let lastCommitAt = Number.POSITIVE_INFINITY;
    while (low < total) {
      if (failure !== undefined) throw failure;
      if (!writing && lastCommitAt === Number.POSITIVE_INFINITY) lastCommitAt = now();
      if (now() - lastCommitAt > o.drainMs) {
        throw new Error(
          `lag: ${total - low} of ${total} rows not visible at the replica ${o.drainMs} ms after the last commit`,
        );
      }
      const sent = now();
      const [rows] = await poller.query<mysql.RowDataPacket[]>(
        `SELECT id FROM ${o.db}.lag WHERE id >= ? ORDER BY id LIMIT 20000`,
        [low],
      );
      for (const r of rows) {
        const id = Number(r['id']);
        if (id < total && visibleAt[id] === 0) visibleAt[id] = sent;
      }
      while (low < total && visibleAt[low] !== 0) low++;
      await sleep(o.pollMs);
    }
    await write;
    if (failure !== undefined) throw failure;
  } finally {
    for (const c of writers) await c.end().catch(() => {});
    await poller.end().catch(() => {});
  }
  const first = Math.ceil((o.rate * o.warmupMs) / 1000);
  if (o.keep) Object.assign(o.keep, { commitAt, visibleAt, first });
  const lags = new Float64Array(total - first);
  for (let i = first; i < total; i++) lags[i - first] = Math.max(0, (visibleAt[i] as number) - (commitAt[i] as number));
  lags.sort();
  let lastCommit = 0;
  for (const t of commitAt) lastCommit = Math.max(lastCommit, t);
  return {
    p50: r1(percentile(lags, 50)),
    p90: r1(percentile(lags, 90)),
    p99: r1(percentile(lags, 99)),
    max: r1(lags[lags.length - 1] ?? Number.NaN),
    samples: lags.length,
    achieved_tx_per_s: Math.round((total * 1000) / (lastCommit - t0)),
    late_commits: late,
  };
}

/** Inserts `rows` rows into <db>.bulk on the source, `perTx` rows per transaction (ids from 1). */
export async function writeBulk(sourcePort: number, db: string, rows: number, perTx: number): Promise<number> {
  const c = await admin(sourcePort);
  try {
    await c.query('CREATE DATABASE IF NOT EXISTS seq'); // the SEQUENCE engine's tables need a database to live in
    const t0 = performance.now();
    for (let off = 0; off < rows; off += perTx) {
      const n = Math.min(perTx, rows - off);
      await c.query(
        `INSERT INTO ${db}.bulk SELECT seq + ${off}, CONCAT('row-', seq + ${off}, '-', REPEAT('x', seq % 20)), (seq + ${off}) / 7, ` +
          `TIMESTAMPADD(MICROSECOND, (seq + ${off}) * 1234, '2024-01-01'), (seq + ${off}) * 1000003 FROM seq.seq_1_to_${n}`,
      );
    }
    return (performance.now() - t0) / 1000;
  } finally {
    await c.end();
  }
}

export interface ThroughputResult {
  rows_per_s: number;
  /** Rows that arrived inside the window. */
  window_rows: number;
  /** `probe()` at the end of the window minus at its start. */
  probe_delta: Record<string, number>;
  /** Spawn of the run processes (`startedAt`) to the last row visible. */
  end_to_end_s: number;
  /** First poll that saw new rows to the last row visible. */
  window_s: number;
}

/**
 * Waits until <db>.bulk at the replica holds id `rows` (polling every `pollMs`); `isAlive` is checked on every
 * poll so a dead pipeline fails at once.
 */
export async function measureThroughput(o: {
  replicaPort: number;
  db: string;
  rows: number;
  startedAt: number;
  timeoutMs: number;
  pollMs: number;
  isAlive: () => string | null;
  /** Sampled at the window's start and end (e.g. CPU seconds per process). */
  probe: () => Record<string, number>;
}): Promise<ThroughputResult> {
  const c = await admin(o.replicaPort);
  try {
    let first: { at: number; max: number; probe: Record<string, number> } | null = null;
    const deadline = now() + o.timeoutMs;
    for (;;) {
      const dead = o.isAlive();
      if (dead) throw new Error(`throughput: ${dead}`);
      const sent = now();
      const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT COALESCE(MAX(id), 0) AS m FROM ${o.db}.bulk`);
      const max = Number(rows[0]?.['m']);
      if (max > 0 && first === null) first = { at: sent, max, probe: o.probe() };
      if (max >= o.rows && first !== null) {
        const end = o.probe();
        const start = first.probe;
        const window = (sent - first.at) / 1000;
        // All rows at the first look (a very fast pipeline, or a slow poll): fall back to spawn-to-visible.
        const rate = window > 0 ? (o.rows - first.max) / window : o.rows / ((sent - o.startedAt) / 1000);
        return {
          rows_per_s: Math.round(rate),
          window_rows: o.rows - first.max,
          probe_delta: Object.fromEntries(Object.entries(end).map(([k, v]) => [k, v - (start[k] ?? 0)])),
          end_to_end_s: Math.round((sent - o.startedAt) / 10) / 100,
          window_s: Math.round(window * 100) / 100,
        };
      }
      if (now() > deadline)
        throw new Error(`throughput: ${max} of ${o.rows} rows at the replica after ${o.timeoutMs} ms`);
      await sleep(o.pollMs);
    }
  } finally {
    await c.end().catch(() => {});
  }
}
