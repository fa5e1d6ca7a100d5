/**
 * Sites over Kafka and Redis Streams, end to end (issue #3): a MariaDB source, `tidemark run --site primary`
 * (capture, journal, shipper) and `tidemark run --site drN` (receiver, mirror journal, applier) as separate
 * processes, a replica at the standby site. Under a steady workload the broker is stopped cleanly and restarted,
 * then SIGKILLed and restarted; afterwards the standby's target must hold exactly the source's data (`tidemark
 * verify` equal, and our own checksums). The workload inserts into a table without a primary key in every
 * transaction, so a transaction applied twice leaves an extra row and one lost leaves a row missing: both change
 * the checksum and the row count. A Redis server without appendfsync always must be refused, naming the setting.
 *
 * Servers: MariaDB sbsrc 3581 / sbrep 3582, Kafka sb-kafka 3592 (controller 3692), Redis sb-redis 3596 and
 * sb-redis-lax 3597 (appendfsync everysec).
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { schemaChecksums } from '../fixtures/checksums.ts';
import { killKafka, startKafka, stopKafka } from '../fixtures/kafka.ts';
import { admin, REPO_ROOT, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { adminClient, killRedis, startRedis, stopRedis } from '../fixtures/redis.ts';
import {
  logProblems,
  type SiteProcess,
  type StandbySpec,
  startSite,
  stopSite,
  waitApplied,
  writeSitesConfig,
} from '../fixtures/sites-brokers.ts';
import { runCli } from '../fixtures/topology.ts';

const SRC = { name: 'sbsrc', port: 3581 };
const REP = { name: 'sbrep', port: 3582 };
const KAFKA = { name: 'sb-kafka', port: 3592 };
const REDIS = { name: 'sb-redis', port: 3596 };
const LAX = { name: 'sb-redis-lax', port: 3597 };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const since = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

beforeAll(async () => {
  const t0 = Date.now();
  for (const i of [SRC, REP]) {
    startInstance(i.name, i.port, { fresh: true });
    const c = await admin(i.port);
    await resetSchemas(c);
    await c.end();
  }
  console.log(`mariadb source + replica: ${since(t0)}`);
}, 180_000);

afterAll(() => {
  for (const stop of [() => stopKafka(KAFKA.name), () => stopRedis(REDIS.name), () => stopRedis(LAX.name)]) {
    try {
      stop();
    } catch {
      // not started
    }
  }
  stopInstance(SRC.name);
  stopInstance(REP.name);
});

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Creates the test's schema on the source: `ev` (no primary key, insert-only) and `acct` (updated). */
async function createSchema(db: string): Promise<void> {
  const c = await admin(SRC.port);
  try {
    await c.query(`CREATE DATABASE ${db}`);
    await c.query(
      `CREATE TABLE ${db}.ev (w INT NOT NULL, n INT NOT NULL, v VARCHAR(40) NOT NULL, at DATETIME(6) NOT NULL)`,
    );
    await c.query(`CREATE TABLE ${db}.acct (id INT NOT NULL PRIMARY KEY, bal BIGINT NOT NULL, upd INT NOT NULL)`);
    await c.query(
      `INSERT INTO ${db}.acct VALUES ${Array.from({ length: 40 }, (_, i) => `(${i + 1}, 0, 0)`).join(', ')}`,
    );
  } finally {
    await c.end();
  }
}

interface Load {
  committed(): number;
  stop(): Promise<number>;
}

/**
 * `workers` connections, each committing transactions of one `ev` insert (no primary key) and one `acct`
 * update (its own rows: no lock waits), about `perWorkerTxPerS` a second each, until stopped.
 */
function startLoad(db: string, workers = 3, perWorkerTxPerS = 80): Load {
  let on = true;
  let committed = 0;
  const done = Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const c = await admin(SRC.port);
      try {
        for (let n = 1; on; n++) {
          await c.query('START TRANSACTION');
          await c.query(`INSERT INTO ${db}.ev VALUES (?, ?, ?, NOW(6))`, [w, n, `w${w}-n${n}`]);
          await c.query(`UPDATE ${db}.acct SET bal = bal + ?, upd = upd + 1 WHERE id = ?`, [n, w * 10 + (n % 10) + 1]);
          await c.query('COMMIT');
          committed++;
          await sleep(1000 / perWorkerTxPerS);
        }
      } finally {
        await c.end();
      }
    }),
  );
  const load: Load = {
    committed: () => committed,
    stop: async () => {
      on = false;
      await done;
      return committed;
    },
  };
  cleanups.push(() => load.stop());
  return load;
}

async function count(port: number, sql: string): Promise<number> {
  const c = await admin(port);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>(sql);
    return Number(rows[0]?.['n']);
  } catch (err) {
    if ((err as { errno?: number }).errno === 1146 || (err as { errno?: number }).errno === 1049) return 0;
    throw err;
  } finally {
    await c.end();
  }
}

interface Pipeline {
  dir: string;
  config: string;
  source: string;
  db: string;
  target: string;
  procs: SiteProcess[];
}

/** A fresh work dir and config (one source, one standby with its target), and both site processes started. */
async function pipeline(name: string, serverId: number, standby: StandbySpec): Promise<Pipeline> {
  const dir = join(REPO_ROOT, '.run', 'work', `sites-brokers-${name}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const db = `sb_${name}`;
  await createSchema(db);
  const target = `replica-${standby.name}`;
  const config = writeSitesConfig({
    dir,
    source: { name: db, port: SRC.port, serverId, include: [`${db}.*`] },
    standbys: [standby],
    targets: [{ name: target, port: REP.port, site: standby.name }],
    ship: {},
  });
  const procs = [startSite(config, 'primary'), startSite(config, standby.name)];
  const p = { dir, config, source: db, db, target, procs };
  cleanups.push(() => Promise.all(procs.map((x) => stopSite(x))));
  await waitApplied({ ...where(p), timeoutMs: 120_000, what: `${name}: baseline through ${standby.name}` });
  return p;
}

const where = (p: Pipeline) => ({
  sourcePort: SRC.port,
  targetPort: REP.port,
  source: p.source,
  procs: p.procs,
  dir: p.dir,
});

/** Waits until the standby's replica holds `more` rows of ev beyond what it held when called. */
async function flowing(p: Pipeline, more: number, what: string, timeoutMs = 120_000): Promise<void> {
  const sql = `SELECT COUNT(*) AS n FROM ${p.db}.ev`;
  const from = await count(REP.port, sql);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const x of p.procs) {
      if (x.exitCode !== null || x.signalCode !== null) {
        throw new Error(
          `${what}: a site process exited (code ${x.exitCode})\n${x.lastStderr()}\n${logProblems(p.dir)}`,
        );
      }
    }
    const n = await count(REP.port, sql);
    if (n >= from + more) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: the replica went from ${from} to ${n} ev rows in ${timeoutMs} ms\n${logProblems(p.dir)}`,
      );
    }
    await sleep(200);
  }
}

/** The standby's entry in `tidemark status --json`. */
async function standbyStatus(p: Pipeline, standby: string): Promise<Record<string, unknown>> {
  const st = await runCli(['status', '-c', p.config, '--json'], { timeoutMs: 60_000 });
  expect(st.code, st.stderr).toBe(0);
  const doc = JSON.parse(st.stdout) as { standbys?: { name: string }[] };
  const sb = doc.standbys?.find((x) => x.name === standby);
  if (!sb) throw new Error(`status: no standby ${standby}: ${st.stdout}`);
  return sb as Record<string, unknown>;
}

/**
 * The end of every scenario: the load stopped, the standby's target caught up with the source's GTID, the same
 * rows (checksums, row counts), `tidemark verify` equal, status showing the standby with nothing to ship, and
 * both processes stopping cleanly.
 */
async function expectExact(p: Pipeline, load: Load, standby: string): Promise<void> {
  const committed = await load.stop();
  await waitApplied({ ...where(p), timeoutMs: 120_000, what: 'catching up after the load' });
  const src = await admin(SRC.port);
  const rep = await admin(REP.port);
  try {
    const [s, r] = [await schemaChecksums(src, p.db), await schemaChecksums(rep, p.db)];
    expect(r).toEqual(s);
    expect(await count(REP.port, `SELECT COUNT(*) AS n FROM ${p.db}.ev`)).toBe(committed);
    // No transaction twice: each (w, n) once at the replica.
    expect(
      await count(
        REP.port,
        `SELECT COUNT(*) AS n FROM (SELECT w, n FROM ${p.db}.ev GROUP BY w, n HAVING COUNT(*) > 1) d`,
      ),
    ).toBe(0);
  } finally {
    await src.end();
    await rep.end();
  }
  const v = await runCli(['verify', '-c', p.config, '--target', p.target, '--json'], { timeoutMs: 120_000 });
  expect(v.code, `verify: ${v.stdout}\n${v.stderr}`).toBe(0);
  expect((JSON.parse(v.stdout) as { equal: boolean }).equal).toBe(true);

  // The primary learns the standby's durable LSN from the standby (acks): within a few heartbeats nothing is due.
  let last = '';
  const deadline = Date.now() + 30_000;
  for (;;) {
    const sb = await standbyStatus(p, standby);
    last = JSON.stringify(sb);
    if (Number(sb['lag_records']) === 0) break;
    if (Date.now() > deadline) {
      throw new Error(`status: standby ${standby} still behind after 30 s: ${last}\n${logProblems(p.dir)}`);
    }
    await sleep(1000);
  }
  for (const x of p.procs) expect(await stopSite(x), `${x.spawnargs.slice(2).join(' ')}: ${x.lastStderr()}`).toBe(0);
}

describe('sites over brokers (Kafka, Redis Streams): restarts under load', () => {
  it('Kafka broker stopped and restarted, then SIGKILLed and restarted, under load: no loss, no duplicate', async () => {
    const t0 = Date.now();
    startKafka(KAFKA.name, KAFKA.port, { fresh: true });
    console.log(`kafka up: ${since(t0)}`);
    const p = await pipeline('kafka', 46_001, {
      name: 'dr2',
      transport: 'kafka',
      brokers: [`127.0.0.1:${KAFKA.port}`],
      journal_dir: './dr2/mirrors',
    });
    const load = startLoad(p.db);
    await flowing(p, 300, 'kafka: before the restarts');

    stopKafka(KAFKA.name);
    const downAt = load.committed();
    await sleep(2000);
    startKafka(KAFKA.name, KAFKA.port);
    console.log(`kafka stopped + started at ${downAt} tx (${since(t0)})`);
    await flowing(p, 300, 'kafka: after a clean restart');

    // Down longer than the shipper's produce retries (about 15 s): its session ends, and the next one resumes from
    // what the partition really holds (a frame the dead session sent may arrive twice; the standby drops it).
    killKafka(KAFKA.name);
    const killedAt = load.committed();
    await sleep(20_000);
    startKafka(KAFKA.name, KAFKA.port);
    console.log(`kafka SIGKILLed at ${killedAt} tx, started 20 s later (${since(t0)})`);
    await flowing(p, 300, 'kafka: after a SIGKILL');

    const sessions = await standbyStatus(p, 'dr2');
    expect(Number(sessions['connects']), JSON.stringify(sessions)).toBeGreaterThan(1);
    await expectExact(p, load, 'dr2');
    console.log(`kafka scenario: ${load.committed()} transactions, ${since(t0)}`);
  });

  it('Redis stopped and restarted, then SIGKILLed and restarted, under load: no loss, no duplicate', async () => {
    const t0 = Date.now();
    startRedis(REDIS.name, REDIS.port, { fresh: true });
    const p = await pipeline('redis', 46_002, {
      name: 'dr3',
      transport: 'redis',
      address: `127.0.0.1:${REDIS.port}`,
      journal_dir: './dr3/mirrors',
    });
    const load = startLoad(p.db);
    await flowing(p, 300, 'redis: before the restarts');

    stopRedis(REDIS.name);
    const downAt = load.committed();
    await sleep(2000);
    startRedis(REDIS.name, REDIS.port);
    console.log(`redis stopped + started at ${downAt} tx (${since(t0)})`);
    await flowing(p, 300, 'redis: after a clean restart');

    killRedis(REDIS.name);
    const killedAt = load.committed();
    await sleep(2000);
    startRedis(REDIS.name, REDIS.port);
    console.log(`redis SIGKILLed + started at ${killedAt} tx (${since(t0)})`);
    await flowing(p, 300, 'redis: after a SIGKILL');

    await expectExact(p, load, 'dr3');
    console.log(`redis scenario: ${load.committed()} transactions, ${since(t0)}`);
  });

  it('a Redis server without appendfsync always is refused (durability: refuse), naming the setting', async () => {
    startRedis(LAX.name, LAX.port, { fresh: true, appendfsync: 'everysec' });
    const dir = join(REPO_ROOT, '.run', 'work', 'sites-brokers-lax');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const db = 'sb_lax';
    await createSchema(db);
    const config = writeSitesConfig({
      dir,
      source: { name: db, port: SRC.port, serverId: 46_003, include: [`${db}.*`] },
      standbys: [
        {
          name: 'dr3',
          transport: 'redis',
          address: `127.0.0.1:${LAX.port}`,
          durability: 'refuse',
          journal_dir: './dr3/mirrors',
        },
      ],
      targets: [{ name: 'replica-dr3', port: REP.port, site: 'dr3' }],
      ship: {},
    });
    // Every role in one process: the shipper checks the server before it writes anything.
    const run = startSite(config);
    cleanups.push(() => stopSite(run));
    // The quotes may come escaped (a JSON log line).
    const named = /appendfsync is \\?"everysec\\?", must be \\?"always/;
    const deadline = Date.now() + 60_000;
    let seen = '';
    for (;;) {
      const logText = readFileSync(run.logFile, 'utf8');
      if (run.exitCode !== null) {
        // A refusal that stops the process: a non-zero exit and the one-line error naming the setting.
        expect(run.exitCode).not.toBe(0);
        expect(run.lastStderr()).toMatch(/^tidemark: .*appendfsync/m);
        seen = `exit ${run.exitCode}: ${run.lastStderr().split('\n').pop()}`;
        break;
      }
      const st = await runCli(['status', '-c', config, '--json'], { timeoutMs: 60_000 });
      const sb = (
        JSON.parse(st.stdout || '{}') as { standbys?: { name: string; link?: unknown; error?: unknown }[] }
      ).standbys?.find((x) => x.name === 'dr3');
      // A refusal that keeps the process (other standbys go on): the status and the log name the setting.
      if (sb && named.test(String(sb.error)) && named.test(logText)) {
        expect(sb.link).not.toBe('connected');
        seen = `status: link ${sb.link}, ${sb.error}`;
        break;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `no refusal naming appendfsync within 60 s; status: ${JSON.stringify(sb)}\n${run.lastStderr()}`,
        );
      }
      await sleep(1000);
    }
    expect(named.test(readFileSync(run.logFile, 'utf8'))).toBe(true);
    // Nothing was shipped into the lax server (the standby's receiver may have made its empty stream and group).
    const r = adminClient(LAX.port);
    try {
      for (const key of await r.keys('tidemark*')) {
        if ((await r.type(key)) === 'stream') expect(await r.xlen(key), key).toBe(0);
      }
    } finally {
      r.disconnect();
    }
    console.log(`refused (${seen})`);
  });
});
