/**
 * Runs a plan of guarded statements in ONE transaction on a PostgreSQL server and checks every row count before
 * COMMIT (the PostgreSQL counterpart of rollback/execute.ts).
 *
 *   BEGIN; SET LOCAL session_replication_role = replica;   (as apply: ordinary triggers and FK actions stay off —
 *                                                           the journal holds what they did on the source)
 *   SAVEPOINT tidemark_rewind; <up to ~1 MiB of statements as one simple query> …
 *   <finals>; COMMIT
 *
 * A simple query of several statements returns one result per statement, each with its row count (for an UPDATE:
 * the rows it matched). When the server refuses a statement the query is rolled back to its savepoint and its
 * statements are run one by one until the refused one is known; then everything is rolled back and a GuardError
 * names it. Items are pulled one at a time: memory stays bounded by one query's worth of statements.
 */
import type pg from 'pg';
import { TidemarkError } from '../core/errors.ts';
import { isOutcomeUnknownPg, rewindPgError } from './pg-errors.ts';
import { GuardError, type PlanItem } from './guard.ts';
import type { PlanCounts } from './execute.ts';

export interface PgExecuteOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: PlanCounts) => void;
  /** SQL per round trip; default 1 MiB. */
  readonly pipeBytes?: number;
}

const PIPE_BYTES = 1 << 20;
const PIPE_STATEMENTS = 2000;
const NOTHING_CHANGED = 'rolled back, nothing was changed';

interface Pending {
  readonly sql: string;
  readonly expect: number;
  readonly what: string;
  readonly seq: bigint | null;
  readonly kind: string;
}

function mismatch(p: Pending, n: number): GuardError {
  let detail: string;
  if (p.kind === 'insert') detail = `inserted ${n} of ${p.expect} rows`;
  else if (p.kind !== 'final' && n === 0)
    detail = 'the row is not in the state the journal says (changed or removed since)';
  else detail = `matched ${n} row(s), expected ${p.expect}`;
  return new GuardError(`guard failed: ${p.what}: ${detail}; ${NOTHING_CHANGED}`, {
    seq: p.seq,
    expected: p.expect,
    matched: n,
  });
}

function refused(p: Pending, err: unknown): GuardError {
  const e = err as { message?: unknown; code?: unknown };
  const state = typeof e.code === 'string' ? ` (SQLSTATE ${e.code})` : '';
  return new GuardError(
    `${p.what}: the server refused it: ${String(e.message ?? err)}${state}; ${NOTHING_CHANGED}`,
    { seq: p.seq, ...(typeof e.code === 'string' ? { sqlState: e.code } : {}) },
    err,
  );
}

function counts(res: pg.QueryResult | pg.QueryResult[], n: number): (number | null)[] {
  const all = Array.isArray(res) ? res : [res];
  if (all.length !== n) {
    throw new TidemarkError(`expected ${n} results from the server, got ${all.length}`, { code: 'REWIND_FAILED' });
  }
  return all.map((r) => r.rowCount);
}

/** Runs `chunk` behind a savepoint and checks every count; a refusal is narrowed down to its statement. */
async function runChunk(client: pg.Client, chunk: readonly Pending[]): Promise<void> {
  let res: pg.QueryResult | pg.QueryResult[];
  try {
    res = await client.query(`SAVEPOINT tidemark_rewind;\n${chunk.map((p) => p.sql).join(';\n')}`);
  } catch (err) {
    const first = chunk[0]!;
    if (rewindPgError(err, '').retriable || (err as { code?: unknown }).code === undefined) {
      throw rewindPgError(err, `rewind transaction failed at or after ${first.what} (${NOTHING_CHANGED})`);
    }
    if (chunk.length === 1) throw refused(first, err);
    await client.query('ROLLBACK TO SAVEPOINT tidemark_rewind');
    for (const p of chunk) await runChunk(client, [p]);
    throw refused({ ...first, what: `${chunk.length} statements from ${first.what}` }, err);
  }
  const n = counts(res, chunk.length + 1);
  for (let i = 0; i < chunk.length; i++) {
    const p = chunk[i]!;
    if (n[i + 1] !== p.expect) throw mismatch(p, n[i + 1] ?? 0);
  }
}

/**
 * Runs the plan in one transaction on `client` (a session of postgres/session.ts); any mismatch or error rolls
 * back and throws (GuardError for a guard or a refused statement, ABORTED on abort). A COMMIT whose outcome is
 * unknown throws REWIND_COMMIT_UNKNOWN.
 */
export async function executePgPlan(
  client: pg.Client,
  items: AsyncIterable<PlanItem>,
  opts: PgExecuteOptions = {},
): Promise<PlanCounts> {
  const c: PlanCounts = { statements: 0, rows: 0, txs: 0 };
  const pipeBytes = opts.pipeBytes ?? PIPE_BYTES;
  let lastReport = Date.now();
  let chunk: Pending[] = [];
  let bytes = 0;
  const send = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const todo = chunk;
    chunk = [];
    bytes = 0;
    await runChunk(client, todo);
    c.statements += todo.length;
    for (const p of todo) if (p.kind !== 'final') c.rows += p.expect;
    if (opts.onProgress && Date.now() - lastReport >= 1000) {
      lastReport = Date.now();
      opts.onProgress({ ...c });
    }
  };
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw rewindPgError(err, 'starting the rewind transaction');
  }
  const finals: Pending[] = [];
  try {
    for await (const item of items) {
      if (opts.signal?.aborted) throw new TidemarkError(`aborted: ${NOTHING_CHANGED}`, { code: 'ABORTED' });
      if (item.kind === 'tx') c.txs++;
      else if (item.kind === 'final') finals.push({ ...item, seq: null, kind: 'final' });
      else {
        const s = item.stmt;
        chunk.push({ sql: s.sql, expect: s.expect, what: s.what, seq: s.seq, kind: s.kind });
        bytes += s.sql.length;
        if (bytes >= pipeBytes || chunk.length >= PIPE_STATEMENTS) await send();
      }
    }
    await send();
    chunk = finals;
    await send();
    if (opts.signal?.aborted) throw new TidemarkError(`aborted: ${NOTHING_CHANGED}`, { code: 'ABORTED' });
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw rewindPgError(err, `rewind (${NOTHING_CHANGED})`);
  }
  try {
    await client.query('COMMIT');
  } catch (err) {
    if (isOutcomeUnknownPg(err)) {
      throw new TidemarkError('the connection failed during COMMIT: whether the changes were committed is unknown', {
        code: 'REWIND_COMMIT_UNKNOWN',
        cause: err,
      });
    }
    throw rewindPgError(err, `COMMIT failed (${NOTHING_CHANGED})`);
  }
  return c;
}
