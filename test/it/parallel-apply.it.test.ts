/**
 * Parallel apply with ordered commit (issue #15, apply/mysql/PARALLEL.md) against real MariaDB:
 *
 * 1. A reader never sees a later source transaction before an earlier one. Source transaction k inserts row k into
 *    table t(k mod 4) (independent writesets, so units really run at once); every third unit waits ~40 ms before
 *    its turn to commit, so later units finish executing first. A reader looping consistent snapshots of the four
 *    tables must always see exactly {1..m}. The same run with commits in execution order (`faults.unordered`)
 *    must show a gap: the check can fail.
 * 2. `tidemark run` with `parallel: { workers: 4 }` is SIGKILLed ≥ 20 times while units are in flight, under a
 *    conflicting multi-table workload (test/fixtures/conflict-workload.ts: hot rows, unique-key swaps, key moves
 *    with ON UPDATE/DELETE CASCADE, a keyless table, ALTERs). At the end the replica equals the source (verify), the
 *    position row holds the journal's last seq, and every committed source transaction is in `applied_tx`
 *    exactly once.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParallelApplier, type ParallelFaults } from '../../apply/mysql/parallel-applier.ts';
import { runWorkload } from '../../bench/workload.ts';
import type { Column } from '../../record/record.ts';
import { JournalBuilder, type TableDef } from '../fixtures/apply-kit.ts';
import { conflictSchema, conflictWorkload } from '../fixtures/conflict-workload.ts';
import { killRunsAtRandom } from '../fixtures/crash.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { prng } from '../fixtures/prng.ts';
import {
  caughtUpWhileRunning,
  cliOk,
  createTopology,
  startRun,
  stopTopology,
  type Topology,
} from '../fixtures/topology.ts';

const WORKERS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a reader of the replica', () => {
  const RDR = { name: 'pitest-rdr', port: 3900 };
  const N = 600;
  const col = (name: string, type: string): Column => ({ name, type });
  const T = (i: number): TableDef => ({ schema: 'ro', table: `t${i}`, pk: ['k'], columns: [col('k', 'int')] });
  const SNAPSHOT =
    'START TRANSACTION WITH CONSISTENT SNAPSHOT; ' +
    [0, 1, 2, 3].map((i) => `SELECT k FROM ro.t${i}`).join(' UNION ALL ') +
    '; COMMIT';
  let rep: mysql.Connection;

  beforeAll(async () => {
    startInstance(RDR.name, RDR.port);
    rep = await admin(RDR.port);
  });

  afterAll(async () => {
    await rep?.end();
    stopInstance(RDR.name);
  });

  interface Observed {
    samples: number;
    /** Distinct row counts seen: how often the reader saw the replica move. */
    counts: number;
    gaps: number;
    firstGap: string | null;
    final: number;
    retries: number;
    /** The applier's state is the journal's last transaction. */
    stored: boolean;
  }

  /** Applies source transactions 1..N with `workers` sessions while a reader samples consistent snapshots. */
  async function applyWhileReading(faults: ParallelFaults): Promise<Observed> {
    await resetSchemas(rep);
    await rep.query('CREATE DATABASE ro');
    for (let i = 0; i < 4; i++) await rep.query(`CREATE TABLE ro.t${i} (k INT PRIMARY KEY)`);
    const j = new JournalBuilder();
    for (let k = 1; k <= N; k++) j.tx((t) => t.insert(T(k % 4), [[BigInt(k)]]));
    const a = new ParallelApplier({
      target: {
        name: 'rdr',
        host: '127.0.0.1',
        port: RDR.port,
        user: 'tidemark_apply',
        password: 'apply-pw',
        batch: { max_transactions: 2, max_rows: 1000, max_wait_ms: 5 },
        no_primary_key: 'full-row',
        parallel: { workers: WORKERS, max_row_keys: 1_000_000 },
      },
      source: 'src',
      faults,
    });
    const reader = await admin(RDR.port);
    const o: Observed = { samples: 0, counts: 0, gaps: 0, firstGap: null, final: 0, retries: 0, stored: false };
    const seen = new Set<number>();
    const sample = async (): Promise<number> => {
      const [res] = (await reader.query(SNAPSHOT)) as unknown as [[unknown, mysql.RowDataPacket[], unknown]];
      const ks = res[1].map((r) => Number(r['k']));
      const max = ks.reduce((m, k) => Math.max(m, k), 0);
      o.samples++;
      seen.add(ks.length);
      // Keys are distinct, so {1..m} exactly when the largest is the count.
      if (max !== ks.length) {
        o.gaps++;
        const have = new Set(ks);
        const missing = Array.from({ length: max }, (_, i) => i + 1).filter((k) => !have.has(k));
        o.firstGap ??= `${ks.length} rows up to k=${max}, missing k=${missing.slice(0, 5).join(',')}`;
      }
      return ks.length;
    };
    let applying = true;
    try {
      await a.open();
      const loop = (async () => {
        while (applying) await sample();
      })();
      try {
        await a.run(j.read());
      } finally {
        applying = false;
        await loop;
      }
      o.final = await sample();
      o.counts = seen.size;
      o.retries = a.retries;
      o.stored = a.state?.seq === j.items.at(-1)?.entry.seq;
    } finally {
      await a.close();
      await reader.end();
    }
    return o;
  }

  /** Every third unit waits before its turn to commit, so the units after it finish executing first. */
  const slowThird: ParallelFaults['beforeCommit'] = async (u) => {
    if (u.index % 3 === 0) await sleep(40);
  };

  it('never sees a later source transaction before an earlier one (commits in source order)', async () => {
    const o = await applyWhileReading({ beforeCommit: slowThird });
    console.log(`[parallel-apply] ordered: ${JSON.stringify(o)}`);
    expect(o.firstGap).toBeNull();
    expect(o.gaps).toBe(0);
    expect(o.final).toBe(N);
    expect(o.stored).toBe(true);
    // The reader really watched the apply: many snapshots, at many different points.
    expect(o.samples).toBeGreaterThan(200);
    expect(o.counts).toBeGreaterThan(30);
  });

  it('does see a gap when units commit as soon as they executed (the check above can fail)', async () => {
    const o = await applyWhileReading({ beforeCommit: slowThird, unordered: true });
    console.log(`[parallel-apply] unordered: ${JSON.stringify(o)}`);
    expect(o.gaps).toBeGreaterThan(0);
    expect(o.final).toBe(N);
  });
});

describe('tidemark run with 4 apply workers', () => {
  const NAME = 'pitest';
  const KILLS = Number(process.env['TIDEMARK_CRASH_KILLS'] ?? 22);
  let t: Topology;
  let run: ChildProcess | null = null;
  let src: mysql.Connection;
  let rep: mysql.Connection;

  beforeAll(async () => {
    t = await createTopology({
      name: NAME,
      sourcePort: 3901,
      replicaPort: 3902,
      include: ['pw.*'],
      targetYaml: `    batch: { max_transactions: 2, max_rows: 200, max_wait_ms: 5 }\n    parallel: { workers: ${WORKERS} }\n`,
    });
    src = await admin(t.sourcePort);
    rep = await admin(t.replicaPort);
    for (const s of conflictSchema('pw')) await src.query(s);
  });

  afterAll(async () => {
    await stopTopology(run, [src, rep], NAME);
  });

  /** Sessions with a larger server thread id than this belong to the current `tidemark run` (ids only grow). */
  let sessionFloor = 0;

  /**
   * Open transactions of the current run's apply sessions (tidemark_apply) on the replica, from SHOW ENGINE INNODB
   * STATUS: information_schema.INNODB_TRX is a cache refreshed at most every 100 ms, too stale to time a kill by;
   * a killed run's session may linger a moment (e.g. in a lock wait), hence the thread id floor.
   */
  async function openApplyTransactions(): Promise<number> {
    const [rows] = await rep.query<mysql.RowDataPacket[]>('SHOW ENGINE INNODB STATUS');
    return String(rows[0]?.['Status'])
      .split('\n---TRANSACTION ')
      .slice(1)
      .filter((x) => {
        const m = /^(?:MariaDB|MySQL) thread id (\d+),.* tidemark_apply\s*$/m.exec(x);
        return /^[^\n]*ACTIVE/.test(x) && m !== null && Number(m[1]) > sessionFloor;
      }).length;
  }

  /** Raises sessionFloor above every session there is now (the next run's sessions come after). */
  async function newSessionFloor(): Promise<void> {
    const [rows] = await rep.query<mysql.RowDataPacket[]>('SELECT MAX(ID) AS m FROM information_schema.PROCESSLIST');
    sessionFloor = Number(rows[0]?.['m']);
  }

  /** The last error lines of tidemark's log. */
  function logErrors(): string {
    const lines = readFileSync(join(t.dir, 'tidemark.log'), 'utf8').split('\n');
    return lines
      .filter((l) => /"level":(50|60)/.test(l))
      .slice(-5)
      .join('\n');
  }

  /** Waits up to `ms` for `min` open apply transactions; returns how many were open then (0: none came). */
  async function waitOpenApplyTransaction(ms: number, min = 1): Promise<number> {
    for (const until = Date.now() + ms; Date.now() < until; await sleep(2)) {
      const n = await openApplyTransactions();
      if (n >= min) return n;
    }
    return 0;
  }

  it(`SIGKILLed ≥ 20 times mid-group, applies every source transaction exactly once`, async () => {
    const seed = Number(process.env['TIDEMARK_CRASH_SEED'] ?? Date.now() % 100000);
    const log = (l: string) => console.log(`[parallel-apply seed=${seed}] ${l}`);
    const w = conflictWorkload('pw', { alterEvery: 700, maxAlters: 3, pauseMs: 8 });
    // Some transactions before the first start (they reach the replica through the baseline).
    await runWorkload(() => admin(t.sourcePort), {
      db: 'pw',
      seed,
      transactions: 200,
      workers: 3,
      transaction: w.transaction,
    });

    // How many apply transactions of one run were open at once.
    let maxOpen = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxOpen = Math.max(maxOpen, await openApplyTransactions().catch(() => 0));
        await sleep(20);
      }
    })();
    let midGroup = 0;
    let severalOpen = 0;
    const r = prng(seed);
    try {
      const ac = new AbortController();
      const workload = runWorkload(() => admin(t.sourcePort), {
        db: 'pw',
        seed: seed + 1,
        workers: 3,
        signal: ac.signal,
        transaction: w.transaction,
      });
      try {
        await killRunsAtRandom(t.config, {
          kills: KILLS,
          r,
          minMs: 0,
          maxMs: 600,
          // Once this process applies (its first open apply transaction, after its start-up), wait a random moment
          // more, then kill while apply transactions are open.
          beforeKill: async (k) => {
            const opened = await waitOpenApplyTransaction(15_000);
            const errors = logErrors();
            if (!opened || errors.includes('APPLY_DIVERGED')) {
              throw new Error(`run ${k}: ${opened ? 'apply diverged' : 'no apply transaction in 15 s'}:\n${errors}`);
            }
            await sleep(Math.floor(r() * 300));
            // Several units in flight if that comes soon (a kill between two workers' commits, or while one waits
            // for its predecessor), else any.
            const open = (await waitOpenApplyTransaction(1000, 2)) || (await waitOpenApplyTransaction(3000));
            if (open > 0) midGroup++;
            if (open > 1) severalOpen++;
          },
          log: async (k, wait) => {
            await newSessionFloor();
            log(`kill ${k}/${KILLS} after ${wait} ms (${w.committed.length} tx committed, ${midGroup} mid-group)`);
          },
        });
      } finally {
        ac.abort();
        await workload;
      }

      run = startRun(t.config);
      const started = Date.now();
      await caughtUpWhileRunning(t, run, 120_000);
      log(`caught up ${Date.now() - started} ms after the last restart; ${w.committed.length} tx, ${w.alters} ALTERs`);
    } finally {
      sampling = false;
      await sampler;
    }

    const v = await cliOk(t.config, ['verify', '--json', '--wait-seconds', '60']);
    expect(v).toMatch(/"equal":\s*true/);
    expect(v).not.toMatch(/"equal":\s*false/);
    const status = JSON.parse(await cliOk(t.config, ['status', '--json'])) as { journal: { head: { seq: string } } };
    const [pos] = await rep.query<mysql.RowDataPacket[]>(
      'SELECT CAST(seq AS CHAR) AS seq FROM tidemark.applied_position WHERE source = ?',
      [NAME],
    );
    expect(pos[0]?.['seq']).toBe(status.journal.head.seq);

    // Each committed source transaction exactly once: none missing, none extra, none applied twice (n > 1).
    const [applied] = await rep.query<mysql.RowDataPacket[]>('SELECT id, n FROM pw.applied_tx ORDER BY id');
    const got = new Map(applied.map((r) => [Number(r['id']), Number(r['n'])]));
    const want = new Set(w.committed);
    expect([...want].filter((id) => !got.has(id)).slice(0, 20)).toEqual([]);
    expect([...got.keys()].filter((id) => !want.has(id)).slice(0, 20)).toEqual([]);
    expect([...got].filter(([, n]) => n !== 1).slice(0, 20)).toEqual([]);
    expect(got.size).toBe(w.committed.length);

    log(
      `${KILLS} kills, ${midGroup} with an apply transaction open (${severalOpen} with several); ` +
        `at most ${maxOpen} open at once`,
    );
    expect(midGroup).toBeGreaterThanOrEqual(20);
    // The parallel path ran: several apply transactions open at the same time.
    expect(maxOpen).toBeGreaterThanOrEqual(2);
    const tidemarkLog = readFileSync(join(t.dir, 'tidemark.log'), 'utf8');
    expect(tidemarkLog).toMatch(new RegExp(`"workers":${WORKERS},.*"msg":"parallel apply sessions open"`));
    expect(tidemarkLog).not.toMatch(/APPLY_DIVERGED/);
  }, 400_000);
});
