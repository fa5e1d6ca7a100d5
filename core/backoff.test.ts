import { describe, expect, it } from 'vitest';
import { backoff, backoffDelayMs, jittered, withRetry } from './backoff.ts';
import { describeChain, TidemarkError } from './errors.ts';

describe('backoffDelayMs', () => {
  it('doubles from base and stops at max', () => {
    expect([0, 1, 2, 3, 4, 5, 60].map((n) => backoffDelayMs(n, 1000, 15_000))).toEqual([
      1000, 2000, 4000, 8000, 15_000, 15_000, 15_000,
    ]);
  });
});

describe('jittered', () => {
  it('only shortens a wait, by at most the jitter share', () => {
    expect(jittered(1000, { random: () => 0 })).toBe(1000);
    expect(jittered(1000, { random: () => 0.999999 })).toBe(801);
    expect(jittered(1000, { jitter: 0.5, random: () => 0.5 })).toBe(750);
    expect(jittered(1000, { jitter: 0 })).toBe(1000);
    for (let i = 0; i < 200; i++) {
      const ms = jittered(30_000);
      expect(ms).toBeGreaterThanOrEqual(24_000);
      expect(ms).toBeLessThanOrEqual(30_000);
    }
  });
});

describe('backoff', () => {
  it('keeps its bounds with jitter, and starts over after reset', () => {
    const b = backoff(500, 4000, { random: () => 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([500, 1000, 2000, 4000, 4000]);
    b.reset();
    expect(b.next()).toBe(500);
    const r = backoff(500, 4000);
    for (let i = 0; i < 50; i++) {
      const ms = r.next();
      expect(ms).toBeGreaterThanOrEqual(400);
      expect(ms).toBeLessThanOrEqual(4000);
    }
  });
});

describe('withRetry', () => {
  it('retries retriable errors and gives up with the last one as cause', async () => {
    let n = 0;
    const err = await withRetry(
      async () => {
        n++;
        throw new TidemarkError('down', { code: 'CONNECT', retriable: true });
      },
      { attempts: 3, baseDelayMs: 1, maxDelayMs: 2, what: 'connect' },
    ).catch((e: unknown) => e);
    expect(n).toBe(3);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).retriable).toBe(false);
    expect(describeChain(err)).toBe('connect: gave up after 3 attempts: caused by: down');
  });
  it('does not retry an error that is not retriable (unknown errors included)', async () => {
    let n = 0;
    await expect(
      withRetry(
        async () => {
          n++;
          throw new Error('boom');
        },
        { attempts: 5, baseDelayMs: 1, maxDelayMs: 1, what: 'x' },
      ),
    ).rejects.toThrow('boom');
    expect(n).toBe(1);
  });
});
