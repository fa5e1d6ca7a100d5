import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import type { RowsEntry, Value } from '../../record/record.ts';
import { type StatementBatch, StatementBatcher } from './batcher.ts';
import type { InfileFactory, QueryFn, QueryKind } from './exec.ts';
import { Pipeline } from './pipeline.ts';

interface Sent {
  kind: QueryKind;
  sql: string;
  infile: InfileFactory | undefined;
}

/** A QueryFn that records each query and answers it with `answer` (after `delay` ms). */
function fake(answer: (s: Sent, n: number) => unknown, delay = 0) {
  const sent: Sent[] = [];
  const q: QueryFn = async (kind, sql, infile) => {
    const s = { kind, sql, infile };
    sent.push(s);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const a = answer(s, sent.length - 1);
    if (a instanceof Error) throw a;
    return a;
  };
  return { q, sent };
}

const ok = (affectedRows: number, warningStatus = 0) => ({ affectedRows, warningStatus });

/** One insert batch of ids [from, to) and, with loadData, the load of the same rows. */
function insertBatch(from: number, to: number, loadData: boolean): StatementBatch {
  const b = new StatementBatcher({ noPrimaryKey: 'full-row', flavor: 'mariadb', loadData, loadMinRows: 2 });
  const rows = Array.from({ length: to - from }, (_, i) => ({
    before: null,
    after: [BigInt(from + i), 'x'] as Value[],
  }));
  const e: RowsEntry = {
    kind: 'rows',
    source: 's',
    seq: BigInt(from),
    txId: 't',
    schema: 'd',
    table: 't',
    op: 'insert',
    columns: [
      { name: 'id', type: 'int' },
      { name: 'v', type: 'text' },
    ],
    pk: ['id'],
    rows,
  };
  const out = [...b.push(e)];
  const rest = b.flush();
  return out[0] ?? rest!;
}

const dupError = () =>
  Object.assign(new Error("Duplicate entry '3' for key 'PRIMARY'"), {
    errno: 1062,
    code: 'ER_DUP_ENTRY',
    sqlState: '23000',
    sqlMessage: "Duplicate entry '3' for key 'PRIMARY'",
  });

describe('LOAD DATA batches (exec.ts, pipeline.ts)', () => {
  it('end their query at once, behind a savepoint, with their rows served as the local file', async () => {
    const { q, sent } = fake((_, n) => (n === 0 ? [ok(2), ok(0), ok(4)] : null));
    const p = new Pipeline(q, () => 'mariadb');
    await p.queue(insertBatch(1, 3, false));
    expect(sent).toHaveLength(0);
    await p.queue(insertBatch(3, 7, true));
    expect(sent).toHaveLength(1);
    const [first] = sent;
    expect(first!.sql).toMatch(
      /^INSERT INTO `d`.`t` .*;\nSAVEPOINT tidemark_stmt_1;\nLOAD DATA LOCAL INFILE 'tidemark' /s,
    );
    expect(await text(first!.infile!('tidemark'))).toBe('3\tx\n4\tx\n5\tx\n6\tx\n');
    await expect(text(first!.infile!('/etc/passwd'))).rejects.toThrow(/only the rows are served/);
    await p.flush();
    expect(sent).toHaveLength(1);
  });

  it('a warning or a short count rolls the load back and runs its rows as the INSERT', async () => {
    for (const answer of [ok(4, 1), ok(3, 0)]) {
      const { q, sent } = fake((_, n) => (n === 0 ? [ok(0), answer] : n === 1 ? ok(0) : ok(4)));
      const p = new Pipeline(q, () => 'mariadb');
      await p.queue(insertBatch(3, 7, true));
      expect(sent.map((s) => [s.kind, s.sql.slice(0, 36)])).toEqual([
        ['rows', 'SAVEPOINT tidemark_stmt_0;\nLOAD DATA'],
        ['diagnose', 'ROLLBACK TO SAVEPOINT tidemark_stmt_'],
        ['rows', 'INSERT INTO `d`.`t` (`id`,`v`) VALUE'],
      ]);
      expect(sent[2]!.sql).toBe(insertBatch(3, 7, false).sql);
    }
  });

  it('the INSERT failing on a duplicate is the divergence the INSERT path always reported', async () => {
    const { q } = fake((_, n) => (n === 0 ? [ok(0), ok(3)] : n === 1 ? ok(0) : dupError()));
    const p = new Pipeline(q, () => 'mariadb');
    const err = await Promise.resolve(p.queue(insertBatch(3, 7, true))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('APPLY_DIVERGED');
    expect((err as TidemarkError).message).toMatch(/insert of 4 row\(s\) in `d`.`t` from seq 3.*Duplicate entry '3'/);
  });
});

describe('Pipeline overlap', () => {
  it('returns from queue() while the query runs; its failure surfaces at the next send or flush', async () => {
    const { q, sent } = fake((_, n) => (n === 2 ? dupError() : [ok(0), ok(4)]), 30);
    const p = new Pipeline(q, () => 'mariadb', { overlap: true });
    const t0 = performance.now();
    await p.queue(insertBatch(1, 5, true));
    expect(performance.now() - t0).toBeLessThan(25);
    await p.queue(insertBatch(5, 9, true)); // waits for the first before sending
    expect(sent).toHaveLength(2);
    await p.queue(insertBatch(9, 13, true));
    await expect(p.flush()).rejects.toThrow(/Duplicate entry/);
  });

  it('abandon() waits for the query in flight and drops its outcome; clear() drops it at once', async () => {
    const { q, sent } = fake(() => dupError(), 30);
    const p = new Pipeline(q, () => 'mariadb', { overlap: true });
    await p.queue(insertBatch(1, 5, true));
    const t0 = performance.now();
    await p.abandon();
    expect(performance.now() - t0).toBeGreaterThan(15);
    await p.flush();
    await p.queue(insertBatch(5, 9, true));
    p.clear();
    await p.flush();
    expect(sent).toHaveLength(2);
  });
});
