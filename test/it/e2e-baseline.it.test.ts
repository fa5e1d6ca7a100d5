/**
 * End to end through the real CLI: the baseline of a ~65k-row shop schema is taken while the seeded shop
 * workload keeps writing (inserts, updates, deletes, multi-statement transactions, a table without a primary
 * key). Writes continue for a few seconds after the journal switched to streaming. Once the workload stops, the
 * replica must hold exactly the source's last transaction and `tidemark verify` must find every table equal.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runWorkload, SHOP_SCHEMA } from '../../bench/workload.ts';
import { admin } from '../fixtures/mariadb.ts';
import {
  caughtUpWhileRunning,
  createTopology,
  exited,
  replicaPhase,
  runCli,
  startRun,
  type Topology,
  stopTopology,
} from '../fixtures/topology.ts';

const NAME = 'e2ebase';
const SRC_PORT = 3483;
const REP_PORT = 3484;
const SEED = 4242;
const TABLES = ['audit_log', 'customers', 'order_items', 'orders'];

let t: Topology;

beforeAll(async () => {
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['shop.*'] });
  // Small chunks: the baseline takes ~650 chunk reads, so the workload's commits land between many of them.
  const cfg = readFileSync(t.config, 'utf8');
  expect(cfg).toContain('chunk_rows: 500\n');
  writeFileSync(t.config, cfg.replace('chunk_rows: 500\n', 'chunk_rows: 100\n'));
});

afterAll(async () => {
  await stopTopology(null, [], NAME);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function counts(port: number): Promise<Record<string, number>> {
  const c = await admin(port);
  try {
    const out: Record<string, number> = {};
    for (const tb of TABLES) {
      const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM shop.${tb}`);
      out[tb] = Number(rows[0]?.['n']);
    }
    return out;
  } finally {
    await c.end();
  }
}

async function journalPhase(): Promise<string | null> {
  const r = await runCli(['status', '-c', t.config, '--json'], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`tidemark status failed (${r.code}): ${r.stderr}`);
  const doc = JSON.parse(r.stdout) as { journal: { head: { phase: string } | null } };
  return doc.journal.head?.phase ?? null;
}

it('a baseline taken under concurrent writes converges to the source exactly', async () => {
  const src = await admin(SRC_PORT);
  for (const s of SHOP_SCHEMA('shop')) await src.query(s);
  await src.query(
    "INSERT INTO shop.customers (name, email, balance, created) SELECT CONCAT('seed ', seq, ' 🚀 O''Brien'), " +
      "IF(seq % 5 = 0, NULL, CONCAT('s', seq, '@example.com')), seq / 100, " +
      "'2024-01-01 00:00:00.000001' + INTERVAL seq SECOND FROM shop.seq_1_to_20000",
  );
  await src.query(
    "INSERT INTO shop.orders (id, customer_id, status, amount, meta) SELECT seq, seq, ELT(1 + seq % 4, 'new', 'paid', " +
      "'shipped', 'cancelled'), seq * 1.2345, IF(seq % 3 = 0, NULL, JSON_OBJECT('seed', seq, 'ü', 'x')) " +
      'FROM shop.seq_1_to_20000',
  );
  await src.query(
    'INSERT INTO shop.order_items (order_id, line_no, sku, qty, price) SELECT 1 + (seq - 1) % 10000, ' +
      "1 + (seq - 1) DIV 10000, CONCAT('SKU', seq % 99999), 1 + seq % 9, (seq % 10000) / 100 FROM shop.seq_1_to_20000",
  );
  await src.query(
    "INSERT INTO shop.audit_log (at, actor, note) SELECT '2024-01-01' + INTERVAL seq MINUTE, CONCAT('seed', seq % 3), " +
      "IF(seq % 2, NULL, 'dup') FROM shop.seq_1_to_5000",
  );
  await src.end();
  const seeded = await counts(SRC_PORT);
  expect(Object.values(seeded).reduce((a, b) => a + b, 0)).toBe(65_000);

  // The workload runs first; `tidemark run` starts while it writes.
  const ac = new AbortController();
  let committed = 0;
  const commitTimes: number[] = [];
  const workload = runWorkload(() => admin(SRC_PORT), {
    db: 'shop',
    seed: SEED,
    workers: 2,
    signal: ac.signal,
    onCommit: (n) => {
      committed = n;
      commitTimes.push(Date.now());
    },
  });
  let child: ReturnType<typeof startRun> | undefined;
  try {
    await sleep(1000);
    const atStart = committed;
    expect(atStart).toBeGreaterThan(0);
    child = startRun(t.config);
    const started = Date.now();
    // Until the journal's head is a streamed transaction, the baseline is still being taken (or just ended).
    let phase: string | null = null;
    while (phase !== 'stream') {
      if (child.exitCode !== null) throw new Error(`tidemark run exited with ${child.exitCode}`);
      if (Date.now() - started > 40_000) throw new Error(`no streamed transaction after 40 s (phase ${phase})`);
      await sleep(500);
      phase = await journalPhase();
    }
    const atStream = committed;
    const baselineMs = Date.now() - started;
    // Writes kept coming while the baseline was taken…
    expect(atStream).toBeGreaterThan(atStart);
    // …and for a few seconds after it.
    await sleep(3000);
    const atStop = committed;
    expect(atStop).toBeGreaterThan(atStream);
    ac.abort();
    const w = await workload;
    console.log(
      `[e2e-baseline] baseline+first stream ${baselineMs} ms; transactions: ${atStart} before run, ` +
        `${atStream - atStart} during baseline, ${w.committed - atStream} after; ${w.failed} deadlocks`,
    );

    // The capture's baseline (snapshot start → complete, from its log) overlapped commits of the workload.
    const log = readFileSync(join(t.dir, 'tidemark.log'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { time: number; msg: string });
    const snapStart = log.find((l) => l.msg === 'baseline snapshot started')?.time;
    const snapEnd = log.find((l) => l.msg === 'baseline complete')?.time;
    expect(snapStart).toBeDefined();
    expect(snapEnd).toBeDefined();
    const during = commitTimes.filter((x) => x > (snapStart ?? 0) && x < (snapEnd ?? 0)).length;
    console.log(
      `[e2e-baseline] capture baseline took ${(snapEnd ?? 0) - (snapStart ?? 0)} ms, ${during} commits during it`,
    );
    expect(during).toBeGreaterThan(0);

    const p = await caughtUpWhileRunning(t, child, 60_000);
    expect(p.replica).toBe(p.source);
    expect(p.phase).toBe('stream');
    expect(await counts(REP_PORT)).toEqual(await counts(SRC_PORT));

    const v = await runCli(['verify', '-c', t.config, '--json'], { timeoutMs: 60_000 });
    expect(v.code, v.stderr + v.stdout).toBe(0);
    const doc = JSON.parse(v.stdout) as {
      equal: boolean;
      behind: string[];
      targets: { tables: { table: string; equal: boolean; rows: number; replicaRows: number }[] }[];
    };
    expect(doc.equal).toBe(true);
    expect(doc.behind).toEqual([]);
    const tables = doc.targets[0]?.tables ?? [];
    expect(tables.map((x) => [x.table, x.equal]).sort()).toEqual(TABLES.map((x) => [x, true]));
    for (const x of tables) expect(x.replicaRows).toBe(x.rows);
    // The comparison really covered the seeded rows.
    expect(tables.reduce((a, x) => a + x.rows, 0)).toBeGreaterThan(60_000);
    // Nothing changed on the source since: the replica still holds exactly its last transaction.
    const after = await caughtUpWhileRunning(t, child, 10_000);
    expect(after.replica).toBe(after.source);
  } finally {
    ac.abort();
    await workload.catch(() => {});
    if (child) {
      child.kill('SIGTERM');
      await exited(child);
    }
  }
});

it('verify started while the baseline is still being applied waits for it', async () => {
  // A fresh pair: the journal must be empty so that `tidemark run` starts with a baseline.
  t = await createTopology({ name: NAME, sourcePort: SRC_PORT, replicaPort: REP_PORT, include: ['big.*'] });
  // Small apply batches keep the baseline being applied for several seconds.
  const cfg = readFileSync(t.config, 'utf8');
  expect(cfg).toContain('    password: apply-pw\n');
  writeFileSync(
    t.config,
    cfg.replace(
      '    password: apply-pw\n',
      '    password: apply-pw\n    batch:\n      max_transactions: 1\n      max_rows: 100\n',
    ),
  );
  const N = 400_000;
  const src = await admin(SRC_PORT);
  await src.query('CREATE DATABASE big');
  await src.query('CREATE TABLE big.t (id INT NOT NULL PRIMARY KEY, v VARCHAR(40) NOT NULL) ENGINE=InnoDB');
  await src.query(`INSERT INTO big.t SELECT seq, CONCAT('value ', seq) FROM big.seq_1_to_${N}`);
  await src.end();
  const child = startRun(t.config);
  try {
    // No writes at all: the source position stays the snapshot's, which is also what the replica stores while
    // the baseline rows are applied. verify must not take that for "caught up".
    let phase: string | null = null;
    const deadline = Date.now() + 30_000;
    while (phase !== 'baseline' && Date.now() < deadline) {
      await sleep(50);
      phase = await replicaPhase(t);
    }
    expect(phase).toBe('baseline');
    const v = await runCli(['verify', '-c', t.config, '--json'], { timeoutMs: 90_000 });
    expect(v.code, v.stderr + v.stdout).toBe(0);
    const doc = JSON.parse(v.stdout) as {
      equal: boolean;
      behind: string[];
      targets: { tables: { table: string; equal: boolean; rows: number; replicaRows: number }[] }[];
    };
    expect(doc.equal).toBe(true);
    expect(doc.behind).toEqual([]);
    // Compared after the baseline was in: both sides counted every row (not a replica half-way through).
    expect(doc.targets[0]?.tables).toMatchObject([{ table: 't', equal: true, rows: N, replicaRows: N }]);
    const p = await caughtUpWhileRunning(t, child, 30_000);
    expect(p.replica).toBe(p.source);
  } finally {
    child.kill('SIGTERM');
    await exited(child);
  }
});
