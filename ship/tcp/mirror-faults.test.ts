/**
 * Shipping into a mirror under faults: the receiver SIGKILLed (a child process) and the shipper stopped at
 * seeded random moments, a flipped byte on the wire, and a source that took back frames a mirror already held.
 * Each ends with the mirror equal to the source frame for frame and every unit seen once by a mirror reader.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureLog, frameDiff, until, cleanupsAfterEach, useTestPki } from '../../test/fixtures/ship-link.ts';
import { followUnits, mirrorStandby, ReceiverProcess, readFrames, Source } from '../../test/fixtures/ship-mirror.ts';
import { prng } from '../../test/fixtures/prng.ts';
import { readDurableLsn } from '../../journal/durable.ts';
import { readIdentity } from '../../journal/identity.ts';
import { JournalReader } from '../../journal/reader.ts';
import { readTruncations } from '../../journal/truncations.ts';
import { FaultProxy } from '../../test/fixtures/fault-proxy.ts';
import { journalSource } from '../mirror.ts';
import { type LinkSecurity, type ShipperOptions, startShipper } from './index.ts';

const pki = useTestPki();

const cleanups = cleanupsAfterEach();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function newSource(): Promise<Source> {
  const s = await Source.create();
  cleanups.push(() => s.close());
  return s;
}

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'tidemark-mirror-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  return root;
}

async function standby(security: LinkSecurity = pki().dc2) {
  return mirrorStandby({ root: await tempRoot(), security, cleanups });
}

async function ship(src: Source, port: number, opts: Partial<ShipperOptions> = {}) {
  const cap = captureLog();
  const ac = new AbortController();
  const s = startShipper({
    host: '127.0.0.1',
    port,
    security: pki().dc1,
    site: 'dc1',
    targetSite: 'dc2',
    source: 'orders',
    ...(await journalSource(src.dir, { pollMs: 10 })),
    log: cap.log,
    signal: ac.signal,
    heartbeatMs: 200,
    connectTimeoutMs: 1000,
    reconnectBaseMs: 20,
    reconnectMaxMs: 100,
    batchBytes: 16 << 10,
    windowBytes: 128 << 10,
    ...opts,
  });
  const stop = async () => {
    ac.abort();
    await s.finished.catch(() => undefined);
  };
  cleanups.push(stop);
  return { s, cap, stop };
}

describe('mirror under faults', () => {
  it('receiver SIGKILLed and shipper stopped at seeded random moments, 6 times each: exactly once', async () => {
    // Another seed reproduces another schedule: TIDEMARK_TEST_SEED=7 npx vitest run ship/tcp/mirror-faults
    const rand = prng(Number(process.env.TIDEMARK_TEST_SEED ?? 32_025));
    const src = await newSource();
    await src.writeUnits(50);
    const root = await tempRoot();
    const dir = join(root, 'orders');
    const rp = new ReceiverProcess({ certs: join(pki().root, 'a'), site: 'dc2', root, heartbeatMs: 200 });
    await rp.start();
    cleanups.push(() => rp.kill());
    const applier = followUnits(dir);
    cleanups.push(() => applier.stop());
    let writing = true;
    const load = (async () => {
      // Big units (5 frames of 60 kB: more than the 128 KiB window) among small ones.
      while (writing) {
        await src.writeUnits(5, { bigEvery: 25, bigFrames: 5, bigBytes: 60_000 });
        await sleep(1);
      }
    })();
    cleanups.push(async () => {
      writing = false;
      await load;
    });
    let shipper = await ship(src, rp.port);
    const kills = { receiver: 0, shipper: 0 };
    const acked: bigint[] = [];
    for (let i = 0; i < 12; i++) {
      await sleep(80 + Math.floor(rand() * 320));
      acked.push(shipper.s.status().ackedLsn);
      if (i % 2 === 0) {
        // Preferably while the mirror holds an acknowledged part of a unit (above its durable mark), which its
        // recovery then cuts: the shipper must send those frames again.
        const by = Date.now() + 1500;
        while (Date.now() < by && !(shipper.s.status().ackedLsn > (await readDurableLsn(dir)))) await sleep(1);
        await rp.kill();
        kills.receiver++;
        await sleep(Math.floor(rand() * 150));
        await rp.start();
      } else {
        await shipper.stop();
        kills.shipper++;
        shipper = await ship(src, rp.port);
      }
    }
    writing = false;
    await load;
    const head = src.headLsn;
    await until(() => shipper.s.status().ackedLsn === head, 20_000, 'the standby to catch up');
    await until(() => applier.lastLsn === head || applier.error !== null, 10_000, 'the mirror reader');
    expect(applier.error).toBeNull();
    expect(kills).toEqual({ receiver: 6, shipper: 6 });
    expect(rp.starts).toBe(7);
    // Progress between the faults, not one burst at the end.
    expect(new Set(acked).size).toBeGreaterThan(6);

    const want = await src.frames();
    expect(frameDiff(await readFrames(dir), want)).toBe('');
    expect(applier.violations).toEqual([]);
    expect(applier.units.flatMap((u) => u.lsns)).toEqual(want.map((f) => f.lsn));
    const payloads = applier.units.flatMap((u) => u.payloads);
    expect(payloads.every((p, i) => Buffer.compare(p, want[i]?.payload as Uint8Array) === 0)).toBe(true);
    expect(rp.stderr).not.toMatch(/MISMATCH|LSN_GAP|refusing/);
    // Some receiver kills hit a unit the mirror had partly acknowledged: its recovery cut it, and it came again.
    expect(readTruncations(dir).length).toBeGreaterThan(0);
  }, 90_000);

  for (const secure of [true, false]) {
    it(`a flipped byte on the wire never reaches the mirror (${secure ? 'TLS' : 'plaintext: the CRC'})`, async () => {
      const src = await newSource();
      await src.writeUnits(400);
      const sb = await standby(secure ? pki().dc2 : 'plaintext');
      const proxy = await FaultProxy.start({ upstreamHost: '127.0.0.1', upstreamPort: sb.r.port });
      cleanups.push(() => proxy.close());
      proxy.flipByte(50_000, 0x20);
      const { s } = await ship(src, proxy.port, { security: secure ? pki().dc1 : 'plaintext' });
      await until(() => s.status().ackedLsn === src.headLsn, 10_000, 'the mirror to catch up');
      expect(proxy.flipped).toBe(1);
      expect(s.status().connects).toBe(2);
      expect(sb.cap.text()).toMatch(
        secure ? /session ended.*(decryption failed|bad record mac)/i : /failed its CRC check/,
      );
      expect(frameDiff(await readFrames(sb.dir), await src.frames())).toBe('');
    });
  }

  it('the source took back frames a mirror held: HELLO carries the truncation, the mirror cuts them and receives the new ones', async () => {
    const src = await newSource();
    await src.writeUnits(30);
    const sb = await standby();
    const applier = followUnits(sb.dir);
    cleanups.push(() => applier.stop());
    // A shipper that does not hold back frames above the durable mark (what journalSource forbids) but honours
    // the HELLO epoch, so that the mirror can receive frames the source later takes back.
    const { s, cap } = await ship(src, sb.r.port, {
      frames: (fromLsn, signal, session) =>
        new JournalReader({
          dir: src.dir,
          fromLsn,
          follow: true,
          signal,
          pollMs: 10,
          sinceEpoch: session.truncationEpoch,
        }),
    });
    const committed = src.headLsn;
    await src.unfinished(3, 'lost');
    await until(() => sb.sink.status()[0]?.syncedLsn === committed + 3n, 5000, 'the unfinished unit in the mirror');
    await src.reopen(); // the source's recovery cuts the unfinished unit: epoch 1, toLsn = committed
    await src.writeUnits(10); // other frames at the same LSNs
    await until(() => s.status().ackedLsn === src.headLsn, 10_000, 'the mirror to catch up');

    expect(readTruncations(src.dir)).toMatchObject([{ epoch: 1, toLsn: committed }]);
    expect(cap.text()).toMatch(new RegExp(`link lost; reconnecting.*the writer truncated to LSN ${committed}`));
    expect(sb.cap.text()).toMatch(new RegExp(`the source truncated to LSN ${committed} after this mirror received`));
    expect(readTruncations(sb.dir)).toMatchObject([{ epoch: 1, toLsn: committed }]);
    expect((await readIdentity(sb.dir))?.mirror?.sourceEpoch).toBe(1);
    const want = await src.frames();
    expect(frameDiff(await readFrames(sb.dir), want)).toBe('');
    // The mirror's reader never took the lost frames for a unit, and saw the new ones once.
    await until(() => applier.lastLsn === src.headLsn, 5000, 'the mirror reader');
    expect(applier.violations).toEqual([]);
    expect(applier.units.flatMap((u) => u.lsns)).toEqual(want.map((f) => f.lsn));
    expect(
      applier.units.flatMap((u) => u.payloads).every((p, i) => Buffer.compare(p, want[i]?.payload as Uint8Array) === 0),
    ).toBe(true);
  });
});
