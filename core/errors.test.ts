import { describe, expect, it } from 'vitest';
import { describeChain, TidemarkError } from './errors.ts';

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
