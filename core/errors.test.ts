import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeChain, TidemarkError } from './errors.ts';

describe('describeChain', () => {
  it('joins causes and does not repeat a message the line already holds', () => {
    const root = new Error('connect ECONNREFUSED 127.0.0.1:3499');
    const mid = new TidemarkError(`source 127.0.0.1:3499 (user cap): ${root.message}`, {
      code: 'CONNECT',
      cause: root,
    });
    const top = new TidemarkError('capture failed', { code: 'INTERNAL', cause: mid });
    expect(describeChain(top)).toBe(
      'capture failed: caused by: source 127.0.0.1:3499 (user cap): connect ECONNREFUSED 127.0.0.1:3499',
    );
    expect(describeChain(new Error('a', { cause: new Error('b') }))).toBe('a: caused by: b');
    expect(describeChain('plain')).toBe('plain');
  });
});

describe('ErrorCode', () => {
  it('core/README.md lists exactly the codes of the union, each once', () => {
    const src = readFileSync(join(import.meta.dirname, 'errors.ts'), 'utf8');
    const union = src.slice(
      src.indexOf('export type ErrorCode'),
      src.indexOf(';\n', src.indexOf('export type ErrorCode')),
    );
    const codes = [...union.matchAll(/\| '([A-Z_0-9]+)'/g)].map((m) => m[1]);
    const readme = readFileSync(join(import.meta.dirname, 'README.md'), 'utf8');
    const listed = [...readme.matchAll(/^\| `([A-Z_0-9]+)` \|/gm)].map((m) => m[1]);
    expect(codes.length).toBeGreaterThan(100);
    expect(new Set(codes).size).toBe(codes.length);
    expect([...listed].sort()).toEqual([...codes].sort());
  });
});
