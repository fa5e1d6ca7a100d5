import { describe, expect, it } from 'vitest';
import { describeChain, TidemarkError, withRetry } from './errors.ts';

describe('describeChain', () => {
  it('joins causes and does not repeat a message the line already holds', () => {
    const root = new Error('connect ECONNREFUSED 127.0.0.1:3499');
    const mid = new TidemarkError(`source 127.0.0.1:3499 (user cap): ${root.message}`, {
      code: 'CONNECT',
      cause: root,
    });
    const top = new TidemarkError('capture failed', { code: 'X', cause: mid });
    expect(describeChain(top)).toBe(
      'capture failed: caused by: source 127.0.0.1:3499 (user cap): connect ECONNREFUSED 127.0.0.1:3499',
    );
    expect(describeChain(new Error('a', { cause: new Error('b') }))).toBe('a: caused by: b');
    expect(describeChain('plain')).toBe('plain');
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
