import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ins, ORDERS, TestJournal } from '../test/fixtures/rollback-journal.ts';
import { RollbackIndex } from '../rollback/index/index.ts';
import type { Config } from '../config/config.ts';
import { followIndex } from './index-follow.ts';
import { indexEnabled, indexLoop } from './index-loop.ts';

let base: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'tidemark-indexloop-'));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

function capture() {
  const lines: { level: number; msg: string; component?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('followIndex', () => {
  it('waits for the journal, then keeps the index at the head until stopped', async () => {
    const dir = join(base, 'journal');
    const ac = new AbortController();
    let lsn = 0n;
    const { log } = capture();
    const done = followIndex({ journalDir: dir, log, signal: ac.signal, onCaughtUp: (l) => (lsn = l) });
    await new Promise((r) => setTimeout(r, 100));
    const j = await TestJournal.open(dir);
    await j.tx([ins(ORDERS, [1n, 'a'])]);
    await j.writer.flush();
    await until('first transaction', () => lsn === 2n);
    for (let i = 2n; i <= 20n; i++) await j.tx([ins(ORDERS, [i, 'b'])]);
    await j.writer.flush();
    const t0 = Date.now();
    await until('twenty transactions', () => lsn === 40n);
    expect(Date.now() - t0).toBeLessThan(2000);
    ac.abort();
    await done;
    await j.close();
    const index = await RollbackIndex.open({ journalDir: dir });
    expect(index.indexedLsn).toBe(40n);
    index.close();
  });
});

describe('indexLoop', () => {
  it('runs the index in a child process, relays its log lines, and stops on abort', async () => {
    const dir = join(base, 'journal');
    const j = await TestJournal.open(dir);
    for (let i = 1n; i <= 10n; i++) await j.tx([ins(ORDERS, [i, 'x'])]);
    await j.writer.flush();
    const config = { journal: { dir }, rollback: { index: true } } as unknown as Config;
    expect(indexEnabled(config)).toBe(true);
    expect(indexEnabled({ ...config, rollback: { index: false } } as unknown as Config)).toBe(false);
    const { log, lines } = capture();
    const ac = new AbortController();
    const loop = indexLoop(dir, log, ac.signal);
    await until('the follower to open the index', () => lines.some((l) => l.msg === 'rollback index open'));
    expect(lines.find((l) => l.msg === 'rollback index open')?.component).toBe('rollback-index');
    const reader = await RollbackIndex.open({ journalDir: dir });
    await until('the index to reach the head', () => reader.listTxs({}).length === 10);
    await j.tx([ins(ORDERS, [11n, 'y'])]);
    await j.writer.flush();
    await until('the new transaction', () => reader.listTxs({}).length === 11);
    reader.close();
    ac.abort();
    await loop;
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    await j.close();
  });
});
