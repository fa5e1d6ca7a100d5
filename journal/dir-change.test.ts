import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirChange } from './dir-change.ts';

const settledWithin = (p: Promise<void>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('DirChange', () => {
  let dir: string;
  let change: DirChange;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tm-dirchange-'));
  });
  afterEach(() => {
    change?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('wakes for the entries it names only, and on its poll interval otherwise', async () => {
    change = new DirChange({ dir, pollMs: 60_000, wakesOn: (name) => name.endsWith('.tmj') });
    // The first wait starts the watch; an earlier change is not seen.
    const first = change.wait();
    writeFileSync(join(dir, 'rollback-index.sqlite-wal'), 'x');
    writeFileSync(join(dir, 'DURABLE'), 'x');
    expect(await settledWithin(first, 300)).toBe(false);
    writeFileSync(join(dir, '00000000000000000001.tmj'), 'x');
    expect(await settledWithin(first, 2000)).toBe(true);
    // A change between two waits is not lost: the next wait returns at once.
    writeFileSync(join(dir, '00000000000000000001.tmj'), 'xy');
    await new Promise((r) => setTimeout(r, 100));
    expect(await settledWithin(change.wait(), 50)).toBe(true);
  });

  it('ends a wait on abort, and after pollMs without any notice', async () => {
    const ac = new AbortController();
    change = new DirChange({ dir, pollMs: 60_000, signal: ac.signal, wakesOn: () => true });
    const w = change.wait();
    ac.abort();
    expect(await settledWithin(w, 500)).toBe(true);
    change.close();
    change = new DirChange({ dir, pollMs: 50, wakesOn: () => false });
    writeFileSync(join(dir, 'x.tmj'), 'x');
    expect(await settledWithin(change.wait(), 1000)).toBe(true);
  });
});
