import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { DurableAcks } from './durable-acks.ts';

/** A commit whose durability the test resolves or rejects. */
function pending() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const p = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { p, resolve, reject };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('DurableAcks', () => {
  it('confirms each LSN only once every commit before it is durable, in order, without waiting for the fsync', async () => {
    const confirmed: bigint[] = [];
    const acks = new DurableAcks((lsn) => confirmed.push(lsn));
    const c1 = pending();
    const c2 = pending();
    await acks.track(c1.p, 1n); // returns at once: capture goes on with the next transaction
    acks.confirmAfter(100n);
    await acks.track(c2.p, 2n);
    acks.confirmAfter(200n);
    acks.confirmAfter(250n); // a transaction with nothing captured: behind commit 2 too
    await tick();
    expect(confirmed).toEqual([]);
    c2.resolve(); // the later one durable first: still nothing may be confirmed
    await tick();
    expect(confirmed).toEqual([]);
    c1.resolve();
    await acks.drain();
    expect(confirmed).toEqual([100n, 200n, 250n]);
  });

  it('waits while more than maxInFlight commits are not durable', async () => {
    const acks = new DurableAcks(() => {}, 2);
    const cs = [pending(), pending(), pending()];
    await acks.track(cs[0]!.p, 1n);
    await acks.track(cs[1]!.p, 2n);
    let third = false;
    const t = acks.track(cs[2]!.p, 3n).then(() => (third = true));
    await tick();
    expect(third).toBe(false);
    cs[0]!.resolve();
    await t;
    expect(third).toBe(true);
  });

  it('a sink failure stops every later confirm and is thrown as SINK, not retriable', async () => {
    const confirmed: bigint[] = [];
    const acks = new DurableAcks((lsn) => confirmed.push(lsn));
    const c1 = pending();
    const c2 = pending();
    await acks.track(c1.p, 7n);
    acks.confirmAfter(100n);
    await acks.track(c2.p, 8n);
    acks.confirmAfter(200n);
    c2.resolve();
    c1.reject(new Error('EIO'));
    const err = await acks.drain().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect(err).toMatchObject({ code: 'SINK', retriable: false });
    expect((err as Error).message).toContain('commit seq 7');
    expect(confirmed).toEqual([]);
    expect(() => acks.confirmAfter(300n)).toThrow(/seq 7/);
    await expect(acks.track(Promise.resolve(), 9n)).rejects.toMatchObject({ code: 'SINK' });
  });
});
