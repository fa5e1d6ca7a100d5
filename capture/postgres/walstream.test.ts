import { afterEach, describe, expect, it, vi } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { encodeStatusUpdate, type ReplicationTransport, WalStream } from './walstream.ts';

/** A CopyBoth connection in memory: the test plays the server. */
class FakeTransport implements ReplicationTransport {
  data: ((c: Uint8Array) => void) | undefined;
  endHandler: ((err?: unknown) => void) | undefined;
  sent: Buffer[] = [];
  paused = false;
  pauses = 0;
  closed = false;
  onCopyData(h: (c: Uint8Array) => void): void {
    this.data = h;
  }
  onEnd(h: (err?: unknown) => void): void {
    this.endHandler = h;
  }
  sendCopyData(c: Uint8Array): void {
    this.sent.push(Buffer.from(c));
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  xlog(walStart: bigint, payload: string, walEnd = walStart): void {
    const h = Buffer.alloc(25);
    h.write('w', 0, 'latin1');
    h.writeBigUInt64BE(walStart, 1);
    h.writeBigUInt64BE(walEnd, 9);
    h.writeBigInt64BE(123n, 17);
    this.data?.(Buffer.concat([h, Buffer.from(payload)]));
  }
  keepalive(walEnd: bigint, replyRequested: boolean): void {
    const b = Buffer.alloc(18);
    b.write('k', 0, 'latin1');
    b.writeBigUInt64BE(walEnd, 1);
    b.writeBigInt64BE(0n, 9);
    b.writeUInt8(replyRequested ? 1 : 0, 17);
    this.data?.(b);
  }
  /** The write/flush/apply positions of every status update sent (each must carry one position thrice). */
  reports(): bigint[] {
    return this.sent.map((b) => {
      expect(b.length).toBe(34);
      expect(b.toString('latin1', 0, 1)).toBe('r');
      const w = b.readBigUInt64BE(1);
      expect(b.readBigUInt64BE(9)).toBe(w);
      expect(b.readBigUInt64BE(17)).toBe(w);
      return w;
    });
  }
}

const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);

function open(o: { startLsn?: bigint; highWaterBytes?: number; statusIntervalMs?: number } = {}) {
  const t = new FakeTransport();
  const s = new WalStream(t, { startLsn: o.startLsn ?? 1000n, now: () => NOW, ...o });
  return { t, s };
}

let streams: WalStream[] = [];
afterEach(async () => {
  for (const s of streams) await s.close();
  streams = [];
  vi.useRealTimers();
});

describe('WalStream framing', () => {
  it('hands out XLogData with its header fields and the payload bytes, in order, queued or awaited', async () => {
    const { t, s } = open();
    streams.push(s);
    t.xlog(1100n, 'B...', 1200n);
    t.xlog(1150n, 'I...');
    const first = await s.next();
    expect({ ...first, payload: Buffer.from(first?.payload ?? []).toString() }).toEqual({
      walStart: 1100n,
      walEnd: 1200n,
      sendTime: 123n,
      payload: 'B...',
    });
    expect(Buffer.from((await s.next())?.payload ?? []).toString()).toBe('I...');
    const pending = s.next();
    t.xlog(1300n, 'C...');
    expect((await pending)?.walStart).toBe(1300n);
  });

  it('encodes a status update as the protocol says (r, three positions, µs since 2000-01-01, reply flag)', () => {
    const b = encodeStatusUpdate(0x1_0000_0002n, Date.UTC(2000, 0, 1, 0, 0, 1), true);
    expect(b.toString('hex')).toBe(`72${'0000000100000002'.repeat(3)}${(1_000_000).toString(16).padStart(16, '0')}01`);
  });

  it('fails the stream on a short XLogData, a short keepalive or an unknown kind (PG_PROTOCOL)', async () => {
    for (const bad of [Buffer.from('w1234'), Buffer.from('k123'), Buffer.from('zzzz')]) {
      const { t, s } = open();
      streams.push(s);
      const pending = s.next();
      t.data?.(bad);
      const err = await pending.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TidemarkError);
      expect((err as TidemarkError).code).toBe('PG_PROTOCOL');
      await expect(s.next()).rejects.toBe(err);
    }
  });

  it('delivers what was queued before the end, then null; an error end rejects', async () => {
    const { t, s } = open();
    streams.push(s);
    t.xlog(1100n, 'x');
    t.endHandler?.();
    expect((await s.next())?.walStart).toBe(1100n);
    expect(await s.next()).toBeNull();
    const b = open();
    streams.push(b.s);
    const pending = b.s.next();
    const boom = new Error('socket reset');
    b.t.endHandler?.(boom);
    await expect(pending).rejects.toBe(boom);
  });
});

describe('WalStream acknowledgement', () => {
  it('answers a keepalive that asks at once with only the confirmed LSN, never what was received', () => {
    const { t, s } = open({ startLsn: 1000n });
    streams.push(s);
    t.xlog(1100n, 'B');
    t.xlog(1200n, 'I');
    t.xlog(1300n, 'C'); // handed to the consumer, which is still fsyncing: not confirmed
    t.keepalive(1400n, true);
    expect(t.reports()).toEqual([1000n]);
    s.confirm(1300n); // the commit's end LSN, as is
    t.keepalive(1400n, true);
    // Everything received is confirmed: idle, so the keepalive's walEnd is reported.
    expect(t.reports()).toEqual([1000n, 1400n]);
  });

  it('reports the exact commit end when more is pending, and the keepalive walEnd only when idle', () => {
    const { t, s } = open({ startLsn: 1000n });
    streams.push(s);
    t.xlog(1100n, 'B');
    t.xlog(1300n, 'C');
    t.xlog(1500n, 'B'); // the next transaction has begun
    s.confirm(1300n);
    t.keepalive(2000n, true);
    expect(t.reports()).toEqual([1300n]);
    t.xlog(1600n, 'C');
    s.confirm(1600n);
    t.keepalive(2000n, false); // not asked, but the report moved (idle): sent
    expect(t.reports()).toEqual([1300n, 2000n]);
    t.keepalive(2000n, false); // nothing moved, not asked: silent
    expect(t.reports()).toEqual([1300n, 2000n]);
  });

  it('never reports backwards, ignores a lower confirm and refuses one beyond what was received', () => {
    const { t, s } = open({ startLsn: 1000n });
    streams.push(s);
    t.xlog(1300n, 'C');
    s.confirm(1300n);
    s.confirm(1200n);
    expect(s.position()).toBe(1300n);
    expect(() => s.confirm(5000n)).toThrow(/beyond the last position received/);
    t.keepalive(4000n, true);
    expect(s.position()).toBe(4000n);
    t.xlog(4100n, 'B'); // pending again: the report stays where it was, it does not fall back to 1300
    s.flush();
    expect(t.reports()).toEqual([4000n, 4000n]);
  });

  it('sends a status update every statusIntervalMs from a timer, without any keepalive', () => {
    vi.useFakeTimers();
    const { t, s } = open({ startLsn: 1000n, statusIntervalMs: 5000 });
    streams.push(s);
    vi.advanceTimersByTime(4999);
    expect(t.sent).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(t.reports()).toEqual([1000n]);
    t.xlog(1100n, 'C');
    s.confirm(1100n);
    vi.advanceTimersByTime(5000);
    expect(t.reports()).toEqual([1000n, 1100n]);
  });

  it('sends nothing while the position is unknown (0 = no information to the server)', () => {
    const { t, s } = open({ startLsn: 0n });
    streams.push(s);
    t.xlog(10n, 'B');
    t.keepalive(20n, true);
    expect(t.sent).toHaveLength(0);
  });
});

describe('WalStream queue', () => {
  it('hands out 20k queued messages in order while more arrive (compaction keeps the order)', async () => {
    const { t, s } = open({ highWaterBytes: 1 << 30 });
    streams.push(s);
    for (let i = 0; i < 10_000; i++) t.xlog(2000n + BigInt(i), `m${i}`);
    const seen: bigint[] = [];
    for (let i = 0; i < 20_000; i++) {
      if (i === 5000) for (let j = 10_000; j < 20_000; j++) t.xlog(2000n + BigInt(j), `m${j}`);
      seen.push((await s.next())?.walStart ?? -1n);
    }
    expect(seen).toEqual(Array.from({ length: 20_000 }, (_, i) => 2000n + BigInt(i)));
  });
});

describe('WalStream backpressure', () => {
  it('pauses reading above the high-water mark and resumes below half of it; keepalives still answered', async () => {
    const { t, s } = open({ highWaterBytes: 100 });
    streams.push(s);
    for (let i = 0; i < 5; i++) t.xlog(1100n + BigInt(i), 'x'.repeat(30));
    expect(t.paused).toBe(true);
    expect(t.pauses).toBe(1);
    t.keepalive(1200n, true);
    expect(t.reports()).toEqual([1000n]);
    await s.next(); // 120 left
    await s.next(); // 90 left
    expect(t.paused).toBe(true);
    await s.next(); // 60 left
    expect(t.paused).toBe(true);
    await s.next(); // 30 left: below 50
    expect(t.paused).toBe(false);
  });
});
