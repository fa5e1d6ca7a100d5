/**
 * Runs a plan of guarded statements in ONE replica transaction and checks every row count before COMMIT.
 *
 * Statements are pipelined: about 2 MiB of SQL goes to the server as one multi-statement query (one round trip),
 * and the next query is built while the server works on the current one. Each query starts with a SAVEPOINT,
 * so when the server refuses a statement (a duplicate key on an inverse INSERT, say) the query is rolled back to
 * its start and replayed in smaller pieces until the one statement that fails is known, then everything is
 * rolled back and a GuardError names it. A row-count mismatch is known at once from the results.
 *
 * Items are pulled one at a time from the async iterable: at most two queries' worth of statements are held, so
 * a plan of millions of rows runs in bounded memory. 'final' items (the position-table update, say) run last,
 * just before COMMIT, with their counts checked like the others.
 *
 * Runs of per-row UPDATEs/DELETEs are merged into multi-row statements first (batch.ts). A multi-row statement
 * that matches fewer rows than it holds, or that the server refuses, is not an error yet: its query is rolled
 * back to the savepoint and replayed with the per-row statements in its place, so the GuardError names the
 * exact row (or, if every row passes alone, the plan goes on).
 */
import type mysql from 'mysql2/promise';
import { classifyMysqlError, isOutcomeUnknown, serverFields, stripSql } from '../mysql/errors.ts';
import { rewindDbError, rewindValueError } from './errors.ts';
import { TidemarkError } from '../core/errors.ts';
import { type BatchOptions, batchItems, MergedStatement } from './batch.ts';
import { GuardError, type GuardedStatement, type PlanItem } from './guard.ts';

export type { PlanItem } from './guard.ts';

export interface PlanCounts {
  /** Statements run (guarded statements and finals). */
  statements: number;
  /** Rows the guarded statements matched (finals not counted). */
  rows: number;
  /** 'tx' items seen. */
  txs: number;
}

/** What executePlan needs of a connection: a mysql2 promise connection opened by openSession(…, {apply: true,
 *  multipleStatements: true}) (FOUND_ROWS, multi-statements, the apply session's sql_mode and time zone). */
export type PlanConnection = Pick<mysql.Connection, 'query'>;

export interface ExecuteOptions {
  /** Abort: the transaction is rolled back and a TidemarkError code ABORTED is thrown. */
  readonly signal?: AbortSignal;
  /** Counts so far, at most about once a second. */
  readonly onProgress?: (p: PlanCounts) => void;
  /** Runs right after START TRANSACTION, before any statement (e.g. lock and check the position row). */
  readonly onBegin?: (conn: PlanConnection) => Promise<void>;
  /**
   * SQL per round trip; default 2 MiB (measured for a 100k-row undo, issue #15: 128 and 512 KiB gave no less
   * Node CPU — the garbage collector copies a row's images either way — and more waiting on a busy machine).
   */
  readonly pipeBytes?: number;
  /** Limits of multi-row statements, or false to run every row by its own statement. */
  readonly batch?: BatchOptions | false;
}

const PIPE_BYTES = 2 << 20;
/**
 * The first query's SQL: small, so the server starts working while the next query is built (a first 2 MiB query
 * kept the server idle for the ~0.1 s it took to build); each next query may be twice the last, up to pipeBytes.
 */
const FIRST_PIPE_BYTES = 128 << 10;
const PIPE_STATEMENTS = 20_000;
/** Pieces a failed query is split into per replay level. */
const REPLAY_SPLIT = 16;
const SAVEPOINT = 'SAVEPOINT tidemark_rewind';
const ROLLBACK_TO = 'ROLLBACK TO SAVEPOINT tidemark_rewind';
const NOTHING_CHANGED = 'rolled back, nothing was changed';
const CLIENT_FOUND_ROWS = 0x2;
const CLIENT_MULTI_STATEMENTS = 0x10000;

interface Pending {
  readonly sql: string;
  readonly expect: number;
  readonly what: string;
  readonly seq: bigint | null;
  readonly kind: GuardedStatement['kind'] | 'final';
  /** A multi-row statement: its per-row statements, run instead when it fails (built only then). */
  readonly rows?: () => readonly GuardedStatement[];
}

function pending(s: GuardedStatement): Pending {
  const p = { sql: s.sql, expect: s.expect, what: s.what, seq: s.seq, kind: s.kind };
  // Not s.rows itself: a multi-row statement makes its rows again when asked, and most are never needed.
  if (s instanceof MergedStatement) return { ...p, rows: () => s.rows };
  return s.rows ? { ...p, rows: () => s.rows! } : p;
}

const fallback = (p: Pending): Pending[] => (p.rows?.() ?? []).map(pending);

function mismatch(p: Pending, n: number): GuardError {
  let detail: string;
  if (p.kind === 'insert') detail = `inserted ${n} of ${p.expect} rows`;
  else if (p.kind !== 'final' && n === 0) {
    detail = 'the row is not in the state the journal says (changed or removed since)';
  } else detail = `matched ${n} row(s), expected ${p.expect}`;
  return new GuardError(`guard failed: ${p.what}: ${detail}; ${NOTHING_CHANGED}`, {
    seq: p.seq,
    expected: p.expect,
    matched: n,
  });
}

function refused(p: Pending, err: unknown): GuardError {
  const f = serverFields(err);
  const msg = f.sqlMessage ?? (err instanceof Error ? err.message : String(err));
  return new GuardError(
    `${p.what}: the server refused it: ${msg}; ${NOTHING_CHANGED}`,
    { seq: p.seq, errno: f.errno, sqlState: f.sqlState },
    err,
  );
}

function affectedRows(x: unknown, p: Pending): number {
  const n = (x as { affectedRows?: unknown } | null)?.affectedRows;
  if (typeof n !== 'number') {
    throw new GuardError(`${p.what}: returned a result set where a row count was expected; ${NOTHING_CHANGED}`, {
      seq: p.seq,
    });
  }
  return n;
}

/** Did the error leave the transaction (or connection) unusable, so that replaying pieces makes no sense? */
function transactionLost(err: unknown): boolean {
  const c = classifyMysqlError(err);
  // A read-only refusal is an answer: the transaction is intact, the statement is named (refused()).
  return (c.retriable && c.cls !== 'read-only') || (c.errno === undefined && c.outcomeUnknown);
}

async function rollbackTo(conn: PlanConnection, p: Pending): Promise<void> {
  try {
    await conn.query(ROLLBACK_TO);
  } catch (err) {
    throw lost(stripSql(err), p);
  }
}

/**
 * Runs `chunk` as one query behind a savepoint and checks its counts. A server error: back to the savepoint and
 * replay in pieces, so the error names the statement that fails. A multi-row statement that fails (count or
 * error): back to the savepoint and replay with its per-row statements in its place. Returns whether that
 * happened (then a replay that passes is a success).
 */
async function runChunk(conn: PlanConnection, chunk: readonly Pending[]): Promise<boolean> {
  let res: unknown;
  try {
    [res] = await conn.query(SAVEPOINT + ';\n' + chunk.map((p) => p.sql).join(';\n'));
  } catch (err) {
    stripSql(err);
    const first = chunk[0]!;
    if (transactionLost(err)) throw lost(err, first);
    if (chunk.length === 1 && !first.rows) throw refused(first, err);
    await rollbackTo(conn, first);
    if (chunk.length === 1) {
      await runChunk(conn, fallback(first));
      return true;
    }
    const size = Math.ceil(chunk.length / REPLAY_SPLIT);
    let replaced = false;
    for (let i = 0; i < chunk.length; i += size) {
      if (await runChunk(conn, chunk.slice(i, i + size))) replaced = true;
    }
    if (replaced) return true;
    // Every piece went through on its own: name the range and the original error.
    throw refused({ ...first, what: `${chunk.length} statements from ${first.what}` }, err);
  }
  const all = Array.isArray(res) ? res : [res];
  if (all.length !== chunk.length + 1) {
    throw new TidemarkError(`expected ${chunk.length + 1} results from the server, got ${all.length}`, {
      code: 'REWIND_FAILED',
    });
  }
  for (let i = 0; i < chunk.length; i++) {
    const p = chunk[i]!;
    const n = affectedRows(all[i + 1], p);
    if (n === p.expect) continue;
    if (!p.rows) throw mismatch(p, n);
    await rollbackTo(conn, p);
    await runChunk(conn, [...chunk.slice(0, i), ...fallback(p), ...chunk.slice(i + 1)]);
    return true;
  }
  return false;
}

function lost(err: unknown, p: Pending): TidemarkError {
  return rewindDbError(err, `rewind transaction failed at or after ${p.what} (${NOTHING_CHANGED})`, {
    seq: p.seq ?? undefined,
  });
}

function aborted(): TidemarkError {
  return new TidemarkError(`aborted: ${NOTHING_CHANGED}`, { code: 'ABORTED', retriable: false });
}

function checkSession(conn: PlanConnection): void {
  const flags = (conn as { config?: { clientFlags?: unknown } }).config?.clientFlags;
  if (typeof flags !== 'number') return;
  if ((flags & CLIENT_FOUND_ROWS) === 0 || (flags & CLIENT_MULTI_STATEMENTS) === 0) {
    throw new TidemarkError('executePlan needs a session with FOUND_ROWS and multiple statements (openSession)', {
      code: 'REWIND_SESSION',
    });
  }
}

/**
 * Runs the plan in one transaction on `conn`: START TRANSACTION, the statements (pipelined, every count
 * checked), the finals, COMMIT. Any mismatch or error rolls back and throws (GuardError, code REWIND_GUARD, for
 * a guard or a refused statement; code ABORTED on abort); nothing is changed then. A COMMIT whose outcome is
 * unknown (the connection failed during it) throws code REWIND_COMMIT_UNKNOWN.
 */
export async function executePlan(
  conn: PlanConnection,
  items: AsyncIterable<PlanItem>,
  opts: ExecuteOptions = {},
): Promise<PlanCounts> {
  checkSession(conn);
  const counts: PlanCounts = { statements: 0, rows: 0, txs: 0 };
  const pipeBytes = opts.pipeBytes ?? PIPE_BYTES;
  let limit = Math.min(pipeBytes, FIRST_PIPE_BYTES);
  let lastReport = Date.now();
  let chunk: Pending[] = [];
  let bytes = 0;
  // The query on the wire: resolves to its error, or null (never rejects, so nothing goes unhandled).
  let inflight: Promise<unknown> | null = null;

  const settle = async (): Promise<void> => {
    const p = inflight;
    inflight = null;
    const err = p ? await p : null;
    if (err) throw err;
  };
  const send = async (): Promise<void> => {
    await settle();
    if (chunk.length === 0) return;
    const c = chunk;
    chunk = [];
    bytes = 0;
    inflight = runChunk(conn, c).then(
      () => {
        counts.statements += c.length;
        for (const p of c) if (p.kind !== 'final') counts.rows += p.expect;
        const now = Date.now();
        if (opts.onProgress && now - lastReport >= 1000) {
          lastReport = now;
          opts.onProgress({ ...counts });
        }
        return null;
      },
      (err: unknown) => err ?? new Error('query failed'),
    );
  };

  try {
    await conn.query('START TRANSACTION');
  } catch (err) {
    throw rewindDbError(stripSql(err), 'START TRANSACTION');
  }
  const finals: Pending[] = [];
  try {
    await opts.onBegin?.(conn);
    for await (const item of opts.batch === false ? items : batchItems(items, opts.batch)) {
      if (opts.signal?.aborted) throw aborted();
      if (item.kind === 'tx') counts.txs++;
      else if (item.kind === 'final') {
        finals.push({ sql: item.sql, expect: item.expect, what: item.what, seq: null, kind: 'final' });
      } else {
        const s = item.stmt;
        const p = pending(s);
        chunk.push(p);
        bytes += p.sql.length;
        if (bytes >= limit || chunk.length >= PIPE_STATEMENTS) {
          await send();
          limit = Math.min(pipeBytes, limit * 2);
        }
      }
    }
    await send();
    chunk = finals;
    await send();
    await settle();
    if (opts.signal?.aborted) throw aborted();
  } catch (err) {
    await inflight;
    inflight = null;
    try {
      await conn.query('ROLLBACK');
    } catch {
      // The connection is gone: the server rolls the transaction back itself.
    }
    throw err instanceof TidemarkError
      ? rewindValueError(err)
      : rewindDbError(stripSql(err), `rewind (${NOTHING_CHANGED})`);
  }
  try {
    await conn.query('COMMIT');
  } catch (err) {
    stripSql(err);
    if (isOutcomeUnknown(err)) {
      throw new TidemarkError('the connection failed during COMMIT: whether the changes were committed is unknown', {
        code: 'REWIND_COMMIT_UNKNOWN',
        retriable: false,
        cause: err,
      });
    }
    throw rewindDbError(err, `COMMIT failed (${NOTHING_CHANGED})`);
  }
  return counts;
}
