import { describe, expect, it } from 'vitest';
import { Puller } from './puller.ts';

async function* slow(values: number[], delayMs: number): AsyncGenerator<number> {
  for (const v of values) {
    await new Promise((r) => setTimeout(r, delayMs));
    yield v;
  }
}

describe('Puller', () => {
  it('times out without losing the pending value', async () => {
    const p = new Puller(slow([1, 2], 40), undefined);
    expect(await p.next(5)).toBe('timeout');
    expect(await p.next(null)).toEqual({ value: 1, done: false });
    expect(await p.next(null)).toEqual({ value: 2, done: false });
    expect(await p.next(null)).toEqual({ value: undefined, done: true });
  });

  it('takes an immediately available value even with a zero time limit', async () => {
    async function* ready(): AsyncGenerator<number> {
      yield 7;
    }
    expect(await new Puller(ready(), undefined).next(0)).toEqual({ value: 7, done: false });
  });

  it('returns on abort', async () => {
    const ac = new AbortController();
    const p = new Puller(slow([1], 10_000), ac.signal);
    setTimeout(() => ac.abort(), 10);
    expect(await p.next(null)).toBe('abort');
    expect(await p.next(null)).toBe('abort');
  });

  it('passes the source error on', async () => {
    async function* failing(): AsyncGenerator<number> {
      await new Promise((r) => setTimeout(r, 20));
      throw new Error('journal broke');
    }
    const p = new Puller(failing(), undefined);
    expect(await p.next(1)).toBe('timeout');
    await expect(p.next(null)).rejects.toThrow('journal broke');
  });

  it('reads one value ahead: the next value is taken at once even with a zero time limit', async () => {
    const p = new Puller(slow([1, 2, 3], 20), undefined);
    expect(await p.next(null)).toEqual({ value: 1, done: false });
    await new Promise((r) => setTimeout(r, 60)); // the read-ahead of value 2 settles meanwhile
    expect(await p.next(0)).toEqual({ value: 2, done: false });
    expect(await p.next(0)).toBe('timeout'); // value 3 is 20 ms away
    expect(await p.next(null)).toEqual({ value: 3, done: false });
    expect(await p.next(null)).toEqual({ value: undefined, done: true });
  });

  it('delivers the error of a read-ahead on the next call', async () => {
    async function* breaks(): AsyncGenerator<number> {
      yield 1;
      throw new Error('segment corrupt');
    }
    const p = new Puller(breaks(), undefined);
    expect(await p.next(null)).toEqual({ value: 1, done: false });
    await new Promise((r) => setTimeout(r, 10));
    await expect(p.next(0)).rejects.toThrow('segment corrupt');
  });
});
