import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
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
import { type ReceiverOptions, ShipReceiver, type ShipperOptions, startShipper } from './index.ts';
import { type Message, MessageDecoder } from './protocol.ts';

const pki = useTestPki();

const cleanups = cleanupsAfterEach();

async function receiver(store: MemoryStore, extra: Partial<ReceiverOptions> = {}) {
  const cap = captureLog();
  const r = await ShipReceiver.listen({
    host: '127.0.0.1',
    port: 0,
    security: pki().dc2,
    heartbeatMs: 200,
    log: cap.log,
    onHello: (i) => store.onHello(i),
    onFrames: (s, f) => store.onFrames(s, f),
    ...extra,
  });
  cleanups.push(() => r.close());
  return { r, cap };
}

function shipper(port: number, opts: Partial<ShipperOptions> & Pick<ShipperOptions, 'frames'>) {
  const cap = captureLog();
  const ac = new AbortController();
  const acks: { lsn: bigint; unitLsn: bigint }[] = [];
  const s = startShipper({
    host: '127.0.0.1',
    port,
    security: pki().dc1,
    site: 'dc1',
    targetSite: 'dc2',
    source: 'orders',
    journalId: 'j1',
    onAck: (a) => {
      acks.push(a);
    },
    log: cap.log,
    signal: ac.signal,
    heartbeatMs: 200,
    reconnectBaseMs: 20,
    reconnectMaxMs: 200,
    ...opts,
  });
  cleanups.push(async () => {
    ac.abort();
    await s.finished.catch(() => undefined);
  });
  return { s, cap, ac, acks };
}

async function rejection(p: Promise<unknown>): Promise<TidemarkError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TidemarkError);
  return err as TidemarkError;
}

describe('ship link over mutual TLS', () => {
  it('ships every frame exactly once, in order, and acknowledges the last', async () => {
    const frames = makeFrames(3000);
    const store = new MemoryStore();
    const { r } = await receiver(store);
    const src = memorySource(frames);
    const { s, acks } = shipper(r.port, { frames: src.frames, batchBytes: 16 << 10 });
    await s.finished;
    expect(store.violations).toEqual([]);
    expect(frameDiff(store.frames, frames)).toBe('');
    expect(s.status()).toMatchObject({ state: 'done', ackedLsn: 3000n, sentLsn: 3000n, connects: 1 });
    expect(acks[0]).toEqual({ lsn: 0n, unitLsn: 0n });
    expect(acks.at(-1)).toEqual({ lsn: 3000n, unitLsn: 3000n });
    // unitLsn is always a unit end (every 4th LSN here) at or below the acknowledged LSN.
    for (const a of acks) expect(a.unitLsn % 4n === 0n && a.unitLsn <= a.lsn).toBe(true);
    expect(store.hellos[0]).toMatchObject({
      source: 'orders',
      site: 'dc1',
      journalId: 'j1',
      certificateNames: ['dc1'],
    });
  });

  it("resumes from the receiver's durable LSN (starts at durable + 1)", async () => {
    const frames = makeFrames(500);
    const store = new MemoryStore(200n);
    const { r } = await receiver(store);
    const src = memorySource(frames);
    const { s } = shipper(r.port, { frames: src.frames });
    await s.finished;
    expect(src.calls).toEqual([201n]);
    expect(store.frames.map((f) => f.lsn)).toEqual(frames.slice(200).map((f) => f.lsn));
    expect(store.violations).toEqual([]);
  });

  it('follows a receiver whose durable LSN went back (its recovery cut an unfinished unit)', async () => {
    const frames = makeFrames(400);
    const store = new MemoryStore(0n, 1);
    const { r } = await receiver(store, { maxFramesPerCall: 10 });
    let cut = 0n;
    const { s, acks, cap } = shipper(r.port, {
      frames: memorySource(frames).frames,
      batchBytes: 1,
      onAck: (a) => {
        acks.push(a);
        // Once: the standby "crashes" and its recovery cuts back to the last unit end below what it acknowledged.
        if (cut === 0n && a.lsn >= 150n) {
          cut = ((a.lsn - 1n) / 4n) * 4n;
          store.frames.length = Number(cut);
          store.durable = cut;
          store.failNext = new Error('crash');
        }
      },
    });
    await s.finished;
    expect(store.violations).toEqual([]);
    expect(frameDiff(store.frames, frames)).toBe('');
    expect(store.helloDurables).toEqual([0n, cut]);
    expect(cap.text()).toMatch(/receiver reports less than it acknowledged before/);
    // The WELCOME after the cut moves unitLsn back too: the cursor must not stay above what the standby holds.
    expect(acks).toContainEqual({ lsn: cut, unitLsn: cut });
    expect(acks.at(-1)).toEqual({ lsn: 400n, unitLsn: 400n });
  });

  it('keeps at most windowBytes unacknowledged while the receiver is slow', async () => {
    const frames = makeFrames(400, 1000);
    const store = new MemoryStore(0n, 3);
    const { r } = await receiver(store, { maxFramesPerCall: 8 });
    const { s } = shipper(r.port, { frames: memorySource(frames).frames, windowBytes: 16 << 10, batchBytes: 4 << 10 });
    let maxAhead = 0n;
    const t = setInterval(() => {
      const st = s.status();
      if (st.sentLsn - st.ackedLsn > maxAhead) maxAhead = st.sentLsn - st.ackedLsn;
    }, 1);
    await s.finished;
    clearInterval(t);
    expect(store.frames.length).toBe(400);
    // 16 KiB of ~500-byte frames: about 32 frames in flight at most, plus one batch that may overshoot.
    expect(maxAhead).toBeGreaterThan(0n);
    expect(maxAhead).toBeLessThanOrEqual(48n);
  });

  it('does not declare a slow receiver dead: paused reading is backpressure, not silence', async () => {
    const frames = makeFrames(60, 4000);
    const store = new MemoryStore(0n, 170); // each onFrames call outlasts 3 heartbeats of 50 ms
    const { r, cap } = await receiver(store, { heartbeatMs: 50, maxQueuedBytes: 8 << 10, maxFramesPerCall: 10 });
    const { s, cap: scap } = shipper(r.port, {
      frames: memorySource(frames).frames,
      heartbeatMs: 50,
      batchBytes: 4 << 10,
    });
    await s.finished;
    expect(frameDiff(store.frames, frames)).toBe('');
    expect(s.status().connects).toBe(1);
    expect(cap.text() + scap.text()).not.toMatch(/silent|declared dead/);
  });

  it('stops promptly when aborted, even while the receiver holds back its ACK', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const { r } = await receiver(new MemoryStore(), { onFrames: () => held });
    cleanups.push(async () => release());
    const { s, ac } = shipper(r.port, { frames: memorySource(makeFrames(50)).frames });
    await until(() => s.status().sentLsn === 50n, 5000, 'everything sent');
    const t0 = performance.now();
    ac.abort();
    await s.finished;
    expect(performance.now() - t0).toBeLessThan(500);
    expect(s.status()).toMatchObject({ state: 'stopped', ackedLsn: 0n });
  });

  it('stops when aborted while waiting for WELCOME (the abort came before streaming began)', async () => {
    let helloed: () => void = () => undefined;
    const inHello = new Promise<void>((r) => {
      helloed = r;
    });
    const store = new MemoryStore();
    const { r } = await receiver(store, {
      onHello: async (i) => {
        helloed();
        await new Promise((res) => setTimeout(res, 200));
        return store.onHello(i);
      },
    });
    const endless = async function* (from: bigint, signal: AbortSignal) {
      for (let lsn = from; !signal.aborted; lsn++) {
        yield { lsn, endOfUnit: true, payload: new Uint8Array(10) };
        await new Promise((res) => setTimeout(res, 5));
      }
    };
    const { s, ac } = shipper(r.port, { frames: endless });
    await inHello;
    ac.abort();
    await s.finished;
    expect(s.status().state).toBe('stopped');
  });

  it('fails for good when the frames source skips an LSN', async () => {
    const frames = makeFrames(20).filter((f) => f.lsn !== 7n);
    const { r } = await receiver(new MemoryStore());
    const { s } = shipper(r.port, { frames: memorySource(frames).frames });
    const err = await rejection(s.finished);
    expect(err.code).toBe('SHIP_SOURCE');
    expect(err.message).toMatch(/gave LSN 8 where 7 was due/);
  });

  it('keeps an idle link alive with heartbeats', async () => {
    const store = new MemoryStore();
    const { r } = await receiver(store, { heartbeatMs: 50 });
    const idle = async function* (_from: bigint, signal: AbortSignal) {
      await new Promise((res) => signal.addEventListener('abort', res, { once: true }));
      yield* [];
    };
    const { s, ac } = shipper(r.port, { frames: idle, heartbeatMs: 50 });
    await new Promise((res) => setTimeout(res, 600));
    expect(s.status()).toMatchObject({ state: 'streaming', connects: 1 });
    ac.abort();
    await s.finished;
    expect(s.status().state).toBe('stopped');
  });

  it('resends after onFrames fails, and the receiver never sees a frame twice', async () => {
    const frames = makeFrames(300);
    const store = new MemoryStore(0n, 1);
    const { r, cap } = await receiver(store, { maxFramesPerCall: 50 });
    store.failNext = new Error('disk full');
    const { s } = shipper(r.port, { frames: memorySource(frames).frames });
    await s.finished;
    expect(frameDiff(store.frames, frames)).toBe('');
    expect(store.violations).toEqual([]);
    expect(s.status().connects).toBe(2);
    expect(cap.text()).toMatch(/disk full/);
  });
});

describe('ship link refusals', () => {
  it('refuses a shipper whose certificate comes from another CA, and both ends say why', async () => {
    const { r, cap } = await receiver(new MemoryStore());
    // It trusts our CA (so it accepts the receiver) but holds a certificate from another one.
    const security = { ca: pki().dc1.ca, cert: pki().foreignDc1.cert, key: pki().foreignDc1.key };
    const { s, cap: scap } = shipper(r.port, { frames: memorySource([]).frames, security });
    const err = await rejection(s.finished);
    expect(err.code).toBe('SHIP_REFUSED');
    expect(err.message).toMatch(
      /refused this shipper: unknown CA: the client certificate .* was not issued by this receiver's CA/,
    );
    await until(() => /refused connection/.test(cap.text()), 2000, 'the refusal line');
    expect(cap.text()).toMatch(
      /ship receiver: refused connection from 127\.0\.0\.1:\d+: unknown CA: .*subject "dc1", issuer "ca-b".*UNABLE_TO_VERIFY_LEAF_SIGNATURE/,
    );
    expect(scap.text()).toMatch(/ship: giving up: .*unknown CA/);
    expect(s.status()).toMatchObject({ state: 'failed', connects: 1 });
  });

  it('refuses to ship to a receiver whose certificate comes from another CA', async () => {
    const { r, cap } = await receiver(new MemoryStore());
    const { s, cap: scap } = shipper(r.port, { frames: memorySource([]).frames, security: pki().foreignDc1 });
    const err = await rejection(s.finished);
    expect(err.code).toBe('SHIP_REFUSED');
    expect(err.message).toMatch(
      /unknown CA: the receiver's certificate was not issued by our CA \(SELF_SIGNED_CERT_IN_CHAIN\)/,
    );
    expect(scap.text()).toMatch(/receiver dc2 at 127\.0\.0\.1:\d+ refused: unknown CA/);
    await until(() => /TLS handshake failed/.test(cap.text()), 2000, 'the receiver log line');
  });

  it('refuses a client without a certificate, and tells it why', async () => {
    const { r, cap } = await receiver(new MemoryStore());
    const got = await new Promise<Message[]>((resolve, reject) => {
      const d = new MessageDecoder();
      const msgs: Message[] = [];
      const c = tlsConnect({ host: '127.0.0.1', port: r.port, ca: pki().dc2.ca, servername: 'dc2' });
      c.on('data', (b: Buffer) => {
        d.push(b);
        for (let m = d.next(); m; m = d.next()) msgs.push(m);
      });
      c.on('error', reject);
      c.on('close', () => resolve(msgs));
    });
    expect(got).toEqual([{ type: 'error', code: 'AUTH', message: expect.stringMatching(/^no client certificate/) }]);
    expect(cap.text()).toMatch(/ship receiver: refused connection from 127\.0\.0\.1:\d+: no client certificate/);
  });

  it('refuses a shipper that claims a site its certificate does not name', async () => {
    const { r, cap } = await receiver(new MemoryStore());
    const { s } = shipper(r.port, { frames: memorySource([]).frames, site: 'dc3' });
    const err = await rejection(s.finished);
    expect(err.message).toMatch(/wrong site name: HELLO says site "dc3" but the client certificate names "dc1"/);
    expect(cap.text()).toMatch(/refused connection from .*wrong site name/);
  });

  it('refuses to ship to a receiver whose certificate names another site', async () => {
    const { r } = await receiver(new MemoryStore());
    const { s, cap } = shipper(r.port, { frames: memorySource([]).frames, targetSite: 'dc9' });
    const err = await rejection(s.finished);
    expect(err.code).toBe('SHIP_REFUSED');
    expect(err.message).toMatch(/wrong site: the receiver's certificate names "dc2", not the site "dc9"/);
    expect(cap.text()).toMatch(/refused: wrong site/);
  });

  it('lets onHello refuse, with its reason at both ends', async () => {
    const store = new MemoryStore();
    const { r, cap } = await receiver(store, {
      onHello: async () => ({ refuse: 'journal identity changed (j1, expected j0)' }),
    });
    const { s } = shipper(r.port, { frames: memorySource([]).frames });
    const err = await rejection(s.finished);
    expect(err.message).toMatch(/refused this shipper: journal identity changed \(j1, expected j0\)/);
    expect(cap.text()).toMatch(/refused connection from .*journal identity changed/);
  });

  it('retries while the receiver is not there, then connects', async () => {
    const store = new MemoryStore();
    const probe = await ShipReceiver.listen({
      host: '127.0.0.1',
      port: 0,
      security: pki().dc2,
      log: captureLog().log,
      onHello: async () => ({ durableLsn: 0n }),
      onFrames: async () => undefined,
    });
    const port = probe.port;
    await probe.close();
    const { s, cap } = shipper(port, { frames: memorySource(makeFrames(10)).frames });
    await until(() => s.status().connects >= 3, 5000, 'reconnect attempts');
    const { r } = await receiver(store, { port });
    expect((r as unknown as { server: { address(): AddressInfo } }).server.address().port).toBe(port);
    await s.finished;
    expect(store.frames.length).toBe(10);
    expect(cap.text()).toMatch(/link lost; reconnecting.*ECONNREFUSED/);
  });
});
