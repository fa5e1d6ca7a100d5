/**
 * The ship link under faults, through test/fixtures/fault-proxy.ts: damage on the wire, a cut link, dropped
 * connections. Each test checks the receiver's side of the contract: every LSN handed to onFrames exactly once,
 * in order, with the source's bytes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JournalReader } from '../../journal/reader.ts';
import { JournalWriter } from '../../journal/writer.ts';
import { FaultProxy } from '../../test/fixtures/fault-proxy.ts';
import {
  captureLog,
  frameDiff,
  MemoryStore,
  makeFrames,
  memorySource,
  until,
  cleanupsAfterEach,
  useTestPki,
} from '../../test/fixtures/ship-link.ts';
import type { WireFrame } from '../frame.ts';
import { type LinkSecurity, ShipReceiver, type ShipperOptions, startShipper } from './index.ts';

const pki = useTestPki();

const cleanups = cleanupsAfterEach();

/** Receiver ← proxy ← shipper, with the given security on both ends. */
async function rig(
  store: MemoryStore,
  secure: boolean,
  opts: Partial<ShipperOptions> & Pick<ShipperOptions, 'frames'>,
  heartbeatMs = 200,
) {
  const rcap = captureLog();
  const r = await ShipReceiver.listen({
    host: '127.0.0.1',
    port: 0,
    security: secure ? pki().dc2 : 'plaintext',
    heartbeatMs,
    log: rcap.log,
    onHello: (i) => store.onHello(i),
    onFrames: (s, f) => store.onFrames(s, f),
  });
  cleanups.push(() => r.close());
  const proxy = await FaultProxy.start({ upstreamHost: '127.0.0.1', upstreamPort: r.port });
  cleanups.push(() => proxy.close());
  const scap = captureLog();
  const ac = new AbortController();
  const security: LinkSecurity = secure ? pki().dc1 : 'plaintext';
  const s = startShipper({
    host: '127.0.0.1',
    port: proxy.port,
    security,
    site: 'dc1',
    targetSite: 'dc2',
    source: 'orders',
    journalId: 'j1',
    log: scap.log,
    signal: ac.signal,
    heartbeatMs,
    reconnectBaseMs: 20,
    reconnectMaxMs: 200,
    batchBytes: 8 << 10,
    ...opts,
  });
  cleanups.push(async () => {
    ac.abort();
    await s.finished.catch(() => undefined);
  });
  return { r, rcap, proxy, s, scap, ac };
}

describe('ship link faults: a flipped byte on the wire', () => {
  it('over TLS: the damaged record is refused, the link resumes from the durable LSN, nothing is lost or doubled', async () => {
    const frames = makeFrames(4000);
    const store = new MemoryStore(0n, 1);
    const src = memorySource(frames);
    const { proxy, s, rcap } = await rig(store, true, { frames: src.frames });
    // Well past the TLS handshake: inside the application data of the first connection.
    proxy.flipByte(60_000, 0x40);
    await s.finished;
    expect(proxy.flipped).toBe(1);
    expect(proxy.connections).toBe(2);
    expect(s.status().connects).toBe(2);
    // Each connection started right after the receiver's durable LSN, not from the start.
    expect(src.calls).toEqual(store.helloDurables.map((d) => d + 1n));
    expect(src.calls[1]).toBeGreaterThan(1n);
    expect(store.violations).toEqual([]);
    expect(frameDiff(store.frames, frames)).toBe('');
    // TLS authenticates every record: the damage surfaces as a TLS error on the receiver, before our CRC.
    expect(rcap.text()).toMatch(/session ended.*(decryption failed|bad record mac|BAD_RECORD_MAC|DECRYPTION_FAILED)/i);
  });

  it('in plaintext: the CRC catches it, the receiver names the offset, tells the shipper, and the link resumes', async () => {
    const frames = makeFrames(4000);
    const store = new MemoryStore(0n, 1);
    const src = memorySource(frames);
    const { proxy, s, rcap, scap } = await rig(store, false, { frames: src.frames });
    proxy.flipByte(60_000, 0x01);
    await s.finished;
    expect(proxy.flipped).toBe(1);
    expect(store.violations).toEqual([]);
    expect(frameDiff(store.frames, frames)).toBe('');
    expect(s.status().connects).toBe(2);
    expect(src.calls).toEqual(store.helloDurables.map((d) => d + 1n));
    const bad = rcap.lines.find((l) => l.msg === 'ship link: bad incoming stream; closing');
    expect(String(bad?.err)).toMatch(
      /ship stream: (FRAMES message|message header) at byte offset \d+ .*failed its CRC check/,
    );
    expect(Number(bad?.offset)).toBeLessThanOrEqual(60_000);
    expect(scap.text()).toMatch(
      /link lost; reconnecting.*reported CORRUPT: received from you: ship stream:.*failed its CRC check/,
    );
  });

  it('damage in every part of a message is caught (header, length, frame header, payload)', async () => {
    for (const offset of [0, 3, 5, 9, 14, 16, 40, 2000, 20_000]) {
      const frames = makeFrames(600);
      const store = new MemoryStore();
      const { proxy, s } = await rig(store, false, { frames: memorySource(frames).frames });
      proxy.flipByte(offset, 0x80);
      await s.finished;
      expect(proxy.flipped, `offset ${offset}`).toBe(1);
      expect(store.violations).toEqual([]);
      expect(frameDiff(store.frames, frames), `offset ${offset}`).toBe('');
      for (const c of cleanups.splice(0).reverse()) await c();
    }
  });
});

describe('ship link faults: a cut link', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tidemark-link-journal-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a pause longer than 3 heartbeats is declared dead at both ends; the link resumes without loss or duplication', async () => {
    const w = await JournalWriter.open({ dir, fsync: 'group', groupCommitMs: 2, segmentBytes: 64 << 10 });
    cleanups.push(() => w.close());
    let writing = true;
    const load = (async () => {
      for (let u = 0; writing; u++) {
        for (let i = 0; i < 3; i++) {
          await w.append(new TextEncoder().encode(`unit ${u} frame ${i} `.repeat(1 + (u % 7))), i === 2);
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    cleanups.push(async () => {
      writing = false;
      await load;
    });
    const store = new MemoryStore(0n, 1);
    const frames = (from: bigint, signal: AbortSignal) =>
      new JournalReader({ dir, fromLsn: from, follow: true, signal, pollMs: 10 });
    const { proxy, s, rcap, scap } = await rig(store, true, { frames, connectTimeoutMs: 500 }, 100);

    await until(() => store.durable > 100n, 5000, 'frames before the cut');
    proxy.pause();
    // Frames already past the proxy may still land; after that, nothing moves.
    await new Promise((r) => setTimeout(r, 300));
    const atCut = store.durable;
    await new Promise((r) => setTimeout(r, 2200));
    expect(store.durable).toBe(atCut); // nothing got through
    expect(rcap.text()).toMatch(/peer silent for 3 heartbeats; closing/);
    expect(scap.text()).toMatch(
      /link lost; reconnecting.*no data for \d+ ms \(3 heartbeat intervals of 100 ms\): link declared dead/,
    );
    expect(scap.text()).toMatch(/no connection within 500 ms/); // reconnect attempts while cut
    proxy.resume();
    await until(() => store.durable > atCut + 100n, 5000, 'frames after the cut');
    writing = false;
    await load;
    await until(() => store.durable === w.headLsn, 5000, 'the receiver to catch up');
    await until(() => s.status().ackedLsn === w.headLsn, 5000, 'the last ACK');
    expect(s.status().state).toBe('streaming');

    const all: WireFrame[] = [];
    for await (const f of new JournalReader({ dir, fromLsn: 1n, follow: false })) all.push(f);
    expect(store.violations).toEqual([]);
    expect(frameDiff(store.frames, all)).toBe('');
  });

  it('dropped connections (closeAll) resume where the receiver stands', async () => {
    const frames = makeFrames(3000);
    const store = new MemoryStore(0n, 5);
    const { proxy, s } = await rig(store, true, { frames: memorySource(frames).frames, windowBytes: 16 << 10 });
    for (let i = 0; i < 3; i++) {
      const before = store.durable;
      await until(() => store.durable > before + 50n, 5000, 'progress');
      proxy.closeAll();
    }
    await s.finished;
    expect(s.status().connects).toBe(4);
    expect(proxy.connections).toBe(4);
    expect(store.violations).toEqual([]);
    expect(frameDiff(store.frames, frames)).toBe('');
  });
});
