import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { ValueError } from '../mysql/sql.ts';
import type { RowsEntry } from '../record/record.ts';
import { executePlan, type PlanConnection, type PlanItem } from './execute.ts';
import { GuardError, type GuardedStatement, guardedStatements } from './guard.ts';

/**
 * A fake server: runs each statement of a query in order; `rows(sql)` says how many rows a statement matches, or
 * throws a server error (which stops the query, like MySQL does).
 */
class FakeConn {
  readonly queries: string[] = [];
  /** Guarded statements received so far. */
  sent = 0;
  readonly config = { clientFlags: 0x2 | 0x10000 };
  readonly rows: (sql: string) => number;
  constructor(rows: (sql: string) => number = () => 1) {
    this.rows = rows;
  }
  query = async (sql: string): Promise<[unknown, unknown]> => {
    this.queries.push(sql);
    const parts = sql.split(';\n');
    const out = parts.map((p) => {
      if (/^(SAVEPOINT|ROLLBACK|START|COMMIT)/.test(p)) return { affectedRows: 0 };
      this.sent++;
      return { affectedRows: this.rows(p) };
    });
    return [parts.length === 1 ? out[0] : out, undefined];
  };
}

function stmt(n: number, over: Partial<GuardedStatement> = {}): GuardedStatement {
  return {
    sql: `UPDATE t SET v = 1 WHERE id = ${n}`,
    expect: 1,
    what: `undo update (id=${n})`,
    seq: BigInt(n),
    kind: 'update',
    ...over,
  };
}

async function* plan(n: number, extra: PlanItem[] = []): AsyncGenerator<PlanItem> {
  yield { kind: 'tx', txId: 'tx1', commitSeq: 999n, commitTimeUs: 0n, direction: 'undo', rows: n };
  yield* extra;
  for (let i = 1; i <= n; i++) yield { kind: 'stmt', stmt: stmt(i) };
}

const conn = (c: FakeConn) => c as unknown as PlanConnection;

describe('executePlan', () => {
  it('runs everything in one transaction, pipelined, then commits', async () => {
    const c = new FakeConn();
    const r = await executePlan(conn(c), plan(5), { pipeBytes: 70 });
    expect(r).toEqual({ statements: 5, rows: 5, txs: 1 });
    expect(c.queries[0]).toBe('START TRANSACTION');
    expect(c.queries.at(-1)).toBe('COMMIT');
    const body = c.queries.slice(1, -1);
    expect(body.length).toBeGreaterThan(1);
    for (const q of body) expect(q.startsWith('SAVEPOINT tidemark_rewind;\n')).toBe(true);
    expect(body.join(';\n').match(/UPDATE/g)).toHaveLength(5);
  });

  it('sends a small first query, then each query up to twice the last, up to pipeBytes', async () => {
    const c = new FakeConn();
    // ~31 bytes per statement, 30,000 statements: ~0.9 MB of SQL.
    const r = await executePlan(conn(c), plan(30_000), { pipeBytes: 512 << 10 });
    expect(r.statements).toBe(30_000);
    // The statements' SQL per query (what pipeBytes counts: not the savepoint nor the separators).
    const sizes = c.queries.slice(1, -1).map((q) => q.split(';\n').slice(1).join('').length);
    expect(sizes[0]).toBeGreaterThanOrEqual(128 << 10);
    expect(sizes[0]).toBeLessThan((128 << 10) + 40);
    expect(sizes[1]).toBeGreaterThanOrEqual(256 << 10);
    expect(sizes[1]).toBeLessThan((256 << 10) + 40);
    for (const n of sizes.slice(2, -1)) expect(n).toBeGreaterThanOrEqual(512 << 10);
    expect(Math.max(...sizes)).toBeLessThan((512 << 10) + 40);
  });

  it('runs finals last, before COMMIT, and checks them', async () => {
    const c = new FakeConn();
    const fin: PlanItem = { kind: 'final', sql: 'UPDATE pos SET seq = 1', expect: 1, what: 'the new position' };
    await executePlan(conn(c), plan(2, [fin]));
    expect(c.queries.at(-2)).toBe('SAVEPOINT tidemark_rewind;\nUPDATE pos SET seq = 1');
    const bad = new FakeConn((sql) => (sql.startsWith('UPDATE pos') ? 0 : 1));
    await expect(executePlan(conn(bad), plan(2, [fin]))).rejects.toThrow(/the new position: matched 0 row/);
    expect(bad.queries.at(-1)).toBe('ROLLBACK');
  });

  it('a count mismatch rolls back and names the statement', async () => {
    const c = new FakeConn((sql) => (sql.endsWith('id = 3') ? 0 : 1));
    const err = await executePlan(conn(c), plan(5)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuardError);
    expect((err as GuardError).code).toBe('REWIND_GUARD');
    expect((err as GuardError).retriable).toBe(false);
    expect((err as Error).message).toBe(
      'guard failed: undo update (id=3): the row is not in the state the journal says (changed or removed since); rolled back, nothing was changed',
    );
    expect(c.queries.at(-1)).toBe('ROLLBACK');
    expect(c.queries).not.toContain('COMMIT');
  });

  it('a server error is narrowed down to the statement that fails', async () => {
    const c = new FakeConn((sql) => {
      if (sql.endsWith('id = 37')) {
        throw Object.assign(new Error('dup'), { errno: 1062, sqlState: '23000', sqlMessage: "Duplicate entry '37'" });
      }
      return 1;
    });
    const err = await executePlan(conn(c), plan(100)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuardError);
    expect((err as Error).message).toBe(
      "undo update (id=37): the server refused it: Duplicate entry '37'; rolled back, nothing was changed",
    );
    expect(c.queries.filter((q) => q === 'ROLLBACK TO SAVEPOINT tidemark_rewind').length).toBeGreaterThan(0);
    expect(c.queries.length).toBeLessThan(60);
    expect(c.queries.at(-1)).toBe('ROLLBACK');
  });

  it('a lost connection is not replayed: retriable, nothing changed', async () => {
    const c = new FakeConn((sql) => {
      if (sql.endsWith('id = 2')) throw Object.assign(new Error('gone'), { code: 'PROTOCOL_CONNECTION_LOST' });
      return 1;
    });
    const err = await executePlan(conn(c), plan(4)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).retriable).toBe(true);
    // A rewind error carries a rewind code (before issue #12: the applier's APPLY_RETRY).
    expect((err as TidemarkError).code).toBe('REWIND_RETRY');
    expect((err as Error).message).toMatch(/nothing was changed/);
    expect(c.queries).not.toContain('ROLLBACK TO SAVEPOINT tidemark_rewind');
  });

  it("server errors around the transaction carry rewind codes, not the applier's", async () => {
    /** Runs a one-statement plan on a server whose answer to `failing` is a server error. */
    const runFailing = (failing: string, errno: number, msg: string): Promise<unknown> => {
      const c = new FakeConn();
      const query = c.query;
      c.query = async (sql: string) => {
        if (sql === failing) throw Object.assign(new Error(msg), { errno, sqlMessage: msg });
        return query(sql);
      };
      return executePlan(conn(c), plan(1)).catch((e: unknown) => e);
    };
    const ro = await runFailing('START TRANSACTION', 1836, 'Running in read-only mode');
    expect(ro).toMatchObject({ code: 'REWIND_READ_ONLY', retriable: true });
    const err = await runFailing('COMMIT', 1180, 'Got error during COMMIT');
    expect(err).toMatchObject({ code: 'REWIND_FAILED', retriable: false });
    expect((err as Error).message).toMatch(/^COMMIT failed/);
  });

  it('a read-only refusal mid-plan names the statement (the transaction is not lost)', async () => {
    const c = new FakeConn((sql) => {
      if (sql.endsWith('id = 2')) {
        const msg = 'The MariaDB server is running with the --read-only option so it cannot execute this statement';
        throw Object.assign(new Error(msg), { errno: 1290, sqlMessage: msg });
      }
      return 1;
    });
    const err = await executePlan(conn(c), plan(3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuardError);
    expect((err as Error).message).toMatch(/^undo update \(id=2\): the server refused it: .*--read-only/);
  });

  it('a value that cannot be written as SQL is REWIND_VALUE', async () => {
    async function* items(): AsyncGenerator<PlanItem> {
      yield { kind: 'stmt', stmt: stmt(1) };
      throw new ValueError('cannot store NaN in MySQL (no NaN/Infinity in FLOAT/DOUBLE)', {});
    }
    const c = new FakeConn();
    const err = await executePlan(conn(c), items()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REWIND_VALUE', retriable: false });
    expect((err as Error).message).toMatch(/NaN/);
    expect(c.queries.at(-1)).toBe('ROLLBACK');
  });

  it('abort rolls back with code ABORTED', async () => {
    const ac = new AbortController();
    const c = new FakeConn();
    async function* items(): AsyncGenerator<PlanItem> {
      yield { kind: 'stmt', stmt: stmt(1) };
      ac.abort();
      yield { kind: 'stmt', stmt: stmt(2) };
    }
    const err = await executePlan(conn(c), items(), { signal: ac.signal }).catch((e: unknown) => e);
    expect((err as TidemarkError).code).toBe('ABORTED');
    expect(c.queries.at(-1)).toBe('ROLLBACK');
  });

  it('pulls items lazily: memory is bounded by the pipeline, not the plan', async () => {
    const c = new FakeConn();
    let pulled = 0;
    let maxAhead = 0;
    async function* items(): AsyncGenerator<PlanItem> {
      for (let i = 1; i <= 20_000; i++) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - c.sent);
        yield { kind: 'stmt', stmt: stmt(i) };
      }
    }
    const r = await executePlan(conn(c), items(), { pipeBytes: 64 * 1024 });
    expect(r.rows).toBe(20_000);
    expect(maxAhead).toBeLessThan(5000);
  });

  it('onBegin runs inside the transaction before any statement', async () => {
    const c = new FakeConn();
    await executePlan(conn(c), plan(1), { onBegin: async (q) => void (await q.query('SELECT 1 FOR UPDATE')) });
    expect(c.queries.slice(0, 2)).toEqual(['START TRANSACTION', 'SELECT 1 FOR UPDATE']);
  });

  it('refuses a session without FOUND_ROWS', async () => {
    const c = new FakeConn();
    c.config.clientFlags = 0x10000;
    await expect(executePlan(conn(c), plan(1))).rejects.toThrow(/FOUND_ROWS/);
    expect(c.queries).toEqual([]);
  });
});

describe('executePlan: multi-row statements', () => {
  const e: RowsEntry = {
    kind: 'rows',
    source: 'src',
    seq: 10n,
    txId: 'tx1',
    schema: 's',
    table: 't',
    op: 'delete',
    columns: [
      { name: 'id', type: 'int' },
      { name: 'v', type: 'varchar' },
    ],
    pk: ['id'],
    rows: [1n, 2n, 3n, 4n, 5n].map((id) => ({ before: [id, 'x'], after: null })),
  };
  async function* rows(): AsyncGenerator<PlanItem> {
    for (const stmt of guardedStatements(e, 'redo', { flavor: 'mariadb', txId: 'tx1' })) yield { kind: 'stmt', stmt };
  }
  const isBatch = (sql: string) => sql.startsWith('DELETE `s`.`t` FROM (WITH');
  const dup = () => Object.assign(new Error('dup'), { errno: 1062, sqlState: '23000', sqlMessage: 'Duplicate entry' });

  it('runs runs of rows as one statement', async () => {
    const c = new FakeConn((sql) => (isBatch(sql) ? 5 : 1));
    expect(await executePlan(conn(c), rows())).toEqual({ statements: 1, rows: 5, txs: 0 });
    expect(c.sent).toBe(1);
    expect(c.queries.filter((q) => q.includes('ROLLBACK'))).toEqual([]);
  });

  it('a short count: back to the savepoint, the per-row statements name the exact row', async () => {
    const c = new FakeConn((sql) => (isBatch(sql) ? 4 : sql.includes('`id` = 3 ') ? 0 : 1));
    const err = await executePlan(conn(c), rows()).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(GuardError);
    expect((err as Error).message).toBe(
      'guard failed: redo delete of `s`.`t` (id=3) at seq 12 of tx tx1: the row is not in the state the journal says (changed or removed since); rolled back, nothing was changed',
    );
    expect(c.queries).toContain('ROLLBACK TO SAVEPOINT tidemark_rewind');
    expect(c.queries.at(-1)).toBe('ROLLBACK');
  });

  it('a short count with every row passing alone is not an error', async () => {
    const c = new FakeConn((sql) => (isBatch(sql) ? 4 : 1));
    const r = await executePlan(conn(c), rows());
    expect(r.rows).toBe(5);
    expect(c.queries.at(-1)).toBe('COMMIT');
    expect(c.sent).toBe(6);
  });

  it('a refused multi-row statement is replaced by its rows: the refusal names the row, or goes away', async () => {
    const bad = new FakeConn((sql) => {
      if (isBatch(sql) || sql.includes('`id` = 4 ')) throw dup();
      return 1;
    });
    const err = await executePlan(conn(bad), rows()).catch((x: unknown) => x);
    expect((err as Error).message).toBe(
      'redo delete of `s`.`t` (id=4) at seq 13 of tx tx1: the server refused it: Duplicate entry; rolled back, nothing was changed',
    );
    const ok = new FakeConn((sql) => {
      if (isBatch(sql)) throw dup();
      return 1;
    });
    expect((await executePlan(conn(ok), rows())).rows).toBe(5);
    expect(ok.queries.at(-1)).toBe('COMMIT');
  });

  it('a multi-row statement among others: the whole query is replayed with its rows in its place', async () => {
    async function* mixed(): AsyncGenerator<PlanItem> {
      yield { kind: 'stmt', stmt: stmt(100) };
      yield* rows();
      yield { kind: 'stmt', stmt: stmt(200) };
    }
    const c = new FakeConn((sql) => (isBatch(sql) ? 3 : 1));
    expect((await executePlan(conn(c), mixed())).rows).toBe(7);
    const replay = c.queries.find((_q, i) => i > 0 && c.queries[i - 1] === 'ROLLBACK TO SAVEPOINT tidemark_rewind');
    expect(replay?.split(';\n').map((q) => q.replace(/ AND .*/, ''))).toEqual([
      'SAVEPOINT tidemark_rewind',
      'UPDATE t SET v = 1 WHERE id = 100',
      ...[1, 2, 3, 4, 5].map((id) => `DELETE FROM \`s\`.\`t\` WHERE \`id\` = ${id}`),
      'UPDATE t SET v = 1 WHERE id = 200',
    ]);
  });

  it('batch: false runs every row alone', async () => {
    const c = new FakeConn();
    expect(await executePlan(conn(c), rows(), { batch: false })).toEqual({ statements: 5, rows: 5, txs: 0 });
  });
});
