/**
 * The Redis Streams ship backend against a real redis-server (compose/local/redis.sh; appendonly yes +
 * appendfsync always): frames from a real journal through the shipper, the stream and a consumer group into a
 * standby store, checked frame by frame. Faults: Redis SIGKILLed and restarted (AOF replay), a shipper
 * restarted, a misconfigured server, trimming while a standby lags, a gap and a damaged entry.
 */
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { frameCrc, xaddArgs } from '../../ship/redis/codec.ts';
import { type RedisReceiver, startRedisReceiver } from '../../ship/redis/receiver.ts';
import { type RedisShipper, startRedisShipper } from '../../ship/redis/shipper.ts';
import { trimSafely } from '../../ship/redis/trim.ts';
import { adminClient, killRedis, startRedis, stopRedis } from '../fixtures/redis.ts';
import { captureLog, frameDiff, MemoryStore, until } from '../fixtures/ship-link.ts';
import { entriesOf, SourceJournal } from '../fixtures/ship-journal.ts';

const NAME = 'ship-redis';
const PORT = 3541;
const LAX = 'ship-redis-lax';
const LAX_PORT = 3542;
// TIDEMARK_TEST_LOG=<file>: every log line (kafkajs's too) to that file, for a failure's post-mortem.
const logFile = process.env['TIDEMARK_TEST_LOG'];
const log = logFile ? pino({ level: 'debug' }, pino.destination({ dest: logFile, sync: true })) : captureLog().log;
let admin: Redis;

beforeAll(() => {
  const t0 = Date.now();
  startRedis(NAME, PORT, { fresh: true });
  admin = adminClient(PORT);
  console.log(`redis (install if needed + start): ${Date.now() - t0} ms`);
}, 300_000);
afterAll(() => {
  admin?.disconnect();
  stopRedis(NAME);
  stopRedis(LAX);
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function source(): Promise<SourceJournal> {
  const s = await SourceJournal.create();
  cleanups.push(() => s.close());
  return s;
}

function shipper(src: SourceJournal, name: string, port = PORT, opts: { warn?: boolean; log?: typeof log } = {}) {
  const ac = new AbortController();
  const s: RedisShipper = startRedisShipper({
    redis: { host: '127.0.0.1', port },
    source: name,
    frames: src.frames,
    log: opts.log ?? log,
    signal: ac.signal,
    batchBytes: 256 << 10,
    reconnectBaseMs: 100,
    reconnectMaxMs: 1000,
    ...(opts.warn ? { durability: 'warn' as const } : {}),
  });
  const stop = async () => {
    ac.abort();
    await s.finished.catch(() => undefined);
  };
  cleanups.push(stop);
  return { ...s, stop };
}

function receiver(name: string, group: string, store: MemoryStore): RedisReceiver & { stop(): Promise<void> } {
  const ac = new AbortController();
  const r = startRedisReceiver({
    redis: { host: '127.0.0.1', port: PORT },
    source: name,
    group,
    durableLsn: async () => store.durable,
    onFrames: (s, f) => store.onFrames(s, f),
    log,
    signal: ac.signal,
    blockMs: 200,
    reconnectBaseMs: 100,
    reconnectMaxMs: 1000,
  });
  const stop = async () => {
    ac.abort();
    await r.finished.catch(() => undefined);
  };
  cleanups.push(stop);
  return { ...r, stop };
}

function writeLoad(src: SourceJournal): { stop(): Promise<void> } {
  let on = true;
  const done = (async () => {
    while (on) {
      await src.writeUnits(5, { bigEvery: 40, bigBytes: 200_000 });
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const stop = async () => {
    on = false;
    await done;
  };
  cleanups.push(stop);
  return { stop };
}

async function expectSame(store: MemoryStore, src: SourceJournal): Promise<void> {
  expect(store.violations).toEqual([]);
  expect(frameDiff(store.frames, await src.all())).toBe('');
  expect(entriesOf(store.frames)).toEqual(await src.entries());
}

/** The stream's entry IDs, in order. */
async function ids(key: string): Promise<string[]> {
  const r = (await admin.call('XRANGE', key, '-', '+')) as [string, unknown][];
  return r.map((e) => e[0]);
}

const consecutive = (from: bigint, to: bigint) =>
  Array.from({ length: Number(to - from + 1n) }, (_, i) => `${from + BigInt(i)}-0`);

describe('redis streams ship backend (real redis-server)', () => {
  it('ships multi-frame units exactly once and in order; entry IDs are the LSNs, XADD refuses a duplicate', async () => {
    const src = await source();
    await src.writeUnits(150, { bigEvery: 25, bigBytes: 300_000 });
    const store = new MemoryStore();
    const s = shipper(src, 'basic');
    receiver('basic', 'dc2', store);
    await src.writeUnits(150);
    await until(() => store.durable === src.headLsn, 60_000, `receiver at LSN ${src.headLsn}`);
    await expectSame(store, src);
    await until(() => s.status().ackedLsn === src.headLsn, 10_000, 'shipper acked everything');
    expect(s.status().ackedUnitLsn).toBe(src.headLsn);
    expect(await ids('tidemark:{basic}')).toEqual(consecutive(1n, src.headLsn));
    await expect(admin.call('XADD', 'tidemark:{basic}', '5-0', 'p', 'x')).rejects.toThrow(/equal or smaller/);
  });

  it('survives SIGKILL + restart of redis mid-stream (AOF replay): no loss, no duplicate, in order', async () => {
    const src = await source();
    const store = new MemoryStore();
    const s = shipper(src, 'crash');
    const r = receiver('crash', 'dc2', store);
    const load = writeLoad(src);
    await until(() => store.durable > 200n, 60_000, 'some frames through');
    const acked = s.status().ackedLsn;
    killRedis(NAME);
    await new Promise((res) => setTimeout(res, 1000));
    startRedis(NAME, PORT);
    await until(() => store.durable > acked + 300n, 60_000, 'flow again');
    await load.stop();
    await until(() => store.durable === src.headLsn, 60_000, `receiver at LSN ${src.headLsn}`);
    await expectSame(store, src);
    expect(await ids('tidemark:{crash}')).toEqual(consecutive(1n, src.headLsn));
    expect(s.status().sessions).toBeGreaterThan(1);
    expect(r.status().sessions).toBeGreaterThan(1);
  });

  it('a restarted shipper resumes at the top of the stream: every LSN once', async () => {
    const src = await source();
    const store = new MemoryStore();
    const r = receiver('resume', 'dc2', store);
    const load = writeLoad(src);
    const a = shipper(src, 'resume');
    await until(() => a.status().ackedLsn > 150n, 60_000, 'first shipper under way');
    await a.stop();
    const stoppedAt = a.status().ackedLsn;
    const b = shipper(src, 'resume');
    await until(() => b.status().ackedLsn > stoppedAt + 100n, 60_000, 'second shipper under way');
    await load.stop();
    await until(() => store.durable === src.headLsn, 60_000, `receiver at LSN ${src.headLsn}`);
    await expectSame(store, src);
    expect(b.status().resumedAt).toBe(stoppedAt + 1n);
    expect(await ids('tidemark:{resume}')).toEqual(consecutive(1n, src.headLsn));

    // A standby whose durable LSN went back (its recovery cut an unfinished unit): its group is set back to it.
    await r.stop();
    const back = src.headLsn - 37n;
    const again = new MemoryStore(back);
    receiver('resume', 'dc2', again);
    await until(() => again.durable === src.headLsn, 30_000, 'the standby caught up again');
    expect(again.violations).toEqual([]);
    expect(frameDiff(again.frames, (await src.all()).slice(Number(back)))).toBe('');
  });

  it('frames a dead session added without getting the reply count as acknowledged, whole units included', async () => {
    const src = await source();
    await src.writeUnits(20);
    const frames = await src.all();
    // A shipper that died after Redis made its last pipeline durable, before the reply: the stream ends with a
    // complete unit nobody acknowledged. The next session must report that unit, or the standby stays "behind"
    // by it (and holds the journal) until more frames come.
    for (const f of frames) await admin.call('XADD', 'tidemark:{lost}', ...xaddArgs('lost', f));
    const a = shipper(src, 'lost');
    await until(() => a.status().ackedUnitLsn === src.headLsn, 10_000, `unit ${src.headLsn} acknowledged`);
    expect(a.status().resumedAt).toBe(src.headLsn + 1n);
    await a.stop();

    // Ending mid-unit: the unit end is reported once the rest of the unit is added.
    await src.writeUnits(5);
    const more = (await src.all()).slice(frames.length);
    const cut = more.findIndex((f) => !f.endOfUnit);
    expect(cut).toBeGreaterThanOrEqual(0);
    for (const f of more.slice(0, cut + 1)) await admin.call('XADD', 'tidemark:{lost}', ...xaddArgs('lost', f));
    const b = shipper(src, 'lost');
    await until(() => b.status().ackedUnitLsn === src.headLsn, 10_000, `unit ${src.headLsn} acknowledged`);
    expect(b.status().resumedAt).toBe((more[cut] as { lsn: bigint }).lsn + 1n);
    expect(await ids('tidemark:{lost}')).toEqual(consecutive(1n, src.headLsn));
  });

  it('refuses a server with appendfsync everysec, naming the setting; in warn mode it logs loudly and ships', async () => {
    startRedis(LAX, LAX_PORT, { fresh: true, appendfsync: 'everysec' });
    const src = await source();
    await src.writeUnits(3);
    const strict = shipper(src, 'lax', LAX_PORT);
    await expect(strict.finished).rejects.toMatchObject({
      code: 'CONFIG',
      retriable: false,
      message: expect.stringContaining('appendfsync is "everysec", must be "always"'),
    });
    expect(strict.status().state).toBe('failed');
    const cap = captureLog();
    const lax = shipper(src, 'lax', LAX_PORT, { warn: true, log: cap.log });
    await until(() => lax.status().ackedLsn === src.headLsn, 20_000, 'shipped despite the warning');
    expect(cap.text()).toMatch(/UNSAFE: redis at 127\.0\.0\.1:3542 is not configured for durable shipping/);
    expect(cap.lines.some((l) => l['level'] === 50)).toBe(true);
  });

  it('trimSafely never removes what a group has not acknowledged', async () => {
    const src = await source();
    await src.writeUnits(100);
    const fast = new MemoryStore();
    const slow = new MemoryStore();
    shipper(src, 'trim');
    receiver('trim', 'dc2', fast);
    const lag = receiver('trim', 'dc3', slow);
    await until(() => slow.durable > 50n, 30_000, 'dc3 started');
    await lag.stop();
    const slowAt = slow.durable;
    await src.writeUnits(100);
    await until(() => fast.durable === src.headLsn, 30_000, 'dc2 caught up');

    // A configured standby whose group does not exist yet holds everything.
    const held = await trimSafely(admin, { source: 'trim', expectGroups: ['dc2', 'dc3', 'dc4'] });
    expect(held).toMatchObject({ below: null, removed: 0, reason: 'group(s) dc4 do not exist yet' });

    const t = await trimSafely(admin, { source: 'trim', expectGroups: ['dc2', 'dc3'], log });
    expect(t.below).not.toBeNull();
    expect(t.below as bigint).toBeLessThanOrEqual(slowAt + 1n);
    expect((await ids('tidemark:{trim}'))[0]).toBe(`${t.below}-0`);
    // dc3 comes back: everything it had not acknowledged is still there.
    receiver('trim', 'dc3', slow);
    await until(() => slow.durable === src.headLsn, 30_000, 'dc3 caught up');
    expect(slow.violations).toEqual([]);
    expect(frameDiff(slow.frames, await src.all())).toBe('');

    // Both acknowledged everything: now the stream can go up to the last unit.
    const all = await trimSafely(admin, { source: 'trim' });
    expect(all.below).toBe(src.headLsn + 1n);
    expect(await admin.call('XLEN', 'tidemark:{trim}')).toBe(0);
    // A standby that needs trimmed frames is told so; nothing is skipped.
    const late = receiver('trim', 'dc5', new MemoryStore(10n));
    await expect(late.finished).rejects.toMatchObject({ code: 'SHIP_GONE' });
  });

  it('a gap or a damaged entry stops the receiver; nothing after it is delivered', async () => {
    const add = (key: string, lsn: number, crc?: number) => {
      const p = Buffer.from(`f${lsn}`);
      const c = crc ?? frameCrc(BigInt(lsn), true, p);
      return admin.call('XADD', key, `${lsn}-0`, 'v', '1', 's', 'src', 'f', '1', 'c', String(c), 'p', p);
    };
    for (const l of [1, 2, 3, 5]) await add('gap', l);
    await add('bad', 1);
    await add('bad', 2, 12345);
    const gapStore = new MemoryStore();
    const g = startRedisReceiver({
      redis: { host: '127.0.0.1', port: PORT },
      source: 'src',
      key: 'gap',
      group: 'dc2',
      durableLsn: async () => gapStore.durable,
      onFrames: (s, f) => gapStore.onFrames(s, f),
      log,
      signal: new AbortController().signal,
    });
    await expect(g.finished).rejects.toMatchObject({ code: 'SHIP_GAP' });
    expect(gapStore.frames.map((f) => f.lsn)).toEqual([1n, 2n, 3n]);
    const badStore = new MemoryStore();
    const b = startRedisReceiver({
      redis: { host: '127.0.0.1', port: PORT },
      source: 'src',
      key: 'bad',
      group: 'dc2',
      durableLsn: async () => badStore.durable,
      onFrames: (s, f) => badStore.onFrames(s, f),
      log,
      signal: new AbortController().signal,
    });
    await expect(b.finished).rejects.toMatchObject({ code: 'CORRUPT' });
    expect(badStore.frames.map((f) => f.lsn)).toEqual([1n]);
  });
});
