/**
 * Where the ship lag goes (bench/ship.ts): for each lag transaction of bench/ship-lag.ts, the time from its commit
 * at the source to each stage of the pipeline, read from outside the run processes so that nothing in them changes:
 *
 *   captured         the commit entry's captureTimeUs (capture's wall clock when it took the commit from the binlog);
 *   primary_durable  the primary journal's durable mark (its DURABLE file) passed the transaction's commit frame;
 *   shipped          Kafka only: the shipper handed the frame to the producer (the message's CreateTime, read back
 *                    from the topic after the run);
 *   mirror_durable   the standby's mirror journal's durable mark passed it: shipped, stored and fsynced at the
 *                    standby (what the receiver acknowledges); absent for the spine;
 *   applied          visible at the replica (the lag poll of bench/ship-lag.ts).
 *
 * The durable marks are sampled by a DurableSampler (fs.watch on the journal directory, which the writer's pwrite of
 * DURABLE triggers, plus a 1 ms poll as a fallback); after the run the primary journal is read once to map each lag
 * row id to its commit frame's LSN. The sampler runs in the bench process next to the writers and the poller, so a
 * stage time can be late by that event loop's delay (about a millisecond); each stage is reported as p50/p99 of
 * (stage − source commit) and of the step from the previous stage.
 */
import { type FSWatcher, watch } from 'node:fs';
import { DurableMarkReader, decodeFrame, JournalReader } from '../journal/index.ts';

const now = () => performance.timeOrigin + performance.now();

/** When a journal's durable mark moved: parallel arrays of (time ms, LSN), in time order. */
export class DurableSampler {
  readonly at: number[] = [];
  readonly lsn: bigint[] = [];
  readonly #reader: DurableMarkReader;
  #watcher: FSWatcher | null = null;
  #timer: NodeJS.Timeout | null = null;
  #reading = false;

  constructor(dir: string) {
    this.#reader = new DurableMarkReader(dir);
  }

  start(): void {
    try {
      this.#watcher = watch(this.#reader.dir, { persistent: false }, () => void this.#sample());
      this.#watcher.on('error', () => this.#watcher?.close());
    } catch {
      this.#watcher = null; // no directory yet: the poll alone
    }
    this.#timer = setInterval(() => void this.#sample(), 1);
  }

  async #sample(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    try {
      const t = now();
      const { lsn } = await this.#reader.read();
      const last = this.lsn[this.lsn.length - 1];
      if (last === undefined || lsn > last) {
        this.at.push(t);
        this.lsn.push(lsn);
      }
    } finally {
      this.#reading = false;
    }
  }

  /** The first sampled time at which the mark was at or past `lsn`, or NaN. */
  reachedAt(lsn: bigint): number {
    let lo = 0;
    let hi = this.lsn.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.lsn[mid] as bigint) >= lsn) hi = mid;
      else lo = mid + 1;
    }
    return lo < this.lsn.length ? (this.at[lo] as number) : Number.NaN;
  }

  async stop(): Promise<void> {
    this.#watcher?.close();
    if (this.#timer) clearInterval(this.#timer);
    await this.#reader.close();
  }
}

/** Commit frame LSN and capture time (ms) of each lag row id in <db>.lag, read from the primary journal. */
export async function lagCommits(
  journalDir: string,
  db: string,
  total: number,
): Promise<{ lsn: BigInt64Array; capturedAt: Float64Array }> {
  const lsn = new BigInt64Array(total);
  const capturedAt = new Float64Array(total);
  let ids: number[] = [];
  for await (const f of new JournalReader({ dir: journalDir, fromLsn: 1n, follow: false })) {
    const e = decodeFrame(f).entry;
    if (e.kind === 'rows') {
      if (e.schema !== db || e.table !== 'lag' || e.op !== 'insert') continue;
      for (const r of e.rows) ids.push(Number(r.after?.[0]));
    } else if (e.kind === 'commit') {
      for (const id of ids) {
        if (id >= 0 && id < total) {
          lsn[id] = f.lsn;
          capturedAt[id] = Number(e.captureTimeUs) / 1000;
        }
      }
      ids = [];
    }
  }
  return { lsn, capturedAt };
}

export interface StageFigures {
  /** Stage − source commit, ms. */
  from_commit: { p50: number; p99: number };
  /** Stage − previous stage, ms. */
  step: { p50: number; p99: number };
}

const r1 = (x: number) => Math.round(x * 10) / 10;

function p5099(xs: number[]): { p50: number; p99: number } {
  const s = Float64Array.from(xs.filter((x) => Number.isFinite(x))).sort();
  const at = (p: number) =>
    s.length === 0 ? Number.NaN : (s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number);
  return { p50: r1(at(50)), p99: r1(at(99)) };
}

/**
 * Per-stage figures for transactions first..total-1: `commitAt` and `visibleAt` from measureLag, the stage times
 * from lagCommits and the samplers (mirror null for the spine).
 */
export function stageFigures(o: {
  first: number;
  commitAt: Float64Array;
  visibleAt: Float64Array;
  commits: { lsn: BigInt64Array; capturedAt: Float64Array };
  primary: DurableSampler;
  /** Kafka: when the shipper handed the commit frame to the producer (the message's CreateTime), by LSN. */
  shipped: Map<bigint, number> | null;
  mirror: DurableSampler | null;
}): Record<string, StageFigures> & { unmapped: number } {
  const names = [
    'captured',
    'primary_durable',
    ...(o.shipped ? ['shipped'] : []),
    ...(o.mirror ? ['mirror_durable'] : []),
    'applied',
  ];
  const fromCommit: number[][] = names.map(() => []);
  const steps: number[][] = names.map(() => []);
  let unmapped = 0;
  for (let i = o.first; i < o.commitAt.length; i++) {
    const lsn = o.commits.lsn[i] as bigint;
    if (lsn === 0n) {
      unmapped++;
      continue;
    }
    const c = o.commitAt[i] as number;
    const times = [
      o.commits.capturedAt[i] as number,
      o.primary.reachedAt(lsn),
      ...(o.shipped ? [o.shipped.get(lsn) ?? Number.NaN] : []),
      ...(o.mirror ? [o.mirror.reachedAt(lsn)] : []),
      o.visibleAt[i] as number,
    ];
    let prev = c;
    times.forEach((t, k) => {
      fromCommit[k]?.push(t - c);
      steps[k]?.push(t - prev);
      prev = t;
    });
  }
  const out: Record<string, StageFigures> = {};
  names.forEach((n, k) => {
    out[n] = { from_commit: p5099(fromCommit[k] ?? []), step: p5099(steps[k] ?? []) };
  });
  return Object.assign(out, { unmapped });
}
