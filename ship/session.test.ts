import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import type { WireFrame } from './frame.ts';
import { lastUnitEnd } from './frame.ts';
import { AckReporter, batchFrames, durableMarks, SessionLoop } from './session.ts';

const silent = pino({ level: 'silent' });
const f = (lsn: number, size = 10, endOfUnit = false): WireFrame => ({
  lsn: BigInt(lsn),
  endOfUnit,
  payload: new Uint8Array(size),
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('batchFrames', () => {
  it('cuts batches at maxBytes and maxFrames', async () => {
    async function* src() {
      for (let i = 1; i <= 10; i++) yield f(i);
    }
    const sizes = (await collect(batchFrames(src(), 1n, 35, 100))).map((b) => b.frames.length);
    expect(sizes).toEqual([4, 4, 2]);
    const byCount = (await collect(batchFrames(src(), 1n, 1 << 20, 3))).map((b) => b.frames.length);
    expect(byCount).toEqual([3, 3, 3, 1]);
  });

  it('hands out what is ready when the source waits', async () => {
    async function* src() {
      yield f(5);
      yield f(6);
      await new Promise((r) => setTimeout(r, 30));
      yield f(7);
    }
    const batches = (await collect(batchFrames(src(), 5n, 1 << 20, 100))).map((b) => b.frames.map((x) => x.lsn));
    expect(batches).toEqual([[5n, 6n], [7n]]);
  });

  it('a source that skips or repeats an LSN is a non-retriable SHIP_SOURCE error', async () => {
    async function* src() {
      yield f(1);
      yield f(3);
    }
    await expect(collect(batchFrames(src(), 1n, 1 << 20, 100))).rejects.toMatchObject({
      code: 'SHIP_SOURCE',
      retriable: false,
    });
    async function* late() {
      yield f(2);
    }
    await expect(collect(batchFrames(late(), 1n, 1 << 20, 100))).rejects.toThrow(/gave LSN 2 where 1 was due/);
  });
});

describe('AckReporter', () => {
  it('keeps the highest unit end and coalesces a slow onAck', async () => {
    const seen: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const a = new AckReporter(
      async (x) => {
        seen.push(`${x.lsn}/${x.unitLsn}`);
        if (seen.length === 1) await gate;
      },
      3n,
      silent,
    );
    a.note(5n, null);
    a.note(8n, 7n);
    a.note(9n, null);
    release();
    await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual(['5/3', '9/7']);
    expect(a.unitLsn).toBe(7n);
    expect(lastUnitEnd([f(1, 1, true), f(2), f(3, 1, true), f(4)])).toBe(3n);
    expect(lastUnitEnd([f(4)])).toBeNull();
  });
});

describe('AckReporter.resumed', () => {
  it('reports what an earlier session added without its reply: the top, and the top as unit end when it ends one', async () => {
    const seen: string[] = [];
    const a = new AckReporter((x) => void seen.push(`${x.lsn}/${x.unitLsn}`), 3n, silent);
    const tick = () => new Promise((r) => setTimeout(r, 1));
    a.note(6n, null); // a session sent 7..9 (9 ends a unit) and died before the reply
    await tick();
    a.resumed(9n, 9n);
    await tick();
    expect(a.unitLsn).toBe(9n);
    a.resumed(12n, null); // mid-unit top: the unit end stays
    await tick();
    expect([a.lsn, a.unitLsn]).toEqual([12n, 9n]);
    a.resumed(12n, null); // nothing new: no report
    await tick();
    expect(seen).toEqual(['6/3', '9/9', '12/9']);
  });
});

describe('SessionLoop', () => {
  it('retries retriable failures, then stops on a fatal one', async () => {
    const ac = new AbortController();
    const loop = new SessionLoop({ log: silent, signal: ac.signal, what: 't', reconnectBaseMs: 1 });
    let n = 0;
    const fatal = new TidemarkError('bad', { code: 'INTERNAL' });
    await expect(
      loop.run(async () => {
        n++;
        if (n < 3) throw new TidemarkError('again', { code: 'LINK_DOWN', retriable: true });
        throw fatal;
      }),
    ).rejects.toBe(fatal);
    expect(n).toBe(3);
    expect(loop.state).toBe('failed');
    expect(loop.sessions).toBe(3);
  });

  it('ends done when a session completes and stopped when aborted', async () => {
    const ac = new AbortController();
    const done = new SessionLoop({ log: silent, signal: ac.signal, what: 't' });
    await done.run(async () => true);
    expect(done.state).toBe('done');
    const stopped = new SessionLoop({ log: silent, signal: ac.signal, what: 't', reconnectBaseMs: 1 });
    await stopped.run(async () => {
      ac.abort();
      throw new TidemarkError('gone', { code: 'LINK_DOWN', retriable: true });
    });
    expect(stopped.state).toBe('stopped');
  });
});

describe("batchFrames with wire overhead; a session end's marks and link status", () => {
  it('counts the wire overhead per frame when asked (the tcp FRAMES body)', async () => {
    async function* src() {
      for (let i = 1; i <= 6; i++) yield f(i, 10);
    }
    // 10 payload + 13 overhead per frame: a batch is cut at the second frame of 40 bytes.
    const sizes = (await collect(batchFrames(src(), 1n, 40, Infinity, 13))).map((b) => [b.frames.length, b.bytes]);
    expect(sizes).toEqual([
      [2, 46],
      [2, 46],
      [2, 46],
    ]);
  });

  it("keeps a receiver's durable marks: the last LSN, the highest unit end, the time", () => {
    const a = durableMarks({ lsn: 0n, unitLsn: 0n, lastAckAt: null }, [f(1), f(2, 1, true), f(3)]);
    expect(a).toMatchObject({ lsn: 3n, unitLsn: 2n });
    expect(a.lastAckAt).toBeInstanceOf(Date);
    expect(durableMarks(a, [f(4)])).toMatchObject({ lsn: 4n, unitLsn: 2n });
  });

  it('reports state, sessions as connects, the marks and the last error', async () => {
    const loop = new SessionLoop({ log: silent, signal: new AbortController().signal, what: 'test' });
    let n = 0;
    await loop
      .run(async () => {
        if (++n === 1) throw new TidemarkError('broker gone', { code: 'LINK_DOWN', retriable: false });
        return true;
      })
      .catch(() => undefined);
    const at = new Date();
    expect(loop.status({ lsn: 9n, unitLsn: 8n, lastAckAt: at })).toEqual({
      state: 'failed',
      ackedLsn: 9n,
      ackedUnitLsn: 8n,
      lastAckAt: at,
      connects: 1,
      sessions: 1,
      lastError: expect.stringContaining('broker gone'),
    });
  });
});
