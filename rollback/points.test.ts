import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommitEntry } from '../record/record.ts';
import { del, ins, ORDERS, TestJournal, upd } from '../test/fixtures/rollback-journal.ts';
import { RollbackIndex } from './index/index.ts';
import { checkWindow, pointState, resolveForward, resolveRewind } from './points.ts';

let dir: string;
let index: RollbackIndex;
/** Commits of: t1 (2 rows), t2 (empty), t3 (3 rows), DDL, t5 (1 row), t6 (2 rows). */
let c: CommitEntry[];
const T0 = 1_700_000_000_000_000n;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-points-'));
  const j = await TestJournal.open(dir);
  c = [];
  c.push(await j.tx([ins(ORDERS, [1n, 'a'], [2n, 'b'])], { timeUs: T0 + 1_000_000n, txId: 't1' })); // seqs 1-2, commit 3
  c.push(await j.tx([], { timeUs: T0 + 2_000_000n, txId: 't2' })); // commit 4
  c.push(
    await j.tx(
      [
        upd(ORDERS, [
          [1n, 'a'],
          [1n, 'A'],
        ]),
        ins(ORDERS, [3n, 'c']),
        del(ORDERS, [2n, 'b']),
      ],
      {
        timeUs: T0 + 3_000_000n,
        txId: 't3',
      },
    ),
  ); // seqs 5-7, commit 8
  c.push(
    await j.tx(
      [{ ddl: 'ALTER TABLE orders ADD x INT', schema: 'shop', tables: [{ schema: 'shop', table: 'orders' }] }],
      {
        timeUs: T0 + 4_000_000n,
        txId: 't4',
      },
    ),
  ); // ddl 9, commit 10
  c.push(await j.tx([ins(ORDERS, [4n, 'd'])], { timeUs: T0 + 5_000_000n, txId: 't5' })); // 11, commit 12
  c.push(await j.tx([ins(ORDERS, [5n, 'e'], [6n, 'f'])], { timeUs: T0 + 6_000_000n, txId: 't6' })); // 13-14, commit 15
  await j.close();
  index = await RollbackIndex.open({ journalDir: dir });
  await index.catchUp();
});

afterEach(async () => {
  index.close();
  await rm(dir, { recursive: true, force: true });
});

describe('resolveRewind', () => {
  it('by time keeps what committed at or before it', () => {
    expect(c.map((x) => x.seq)).toEqual([3n, 4n, 8n, 10n, 12n, 15n]);
    expect(resolveRewind(index, 15n, { kind: 'time', timeUs: T0 + 3_500_000n })).toBe(8n);
    expect(resolveRewind(index, 15n, { kind: 'time', timeUs: T0 + 6_000_000n })).toBe(15n);
    expect(() => resolveRewind(index, 15n, { kind: 'time', timeUs: T0 })).toThrow(/oldest it holds committed/);
  });

  it('by transactions skips empty ones and counts a cut transaction as one', () => {
    expect(resolveRewind(index, 15n, { kind: 'steps', steps: 1, unit: 'tx' })).toBe(12n);
    expect(resolveRewind(index, 15n, { kind: 'steps', steps: 3, unit: 'tx' })).toBe(8n);
    expect(resolveRewind(index, 8n, { kind: 'steps', steps: 1, unit: 'tx' })).toBe(4n);
    // From inside t3 (after its first row, seq 5): one step back undoes that part only.
    expect(resolveRewind(index, 5n, { kind: 'steps', steps: 1, unit: 'tx' })).toBe(4n);
    // t2 is empty: two steps back from t3 land before t1.
    expect(resolveRewind(index, 8n, { kind: 'steps', steps: 2, unit: 'tx' })).toBe(0n);
    expect(() => resolveRewind(index, 8n, { kind: 'steps', steps: 3, unit: 'tx' })).toThrow(/no transaction with seq/);
  });

  it('by rows walks back row changes across transactions', () => {
    expect(resolveRewind(index, 15n, { kind: 'steps', steps: 1, unit: 'row' })).toBe(13n);
    expect(resolveRewind(index, 15n, { kind: 'steps', steps: 2, unit: 'row' })).toBe(12n);
    // 3 rows back from 15: 14, 13, then 11 (t5's row).
    expect(resolveRewind(index, 15n, { kind: 'steps', steps: 3, unit: 'row' })).toBe(10n);
    expect(resolveRewind(index, 8n, { kind: 'steps', steps: 2, unit: 'row' })).toBe(5n);
    expect(resolveRewind(index, 6n, { kind: 'steps', steps: 2, unit: 'row' })).toBe(4n);
    // 3 rows back from inside t3: 6, 5, then t1's second row (2), past the empty t2.
    expect(resolveRewind(index, 6n, { kind: 'steps', steps: 3, unit: 'row' })).toBe(1n);
  });

  it('before a transaction undoes it and everything after', () => {
    expect(resolveRewind(index, 15n, { kind: 'before-tx', txId: 't5' })).toBe(10n);
    expect(() => resolveRewind(index, 8n, { kind: 'before-tx', txId: 't6' })).toThrow(/not applied on this target/);
    expect(() => resolveRewind(index, 8n, { kind: 'before-tx', txId: 'nope' })).toThrow(/not in the rollback index/);
  });

  it('to a seq keeps exactly that commit (failback), and refuses a seq inside a transaction', () => {
    expect(resolveRewind(index, 15n, { kind: 'seq', keep: 8n })).toBe(8n);
    expect(resolveRewind(index, 8n, { kind: 'seq', keep: 12n })).toBe(8n);
    expect(() => resolveRewind(index, 15n, { kind: 'seq', keep: 6n })).toThrow(/inside transaction t3/);
  });
});

describe('resolveForward', () => {
  it('goes to the head, a time, or N transactions ahead (a cut transaction counts as one)', () => {
    expect(resolveForward(index, 4n, { kind: 'head' })).toBe(15n);
    expect(resolveForward(index, 4n, { kind: 'time', timeUs: T0 + 3_000_000n })).toBe(8n);
    expect(() => resolveForward(index, 8n, { kind: 'time', timeUs: T0 + 3_000_000n })).toThrow(/already holds/);
    expect(resolveForward(index, 5n, { kind: 'steps', steps: 1 })).toBe(8n);
    expect(resolveForward(index, 3n, { kind: 'steps', steps: 1 })).toBe(8n); // t2 is empty
    expect(resolveForward(index, 12n, { kind: 'steps', steps: 5 })).toBe(15n);
  });
});

describe('checkWindow', () => {
  it('refuses a window with DDL, naming statement, time, seq and LSN', () => {
    expect(() => checkWindow(index, 8n, 12n)).toThrow(
      /crosses a DDL statement: "ALTER TABLE orders ADD x INT" \(transaction t4, committed .*seq 9, journal LSN \d+/,
    );
  });

  it('summarises a window without DDL', () => {
    const w = checkWindow(index, 10n, 15n);
    expect(w.txs).toBe(2);
    expect(w.rows).toEqual({ insert: 3, update: 0, delete: 0 });
    expect(w.tables).toEqual(['shop.orders']);
    expect([w.first?.txId, w.last?.txId]).toEqual(['t5', 't6']);
    expect(checkWindow(index, 15n, 15n).txs).toBe(0);
  });
});

describe('pointState', () => {
  it('a transaction boundary holds that commit; inside a transaction, the previous one', () => {
    const at = pointState(index, 8n);
    expect(at.partial).toBeNull();
    expect(at.state).toMatchObject({ seq: 8n, commitTimeUs: T0 + 3_000_000n });
    const mid = pointState(index, 6n);
    expect(mid.partial?.txId).toBe('t3');
    expect(mid.state.seq).toBe(6n);
    expect(mid.state.commitTimeUs).toBe(T0 + 2_000_000n);
    expect(mid.state.lsn).toBe(index.txByCommitSeq(4n)?.commitLsn);
  });
});
