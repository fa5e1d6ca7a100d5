/**
 * Issue #3 acceptance on real servers: two sources consolidated into one standby, and crashes of both ends of a
 * link. Two primary MariaDB servers (sources orders-east and orders-west, schemas shop_e and shop_w), each with
 * its own config file, journal and standby (hub-a over TLS, hub-b in plaintext through a FaultProxy), both
 * applied into one hub replica server, where the position table keeps one row per source. Processes: `tidemark
 * run --site east|west` (capture, journal, shipper) and `tidemark run --site hub-a|hub-b` (receiver, mirror
 * journal, applier). Under a paced workload:
 *   - both sources arrive side by side at the hub: verify equal per source;
 *   - a byte flipped on the plaintext wire is caught by the message CRC, logged, resent, never applied;
 *   - the east primary-site process (it holds the shipper) and the hub-a process (receiver + applier) are each
 *     SIGKILLed at 10 seeded random moments: afterwards the hub holds exactly the source's last transaction and
 *     verify says equal (the workload's relative updates would show any transaction applied twice).
 * Seed: TIDEMARK_TEST_SEED.
 */
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runWorkload, SHOP_SCHEMA } from '../../bench/workload.ts';
import { FaultProxy } from '../fixtures/fault-proxy.ts';
import { admin, stopInstance } from '../fixtures/mariadb.ts';
import { prng } from '../fixtures/prng.ts';
import {
  type Leg,
  lineText,
  makeSiteCerts,
  SiteRun,
  SteadyLoad,
  seedCounter,
  sleep,
  startFreshInstances,
  testSeed,
  verify,
  waitCaughtUp,
  waitForLog,
  workDir,
  writeSitesConfig,
} from '../fixtures/sites.ts';

const NAME = 'sflt';
const EAST_PORT = 3561;
const WEST_PORT = 3562;
const HUB_PORT = 3563;
const HUB_A_LISTEN = 7561;
const HUB_B_LISTEN = 7562;
const WEST_PROXY = 7662;
const KILLS = Number(process.env['TIDEMARK_SITES_KILLS'] ?? 10);
const SEED = testSeed();
const seeds = seedCounter(SEED);

let dir: string;
let eastConfig: string;
let westConfig: string;
let east: SiteRun;
let west: SiteRun;
let hubA: SiteRun;
let hubB: SiteRun;
let westProxy: FaultProxy;

const eastLeg: Leg = {
  name: 'orders-east → hub',
  sourcePort: EAST_PORT,
  sourceName: 'orders-east',
  replicaPort: HUB_PORT,
};
const westLeg: Leg = {
  name: 'orders-west → hub',
  sourcePort: WEST_PORT,
  sourceName: 'orders-west',
  replicaPort: HUB_PORT,
};
const runs = (): SiteRun[] => [east, west, hubA, hubB];
const log = (s: string) => console.log(`[sites-faults seed=${SEED}] ${s}`);

async function expectEqual(config: string, target: string): Promise<void> {
  const v = await verify(config, [target]);
  expect(v.code, v.out).toBe(0);
  expect(v.doc?.equal, v.out).toBe(true);
  expect(
    v.doc?.targets.map((t) => [t.name, t.equal]),
    v.out,
  ).toEqual([[target, true]]);
}

beforeAll(async () => {
  log('start');
  dir = workDir(NAME);
  await startFreshInstances([
    { name: `${NAME}-east`, port: EAST_PORT },
    { name: `${NAME}-west`, port: WEST_PORT },
    { name: `${NAME}-hub`, port: HUB_PORT },
  ]);
  for (const [port, db] of [
    [EAST_PORT, 'shop_e'],
    [WEST_PORT, 'shop_w'],
  ] as const) {
    const c = await admin(port);
    for (const s of SHOP_SCHEMA(db)) await c.query(s);
    await c.end();
    await runWorkload(() => admin(port), { db, seed: seeds(), transactions: 300, workers: 2 });
  }
  await makeSiteCerts(join(dir, 'certs'), 'tidemark-test-ca', ['east', 'hub-a']);
  westProxy = await FaultProxy.start({ upstreamHost: '127.0.0.1', upstreamPort: HUB_B_LISTEN, listenPort: WEST_PROXY });
  eastConfig = writeSitesConfig({
    file: join(dir, 'east.yaml'),
    source: { name: 'orders-east', port: EAST_PORT, include: ['shop_e.*'] },
    journalDir: './east/journal',
    site: 'east',
    ship: { certsDir: './certs', heartbeatMs: 300 },
    standbys: [
      {
        name: 'hub-a',
        address: `127.0.0.1:${HUB_A_LISTEN}`,
        listen: `127.0.0.1:${HUB_A_LISTEN}`,
        journalDir: './hub/mirrors-a',
      },
    ],
    targets: [{ name: 'hub-east', site: 'hub-a', port: HUB_PORT }],
  });
  westConfig = writeSitesConfig({
    file: join(dir, 'west.yaml'),
    source: { name: 'orders-west', port: WEST_PORT, include: ['shop_w.*'] },
    journalDir: './west/journal',
    site: 'west',
    ship: { plaintext: true, heartbeatMs: 300 },
    standbys: [
      {
        name: 'hub-b',
        address: `127.0.0.1:${WEST_PROXY}`,
        listen: `127.0.0.1:${HUB_B_LISTEN}`,
        journalDir: './hub/mirrors-b',
      },
    ],
    targets: [{ name: 'hub-west', site: 'hub-b', port: HUB_PORT }],
  });
  const logFile = (n: string) => join(dir, 'logs', `${n}.log`);
  hubA = new SiteRun(eastConfig, 'hub-a', logFile('hub-a')).start();
  hubB = new SiteRun(westConfig, 'hub-b', logFile('hub-b')).start();
  east = new SiteRun(eastConfig, 'east', logFile('east')).start();
  west = new SiteRun(westConfig, 'west', logFile('west')).start();
  const ms = await waitCaughtUp([eastLeg, westLeg], runs(), 150_000);
  log(`both baselines applied at the hub in ${ms} ms`);
}, 240_000);

afterAll(async () => {
  await SteadyLoad.stopAll();
  await Promise.all(runs().map((r) => r?.stop()));
  await westProxy?.close();
  for (const n of ['east', 'west', 'hub']) stopInstance(`${NAME}-${n}`);
});

it('two sources consolidate into one standby server side by side: verify equal per source', async () => {
  const loads = [new SteadyLoad(EAST_PORT, 'shop_e', seeds), new SteadyLoad(WEST_PORT, 'shop_w', seeds)];
  await sleep(6000);
  const committed = await Promise.all(loads.map((l) => l.stop()));
  await waitCaughtUp([eastLeg, westLeg], runs(), 60_000);
  log(`consolidated ${committed.join(' + ')} tx`);
  const hub = await admin(HUB_PORT);
  try {
    const [rows] = await hub.query<mysql.RowDataPacket[]>(
      'SELECT source FROM tidemark.applied_position ORDER BY source',
    );
    expect(rows.map((r) => String(r['source']))).toEqual(['orders-east', 'orders-west']);
  } finally {
    await hub.end();
  }
  await expectEqual(eastConfig, 'hub-east');
  await expectEqual(westConfig, 'hub-west');
});

it('a byte flipped on the plaintext wire is caught by the CRC, logged, resent and never applied', async () => {
  const load = new SteadyLoad(WEST_PORT, 'shop_w', seeds);
  await sleep(1000);
  const hubFrom = hubB.lines().length;
  westProxy.closeAll();
  const connections = westProxy.connections;
  westProxy.flipByte(6000, 0x04);
  const deadline = Date.now() + 30_000;
  while (westProxy.flipped === 0 && Date.now() < deadline) await sleep(100);
  expect(westProxy.flipped, 'the proxy flipped a byte').toBe(1);
  const seen = await waitForLog(
    hubB,
    (l) => (l.level ?? 0) >= 40 && /corrupt|crc|bad incoming stream/i.test(lineText(l)),
    15_000,
    'the damaged message at hub-b',
    hubFrom,
  );
  log(`hub-b logged: ${lineText(seen)}`);
  await sleep(2000);
  await load.stop();
  await waitCaughtUp([westLeg], runs(), 60_000);
  expect(westProxy.connections, 'the shipper connected again after the damage').toBeGreaterThan(connections);
  await expectEqual(westConfig, 'hub-west');
});

it(`SIGKILL of the east shipper process and of the hub-a receiver/applier process, ${KILLS} times each under load`, async () => {
  const loads = [
    new SteadyLoad(EAST_PORT, 'shop_e', seeds),
    new SteadyLoad(WEST_PORT, 'shop_w', seeds, { txPerSecond: 40 }),
  ];
  // Two independent seeded kill loops; when one fails, the other stops too (no process left behind).
  let failed = false;
  const killLoop = async (run: SiteRun, seed: number): Promise<number[]> => {
    const r = prng(seed);
    const waits: number[] = [];
    try {
      for (let k = 1; k <= KILLS && !failed; k++) {
        if (!run.running) run.start();
        const wait = 300 + Math.floor(r() * 2700);
        await sleep(wait);
        run.assertRunning();
        await run.kill();
        waits.push(wait);
      }
      if (!failed) run.start();
      return waits;
    } catch (err) {
      failed = true;
      throw err;
    }
  };
  const loops = await Promise.allSettled([killLoop(east, SEED * 3 + 1), killLoop(hubA, SEED * 3 + 2)]);
  const committed = await Promise.all(loads.map((l) => l.stop()));
  log(`kills done under ${committed.join(' + ')} tx`);
  const waits = loops.map((l) => {
    if (l.status === 'rejected') throw l.reason;
    return l.value;
  });
  log(`kill moments (ms after start): east ${waits[0]?.join(',')}; hub-a ${waits[1]?.join(',')}`);
  expect(east.starts).toBe(KILLS + 1);
  expect(hubA.starts).toBe(KILLS + 1);
  const ms = await waitCaughtUp([eastLeg, westLeg], runs(), 120_000);
  log(`caught up ${ms} ms after the last restart`);
  await expectEqual(eastConfig, 'hub-east');
  await expectEqual(westConfig, 'hub-west');
}, 400_000);
