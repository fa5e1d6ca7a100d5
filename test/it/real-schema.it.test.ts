/**
 * The "real schema" soak of issue #11: FK cascades (two levels, CASCADE and SET NULL), a sequence and a table
 * defaulting to its NEXTVAL, a system-versioned table, XA transactions in a schema outside the include set,
 * cross-schema RENAME (in and out) and CREATE … LIKE, and multi-table DROPs naming an outside table — all while
 * `tidemark run` is SIGKILLed at random moments. Afterwards `tidemark verify` must say every included table is
 * equal, our own checksums (history rows and the sequence included) must agree, and the replica's tables outside
 * the include set must be exactly as they were.
 */
import type { ChildProcess } from 'node:child_process';
import type mysql from 'mysql2/promise';
import { afterAll, expect, test } from 'vitest';
import { admin } from '../fixtures/mariadb.ts';
import { killRunsAtRandom } from '../fixtures/crash.ts';
import { prng } from '../fixtures/prng.ts';
import { REPLICA_ONLY, RS_SETUP, runRealSchemaWorkload } from '../fixtures/real-schema.ts';
import { caughtUpWhileRunning, createTopology, exited, runCli, startRun, stopTopology } from '../fixtures/topology.ts';

const NAME = 'realschema';
const SRC_PORT = 3761;
const REP_PORT = 3762;

afterAll(async () => {
  await stopTopology(null, [], NAME);
});

type Rows = mysql.RowDataPacket[];

/** Every table of a schema with a checksum of all its rows (system-versioned tables: history included). */
async function contents(port: number, schema: string): Promise<Record<string, string>> {
  const c = await admin(port);
  try {
    const [tables] = await c.query<Rows>(
      'SELECT table_name AS t, table_type AS k FROM information_schema.tables WHERE table_schema = ? ORDER BY 1',
      [schema],
    );
    const out: Record<string, string> = {};
    for (const t of tables) {
      const name = `\`${schema}\`.\`${String(t['t'])}\``;
      const kind = String(t['k']);
      if (kind === 'SEQUENCE') {
        const [[s]] = (await c.query(`SELECT * FROM ${name}`)) as unknown as [Rows];
        out[String(t['t'])] = `seq:${JSON.stringify(s)}`;
        continue;
      }
      const all = kind === 'SYSTEM VERSIONED' ? ' FOR SYSTEM_TIME ALL' : '';
      const [cols] = await c.query<Rows>(
        'SELECT column_name AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position',
        [schema, String(t['t'])],
      );
      const list = cols.map((x) => `\`${String(x['n'])}\``);
      if (all) list.push('ROW_START', 'ROW_END');
      const [[row]] = (await c.query(
        `SELECT COUNT(*) AS n, COALESCE(BIT_XOR(CRC32(CONCAT_WS('|', ${list.map((x) => `COALESCE(${x}, '∅')`).join(', ')}))), 0) AS x FROM ${name}${all}`,
      )) as unknown as [Rows];
      out[String(t['t'])] = `${kind}:${row?.['n']}:${row?.['x']}`;
    }
    return out;
  } finally {
    await c.end();
  }
}

test('real schema under SIGKILLs: cascades, sequence, system versioning, XA, cross-schema DDL → equal, outside untouched', async () => {
  const seed = Number(process.env['TIDEMARK_CRASH_SEED'] ?? Date.now() % 100000);
  const kills = Number(process.env['TIDEMARK_RS_KILLS'] ?? 10);
  const log = (l: string) => console.log(`[real-schema seed=${seed}] ${l}`);
  const t = await createTopology({
    name: NAME,
    sourcePort: SRC_PORT,
    replicaPort: REP_PORT,
    include: ['rs.*', 'rs2.*'],
  });
  const src = await admin(SRC_PORT);
  for (const s of RS_SETUP) await src.query(s);
  await src.end();
  const rep = await admin(REP_PORT);
  for (const s of REPLICA_ONLY) await rep.query(s);
  await rep.end();
  const outsideBefore = await contents(REP_PORT, 'other');

  const ac = new AbortController();
  const workload = runRealSchemaWorkload(() => admin(SRC_PORT), { seed, signal: ac.signal, ddlEveryMs: 1200 });
  let child: ChildProcess | undefined;
  try {
    await killRunsAtRandom(t.config, {
      kills,
      r: prng(seed),
      minMs: 400,
      maxMs: 2600,
      log: (k, wait) => log(`kill ${k}/${kills} after ${wait} ms`),
    });
    // Some more workload with tidemark running, so the last cycles stream rather than baseline.
    child = startRun(t.config);
    await new Promise((res) => setTimeout(res, 3000));
  } finally {
    ac.abort();
  }
  const counts = await workload;
  log(`workload: ${JSON.stringify(counts)}`);
  // The workload may end with a transaction on an excluded schema (e.g. other.xa_t's XA COMMIT): it journals
  // nothing, so the replica's applied GTID stays one behind the source's. One last included write ends it.
  const a = await admin(SRC_PORT);
  await a.query("REPLACE INTO rs2.kv (k, v) VALUES (-1, CONCAT('workload end ', NOW(6)))");
  await a.end();
  expect(counts.committed).toBeGreaterThan(100);
  expect(counts.ddlCycles).toBeGreaterThan(3);
  expect(counts.xa).toBeGreaterThan(0);
  try {
    if (!child) throw new Error('no run');
    await caughtUpWhileRunning(t, child, 120_000);
    const v = await runCli(['verify', '-c', t.config, '--json', '--wait-seconds', '60']);
    expect(v.code, `${v.stdout}\n${v.stderr}`).toBe(0);
    const verdict = JSON.parse(v.stdout.trim().split('\n').pop() ?? '{}') as { equal?: boolean };
    expect(verdict.equal, v.stdout).toBe(true);
    // Our own comparison: every table of the included schemas, history rows and the sequence's state included.
    for (const schema of ['rs', 'rs2']) {
      const a = await contents(SRC_PORT, schema);
      const b = await contents(REP_PORT, schema);
      expect(Object.keys(a).length).toBeGreaterThan(schema === 'rs' ? 8 : 0);
      expect(b, `schema ${schema}`).toEqual(a);
    }
    // Outside the include set, the replica is exactly as it was (no DROP of other.victim_*, no moved-out copy).
    expect(await contents(REP_PORT, 'other')).toEqual(outsideBefore);
  } finally {
    child?.kill('SIGTERM');
    if (child) await exited(child);
  }
}, 420_000);
