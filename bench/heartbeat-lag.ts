/**
 * Replica lag under a foreign workload (sysbench), measured the same way for any replication: a heartbeat row.
 *
 *   writer  every `intervalMs` on the primary, autocommitted: UPDATE <db>.hb SET seq = n, ts = NOW(6) WHERE id = 1;
 *           heartbeat n's commit time is when the server's OK arrived (this process's clock).
 *   reader  every `pollMs` on the replica: SELECT seq; every heartbeat ≤ the seq read becomes visible at the send
 *           time of that poll (a replica applies in commit order: seeing n means every earlier one is applied).
 *   lag     visible − commit, per heartbeat: one sample per `intervalMs`, resolution `pollMs`.
 *
 * Native replication and tidemark are measured alike (both apply the heartbeat row like any other row), and
 * Seconds_Behind_Master (whole seconds, and only while the SQL thread executes) is not used.
 */
import type mysql from 'mysql2/promise';
import { admin } from '../test/fixtures/mariadb.ts';
import { percentile } from './ship-lag.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();

export const HEARTBEAT_DB = 'benchhb';

/** Creates the heartbeat table on the primary (replicated from there): one row, id 1. */
export async function createHeartbeat(primary: mysql.Connection): Promise<void> {
  await primary.query(`CREATE DATABASE IF NOT EXISTS ${HEARTBEAT_DB}`);
  await primary.query(
    `CREATE TABLE IF NOT EXISTS ${HEARTBEAT_DB}.hb (id INT NOT NULL PRIMARY KEY, seq BIGINT NOT NULL, ts DATETIME(6) NOT NULL)`,
  );
  await primary.query(`INSERT IGNORE INTO ${HEARTBEAT_DB}.hb VALUES (1, 0, NOW(6))`);
}

export interface LagFigures {
  samples: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

export interface HeartbeatLagOptions {
  primaryPort: number;
  replicaPort: number;
  /** Heartbeat period on the primary (one lag sample each). */
  intervalMs: number;
  /** Replica poll period (the samples' resolution). */
  pollMs: number;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

/** One measurement: start(), the workload, stop() (waits until the replica has seen the last heartbeat). */
export class HeartbeatLag {
  private readonly commitAt: number[] = [];
  private readonly visibleAt: number[] = [];
  private writing = true;
  private reading = true;
  /** The replica's seq when the measurement started: heartbeat i (from 1) writes seq base + i. */
  private base = 0;
  private seen = 0;
  private failure: unknown;
  private writer: Promise<unknown> = Promise.resolve();
  private reader: Promise<unknown> = Promise.resolve();
  private conns: mysql.Connection[] = [];

  private readonly o: HeartbeatLagOptions;

  constructor(o: HeartbeatLagOptions) {
    this.o = o;
  }

  async start(): Promise<void> {
    const w = await admin(this.o.primaryPort);
    const r = await admin(this.o.replicaPort);
    this.conns = [w, r];
    const [[row]] = (await w.query(`SELECT seq FROM ${HEARTBEAT_DB}.hb WHERE id = 1`)) as unknown as [
      mysql.RowDataPacket[],
    ];
    // Continue from the primary's value: a second measurement on the same table starts where the first ended.
    const base = Number(row?.['seq'] ?? 0);
    this.base = base;
    this.seen = base;
    const fail = (err: unknown) => {
      this.failure ??= err;
      this.writing = false;
      this.reading = false;
    };
    this.writer = (async () => {
      const t0 = now();
      for (let i = 1; this.writing; i++) {
        const wait = t0 + i * this.o.intervalMs - now();
        if (wait > 0) await sleep(wait);
        await w.query(`UPDATE ${HEARTBEAT_DB}.hb SET seq = ?, ts = NOW(6) WHERE id = 1`, [base + i]);
        this.commitAt.push(now());
      }
    })().catch(fail);
    this.reader = (async () => {
      while (this.reading) {
        const sent = now();
        const [rows] = await r.query<mysql.RowDataPacket[]>(`SELECT seq FROM ${HEARTBEAT_DB}.hb WHERE id = 1`);
        const s = Number(rows[0]?.['seq'] ?? 0);
        for (let n = this.seen + 1; n <= s; n++) this.visibleAt[n - base - 1] = sent;
        if (s > this.seen) this.seen = s;
        await sleep(this.o.pollMs);
      }
    })().catch(fail);
  }

  /** Stops the writer; waits (up to `drainMs`) until the replica shows the last heartbeat, then the reader. */
  async stop(drainMs: number): Promise<LagFigures & { drain_s: number }> {
    this.writing = false;
    const t0 = now();
    try {
      await this.writer;
      const last = this.base + this.commitAt.length;
      while (this.failure === undefined && this.seen < last) {
        if (now() - t0 > drainMs) {
          throw new Error(`heartbeat ${last} not on the replica ${drainMs} ms after the writer stopped`);
        }
        await sleep(20);
      }
      this.reading = false;
      await this.reader;
      if (this.failure !== undefined) throw this.failure;
    } finally {
      this.reading = false;
      for (const c of this.conns) await c.end().catch(() => {});
    }
    const lags = new Float64Array(this.commitAt.length);
    this.commitAt.forEach((c, i) => {
      lags[i] = Math.max(0, (this.visibleAt[i] ?? Number.NaN) - c);
    });
    lags.sort();
    return {
      samples: lags.length,
      p50_ms: r1(percentile(lags, 50)),
      p99_ms: r1(percentile(lags, 99)),
      max_ms: r1(lags[lags.length - 1] ?? Number.NaN),
      drain_s: Math.round(now() - t0) / 1000,
    };
  }
}
