/** Rewind windows and listings with user/role/grant statements (source.accounts): not a refusal, never a secret. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ins, ORDERS, TestJournal } from '../test/fixtures/rollback-journal.ts';
import { RollbackIndex } from './index/index.ts';
import { checkWindow } from './points.ts';
import { txJson, txLine } from './show.ts';

let dir: string;
let index: RollbackIndex;
const T0 = 1_700_000_000_000_000n;
const SECRET = 'pw-Do-Not-Show';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-points-acc-'));
  const j = await TestJournal.open(dir);
  await j.tx([ins(ORDERS, [1n, 'a'])], { timeUs: T0 + 1_000_000n, txId: 't1' }); // 1, commit 2
  await j.tx([{ ddl: `ALTER USER 'app'@'%' IDENTIFIED BY '${SECRET}'`, schema: '', tables: [] }], {
    timeUs: T0 + 2_000_000n,
    txId: 't2',
  }); // ddl 3, commit 4
  await j.tx([ins(ORDERS, [2n, 'b'])], { timeUs: T0 + 3_000_000n, txId: 't3' }); // 5, commit 6
  await j.close();
  const opened = await RollbackIndex.open({ journalDir: dir });
  await opened.catchUp();
  index = opened;
});

afterEach(async () => {
  for (const close of [() => index.close(), () => rm(dir, { recursive: true, force: true })]) await close();
});

describe('account statements in the journal', () => {
  it('do not stop a rewind window (they change no rows)', () => {
    const w = checkWindow(index, 0n, 6n);
    expect(w.rows.insert).toBe(2);
    expect(w.txs).toBe(3);
  });

  it('are listed redacted', () => {
    const t2 = index.listTxs({ order: 'asc' }).find((t) => t.txId === 't2');
    expect(t2).toBeDefined();
    const line = txLine(t2!);
    expect(line).toContain("ALTER USER 'app'@'%' IDENTIFIED BY '<redacted>'");
    expect(line).not.toContain(SECRET);
    expect(JSON.stringify(txJson(t2!))).not.toContain(SECRET);
  });
});
