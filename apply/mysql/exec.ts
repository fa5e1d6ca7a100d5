/**
 * Runs one StatementBatch and checks that it touched exactly the rows it should. A mismatch means the replica no
 * longer holds what the journal says (a row is missing, or was changed behind tidemark's back): the batch's
 * transaction must be rolled back and a DivergenceError names the table, the key and the seq.
 */
import { TidemarkError } from '../../record/errors.ts';
import type { StatementBatch } from './batcher.ts';
import { DivergenceError, wrapDbError } from './errors.ts';
import { buildExists, describeKey, type Flavor, qualified, ROLLBACK_TO_SAVEPOINT, SAVEPOINT } from './sql.ts';

export type QueryKind =
  | 'begin'
  | 'rows'
  | 'diagnose'
  | 'commit'
  | 'rollback'
  | 'meta'
  | 'ddl-pending'
  | 'use'
  | 'ddl'
  | 'ddl-done';

/** Sends one query (possibly several statements) and returns mysql2's result. */
export type QueryFn = (kind: QueryKind, sql: string) => Promise<unknown>;

interface Header {
  affectedRows: number;
}

function isHeader(x: unknown): x is Header {
  return typeof x === 'object' && x !== null && typeof (x as Header).affectedRows === 'number';
}

/** mysql2 returns one result for one statement and an array for several. */
function results(res: unknown, statements: number): unknown[] {
  if (statements === 1) return [res];
  if (!Array.isArray(res) || res.length !== statements) {
    throw new TidemarkError(`expected ${statements} results, got ${Array.isArray(res) ? res.length : typeof res}`, {
      code: 'APPLY_FAILED',
    });
  }
  return res;
}

function affected(x: unknown): number {
  if (!isHeader(x)) {
    throw new TidemarkError('statement returned a result set where a row count was expected', { code: 'APPLY_FAILED' });
  }
  return x.affectedRows;
}

function keyText(b: StatementBatch, i: number): string {
  const key = b.keys[i] ?? [];
  return describeKey(
    key,
    b.keyCols,
    b.keyCols.map((_, j) => j),
  );
}

function diverged(b: StatementBatch, i: number, detail: string): DivergenceError {
  const seq = b.seqs[i] ?? b.seqs[0] ?? 0n;
  const key = keyText(b, i);
  const what = b.fullRow ? 'row' : 'key';
  return new DivergenceError(
    `replica diverged: ${b.op} of ${qualified(b.schema, b.table)} ${what} (${key}) at seq ${seq}: ${detail}`,
    { schema: b.schema, table: b.table, op: b.op, key, seq },
  );
}

export async function executeBatch(q: QueryFn, b: StatementBatch, flavor: Flavor): Promise<void> {
  const ctx = { schema: b.schema, table: b.table, op: b.op, firstSeq: b.seqs[0], rows: b.rows };
  const what = `${b.op} of ${b.rows} row(s) in ${qualified(b.schema, b.table)} from seq ${b.seqs[0]}`;
  let res: unknown;
  try {
    res = await q('rows', b.kind === 'delete-in' ? `${SAVEPOINT};\n${b.sql}` : b.sql);
  } catch (err) {
    throw wrapDbError(err, what, ctx);
  }
  if (b.kind === 'insert') {
    const n = affected(results(res, 1)[0]);
    if (n !== b.rows) throw diverged(b, 0, `inserted ${n} of ${b.rows} rows`);
    return;
  }
  if (b.kind === 'per-row') {
    const all = results(res, b.rows);
    for (let i = 0; i < all.length; i++) {
      const n = affected(all[i]);
      if (n !== 1) throw diverged(b, i, n === 0 ? 'no such row on the replica' : `matched ${n} rows`);
    }
    return;
  }
  const n = affected(results(res, 2)[1]);
  if (n === b.rows) return;
  // Some keys were missing: undo this statement and ask which.
  let missing = -1;
  let count = 0;
  try {
    await q('diagnose', ROLLBACK_TO_SAVEPOINT);
    const sql = b.keys.map((k) => buildExists(b.schema, b.table, b.keyCols, k, b.fullRow, flavor)).join(';\n');
    const found = results(await q('diagnose', sql), b.keys.length);
    for (let i = 0; i < found.length; i++) {
      const rows = found[i];
      if (Array.isArray(rows) && rows.length === 0) {
        if (missing < 0) missing = i;
        count++;
      }
    }
  } catch (err) {
    throw wrapDbError(err, `${what}: deleted ${n} of ${b.rows} rows; finding the missing keys failed`, ctx);
  }
  if (missing < 0) throw diverged(b, 0, `deleted ${n} of ${b.rows} rows`);
  throw diverged(b, missing, `no such row on the replica (${count} of ${b.rows} keys in the statement missing)`);
}
