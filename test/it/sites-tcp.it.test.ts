/**
 * Issue #3 acceptance on real servers, embedded TCP/TLS transport: one primary (capture + journal + a shipper per
 * standby, `tidemark run --site primary`) fans out to three standby sites (each `tidemark run --site drN`: the
 * receiver writing the mirror journal and the applier of that site's replica). dr1 and dr2 are reached through
 * FaultProxies. Under a paced multi-table workload:
 *   - fan-out: dr3's process is down for 15 s while dr1 and dr2 keep near-zero lag; dr3 catches up after;
 *   - `ship pause` / `ship resume` of one standby;
 *   - the dr1 and dr2 links are cut for 32 s (dr1 stalled, dr2 stalled with its connections reset every 5 s), then
 *     healed: both catch up;
 *   - a byte flipped on the dr1 wire (inside TLS) is detected, the link resumes, nothing damaged is applied;
 *   - a shipper with a certificate from another CA, and one without TLS, are refused by dr1 with the reason in its
 *     log, and nothing of theirs reaches the mirror.
 * Every test ends with `tidemark verify` saying equal. Seed: TIDEMARK_TEST_SEED.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runWorkload, SHOP_SCHEMA } from '../../bench/workload.ts';
import { FaultProxy } from '../fixtures/fault-proxy.ts';
import { admin, stopInstance } from '../fixtures/mariadb.ts';
import {
  appliedRow,
  isCaughtUp,
  type Leg,
  lineText,
  makeSiteCerts,
  type SitesConfigSpec,
  SiteRun,
  SteadyLoad,
  seedCounter,
  sleep,
  standbyOf,
  startFreshInstances,
  status,
  testSeed,
  verify,
  waitCaughtUp,
  waitForLog,
  workDir,
  writeSitesConfig,
} from '../fixtures/sites.ts';
import { cliOk } from '../fixtures/topology.ts';

const NAME = 'stcp';
const SOURCE = 'orders';
const SRC_PORT = 3551;
const DR = ['dr1', 'dr2', 'dr3'] as const;
type Dr = (typeof DR)[number];
const REPLICA_PORT: Record<Dr, number> = { dr1: 3552, dr2: 3553, dr3: 3554 };
const LISTEN_PORT: Record<Dr, number> = { dr1: 7551, dr2: 7552, dr3: 7553 };
const PROXY_PORT = { dr1: 7651, dr2: 7652 } as const;
const SEED = testSeed();
const seeds = seedCounter(SEED);

let dir: string;
let config: string;
let primary: SiteRun;
const site = {} as Record<Dr, SiteRun>;
const proxy = {} as Record<'dr1' | 'dr2', FaultProxy>;

const leg = (d: Dr): Leg => ({
  name: `replica-${d}`,
  sourcePort: SRC_PORT,
  sourceName: SOURCE,
  replicaPort: REPLICA_PORT[d],
});
const runs = (): SiteRun[] => [primary, ...DR.map((d) => site[d])];
const log = (s: string) => console.log(`[sites-tcp seed=${SEED}] ${s}`);

async function expectEqual(targets: Dr[]): Promise<void> {
  const v = await verify(
    config,
    targets.map((d) => `replica-${d}`),
  );
  expect(v.code, v.out).toBe(0);
  expect(v.doc?.equal, v.out).toBe(true);
  expect(v.doc?.targets.map((t) => [t.name, t.equal]).sort(), v.out).toEqual(
    targets.map((d) => [`replica-${d}`, true]).sort(),
  );
}

beforeAll(async () => {
  log('start');
  dir = workDir(NAME);
  await startFreshInstances([
    { name: `${NAME}-src`, port: SRC_PORT },
    ...DR.map((d) => ({ name: `${NAME}-${d}`, port: REPLICA_PORT[d] })),
  ]);
  const src = await admin(SRC_PORT);
  for (const s of SHOP_SCHEMA('shop')) await src.query(s);
  await src.end();
  await runWorkload(() => admin(SRC_PORT), { db: 'shop', seed: seeds(), transactions: 300, workers: 2 });
  await makeSiteCerts(join(dir, 'certs'), 'tidemark-test-ca', ['primary', ...DR]);
  for (const d of ['dr1', 'dr2'] as const) {
    proxy[d] = await FaultProxy.start({
      upstreamHost: '127.0.0.1',
      upstreamPort: LISTEN_PORT[d],
      listenPort: PROXY_PORT[d],
    });
  }
  const spec: SitesConfigSpec = {
    file: join(dir, 'tidemark.yaml'),
    source: { name: SOURCE, port: SRC_PORT, include: ['shop.*'] },
    ship: { certsDir: './certs', heartbeatMs: 250 },
    standbys: DR.map((d) => ({
      name: d,
      address: `127.0.0.1:${d === 'dr3' ? LISTEN_PORT.dr3 : PROXY_PORT[d]}`,
      listen: `127.0.0.1:${LISTEN_PORT[d]}`,
      journalDir: `./${d}/mirrors`,
    })),
    targets: DR.map((d) => ({ name: `replica-${d}`, site: d, port: REPLICA_PORT[d] })),
  };
  config = writeSitesConfig(spec);
  for (const d of DR) site[d] = new SiteRun(config, d, join(dir, 'logs', `${d}.log`)).start();
  primary = new SiteRun(config, 'primary', join(dir, 'logs', 'primary.log')).start();
  const ms = await waitCaughtUp(
    DR.map((d) => leg(d)),
    runs(),
    150_000,
  );
  log(`baseline applied at the three standbys in ${ms} ms`);
}, 240_000);

afterAll(async () => {
  await SteadyLoad.stopAll();
  await Promise.all(runs().map((r) => r?.stop()));
  await Promise.all(Object.values(proxy).map((p) => p.close()));
  stopInstance(`${NAME}-src`);
  for (const d of DR) stopInstance(`${NAME}-${d}`);
});

it('fan-out to 3 standbys: while dr3 is down, dr1 and dr2 keep near-zero lag; dr3 catches up after', async () => {
  const load = new SteadyLoad(SRC_PORT, 'shop', seeds);
  await sleep(2000);
  await site.dr3.stop();
  const samples: {
    at: number;
    lag: Record<Dr, number>;
    standbyLag: Record<Dr, number>;
    link: Record<Dr, string | null>;
  }[] = [];
  const down = Date.now();
  while (Date.now() - down < 15_000) {
    const st = await status(config);
    const tl = (d: Dr) => {
      const t = (st['targets'] as { name: string; lag_seconds: number | null }[]).find(
        (x) => x.name === `replica-${d}`,
      );
      return t?.lag_seconds ?? Number.POSITIVE_INFINITY;
    };
    samples.push({
      at: Date.now() - down,
      lag: { dr1: tl('dr1'), dr2: tl('dr2'), dr3: tl('dr3') },
      standbyLag: {
        dr1: standbyOf(st, 'dr1').lag_seconds ?? Number.POSITIVE_INFINITY,
        dr2: standbyOf(st, 'dr2').lag_seconds ?? Number.POSITIVE_INFINITY,
        dr3: standbyOf(st, 'dr3').lag_seconds ?? Number.POSITIVE_INFINITY,
      },
      link: { dr1: standbyOf(st, 'dr1').link, dr2: standbyOf(st, 'dr2').link, dr3: standbyOf(st, 'dr3').link },
    });
    await sleep(1000);
  }
  const committed = await load.stop();
  log(`dr3 down 15 s under ${committed} tx; samples ${JSON.stringify(samples)}`);
  // dr1 and dr2 hold the source's last transaction within seconds, while dr3 is still down and behind.
  const ms = await waitCaughtUp([leg('dr1'), leg('dr2')], [primary, site.dr1, site.dr2], 15_000);
  log(`dr1 and dr2 caught up ${ms} ms after the load stopped`);
  expect((await isCaughtUp(leg('dr3'))).ok).toBe(false);
  const last = samples[samples.length - 1]!;
  expect(samples.length).toBeGreaterThanOrEqual(5);
  expect(last.lag.dr3, JSON.stringify(samples)).toBeGreaterThanOrEqual(8);
  expect(last.standbyLag.dr3, JSON.stringify(samples)).toBeGreaterThanOrEqual(8);
  expect(last.link.dr3, JSON.stringify(samples)).not.toBe('streaming');
  for (const s of samples) {
    for (const d of ['dr1', 'dr2'] as const) {
      expect(s.lag[d], `replica-${d} at ${s.at} ms: ${JSON.stringify(samples)}`).toBeLessThanOrEqual(5);
      expect(s.standbyLag[d], `standby ${d} at ${s.at} ms: ${JSON.stringify(samples)}`).toBeLessThanOrEqual(5);
      expect(s.link[d], `standby ${d} at ${s.at} ms: ${JSON.stringify(samples)}`).toBe('streaming');
    }
  }
  site.dr3.start();
  const back = await waitCaughtUp([leg('dr3')], runs(), 90_000);
  log(`dr3 caught up ${back} ms after its restart`);
  await expectEqual([...DR]);
});

it('ship pause stops shipping to one standby (its replica stands still), ship resume catches it up', async () => {
  const load = new SteadyLoad(SRC_PORT, 'shop', seeds);
  await cliOk(config, ['ship', 'pause', 'dr2']);
  await sleep(2000);
  const before = await appliedRow(REPLICA_PORT.dr2, SOURCE);
  const dr1Before = await appliedRow(REPLICA_PORT.dr1, SOURCE);
  await sleep(4000);
  const st = await status(config);
  const after = await appliedRow(REPLICA_PORT.dr2, SOURCE);
  const dr1After = await appliedRow(REPLICA_PORT.dr1, SOURCE);
  await cliOk(config, ['ship', 'resume', 'dr2']);
  await load.stop();
  expect(standbyOf(st, 'dr2').paused, JSON.stringify(st['standbys'])).toBe(true);
  expect(standbyOf(st, 'dr2').link, JSON.stringify(st['standbys'])).toBe('paused');
  expect(standbyOf(st, 'dr1').paused).toBe(false);
  expect(after?.seq, 'dr2 applied while paused').toBe(before?.seq);
  expect(BigInt(dr1After?.seq ?? 0), 'dr1 went on').toBeGreaterThan(BigInt(dr1Before?.seq ?? 0));
  await waitCaughtUp([leg('dr2')], runs(), 60_000);
  expect(standbyOf(await status(config), 'dr2').paused).toBe(false);
  await expectEqual(['dr2']);
});

it('links to dr1 and dr2 cut for 32 s under load (stalled; dr2 also reset every 5 s), then healed: all catch up', async () => {
  const load = new SteadyLoad(SRC_PORT, 'shop', seeds);
  await sleep(1500);
  const primaryFrom = primary.lines().length;
  proxy.dr1.pause();
  proxy.dr2.pause();
  const cut = Date.now();
  let atCut5: Record<'dr1' | 'dr2', string | null | undefined> | undefined;
  while (Date.now() - cut < 32_000) {
    await sleep(5000);
    proxy.dr2.closeAll();
    for (const r of runs()) r.assertRunning();
    if (!atCut5) {
      atCut5 = {
        dr1: (await appliedRow(REPLICA_PORT.dr1, SOURCE))?.seq,
        dr2: (await appliedRow(REPLICA_PORT.dr2, SOURCE))?.seq,
      };
    }
  }
  // The cut was real: nothing reached dr1 or dr2 from 5 s into the cut on, while dr3 went on.
  const st = await status(config);
  expect((await appliedRow(REPLICA_PORT.dr1, SOURCE))?.seq).toBe(atCut5?.dr1);
  expect((await appliedRow(REPLICA_PORT.dr2, SOURCE))?.seq).toBe(atCut5?.dr2);
  for (const d of ['dr1', 'dr2'] as const) {
    expect(standbyOf(st, d).lag_seconds ?? 0, JSON.stringify(st['standbys'])).toBeGreaterThanOrEqual(20);
    expect(standbyOf(st, d).link, JSON.stringify(st['standbys'])).not.toBe('streaming');
  }
  expect(standbyOf(st, 'dr3').link, JSON.stringify(st['standbys'])).toBe('streaming');
  expect(standbyOf(st, 'dr3').lag_seconds ?? 99, JSON.stringify(st['standbys'])).toBeLessThanOrEqual(5);
  // The stalled link was declared dead by the heartbeats (3 × 250 ms of silence), not left hanging.
  expect(
    primary
      .lines()
      .slice(primaryFrom)
      .some((l) => /silent|LINK_DEAD|dead/i.test(lineText(l))),
    primary.tail(),
  ).toBe(true);
  proxy.dr1.resume();
  proxy.dr2.resume();
  const healed = Date.now();
  await sleep(3000);
  const committed = await load.stop();
  const ms = await waitCaughtUp(
    DR.map((d) => leg(d)),
    runs(),
    120_000,
  );
  log(
    `cut 32 s under ${committed} tx; every standby caught up ${Date.now() - healed} ms after the heal (${ms} ms after the load stopped)`,
  );
  await expectEqual([...DR]);
});

it('a byte flipped on the dr1 wire (inside TLS) is detected and the link resumes; nothing damaged is applied', async () => {
  const load = new SteadyLoad(SRC_PORT, 'shop', seeds);
  await sleep(1000);
  const dr1From = site.dr1.lines().length;
  proxy.dr1.closeAll();
  const connections = proxy.dr1.connections;
  // Past the TLS handshake and HELLO of the next connection: inside the FRAMES stream.
  proxy.dr1.flipByte(24_000, 0x20);
  const deadline = Date.now() + 30_000;
  while (proxy.dr1.flipped === 0 && Date.now() < deadline) await sleep(100);
  expect(proxy.dr1.flipped, 'the proxy flipped a byte').toBe(1);
  const seen = await waitForLog(
    site.dr1,
    (l) => (l.level ?? 0) >= 40 && /decrypt|bad record mac|corrupt|crc|ssl/i.test(lineText(l)),
    15_000,
    'the damaged record at dr1',
    dr1From,
  );
  log(`dr1 logged: ${lineText(seen)}`);
  await sleep(2000);
  const committed = await load.stop();
  await waitCaughtUp([leg('dr1')], runs(), 60_000);
  expect(proxy.dr1.connections, 'the shipper connected again after the damage').toBeGreaterThan(connections);
  log(`flip under ${committed} tx: detected, resent, caught up`);
  await expectEqual(['dr1']);
});

it('a shipper with a certificate from another CA, or without TLS, is refused with the reason logged; nothing reaches the mirror', async () => {
  // Another CA's certificate for the site "primary", next to our CA certificate (so the rogue trusts dr1).
  await makeSiteCerts(join(dir, 'other-ca'), 'other-ca', ['primary']);
  const foreign = join(dir, 'certs-foreign');
  mkdirSync(foreign);
  copyFileSync(join(dir, 'certs', 'ca.crt'), join(foreign, 'ca.crt'));
  for (const f of ['primary.crt', 'primary.key']) copyFileSync(join(dir, 'other-ca', f), join(foreign, f));
  chmodSync(join(foreign, 'primary.key'), 0o600);
  const rogue = (name: string, ship: SitesConfigSpec['ship'], serverId: number) =>
    writeSitesConfig({
      file: join(dir, `${name}.yaml`),
      source: { name, port: SRC_PORT, include: ['rogue_none.*'], serverId },
      journalDir: `./${name}/journal`,
      ship,
      standbys: [
        {
          name: 'dr1',
          address: `127.0.0.1:${LISTEN_PORT.dr1}`,
          listen: `127.0.0.1:${LISTEN_PORT.dr1}`,
          journalDir: `./${name}/unused`,
        },
      ],
      targets: [{ name: 'unused', site: 'dr1', port: REPLICA_PORT.dr1 }],
    });
  const dr1From = site.dr1.lines().length;
  const foreignRun = new SiteRun(
    rogue('rogue-ca', { certsDir: './certs-foreign' }, 41_001),
    'primary',
    join(dir, 'logs', 'rogue-ca.log'),
  ).start();
  const plainRun = new SiteRun(
    rogue('rogue-plain', { plaintext: true }, 41_002),
    'primary',
    join(dir, 'logs', 'rogue-plain.log'),
  ).start();
  try {
    const ca = await waitForLog(
      site.dr1,
      (l) => /refus/i.test(lineText(l)) && /unknown CA/i.test(lineText(l)) && /other-ca/.test(lineText(l)),
      30_000,
      'the refusal of the foreign-CA certificate',
      dr1From,
    );
    log(`dr1 refused the foreign CA: ${lineText(ca)}`);
    // The shipper without TLS never gets past the TLS handshake.
    const plain = await waitForLog(
      site.dr1,
      (l) => (l.level ?? 0) >= 40 && /plaintext|not TLS|WRONG_VERSION_NUMBER/i.test(lineText(l)),
      30_000,
      'the refusal of the plaintext shipper',
      dr1From,
    );
    log(`dr1 refused the plaintext shipper: ${lineText(plain)}`);
    // The rogue shipper is told why too.
    await waitForLog(foreignRun, (l) => /refus/i.test(lineText(l)), 15_000, 'the refusal at the foreign shipper');
  } finally {
    await foreignRun.stop();
    await plainRun.stop();
  }
  for (const name of ['rogue-ca', 'rogue-plain']) {
    expect(existsSync(join(dir, 'dr1', 'mirrors', name)), `a mirror for ${name} at dr1`).toBe(false);
  }
  for (const r of runs()) r.assertRunning();
  await expectEqual(['dr1']);
});
