/**
 * Runs StatementBatches and checks that each touched exactly the rows it should. A mismatch means the replica no
 * longer holds what the journal says (a row is missing, or was changed behind tidemark's back): the batch's
 * transaction must be rolled back and a DivergenceError names the table, the key and the seq.
 *
 * Pipelining: several batches go to the server as ONE multi-statement query (one round trip instead of one per
 * batch), and each statement's row count is checked from the result array afterwards. This is safe because the
 * checks run before the replica transaction commits (COMMIT is never part of a pipelined query). Every IN-list
 * delete and joined update gets its own savepoint, so on a mismatch ROLLBACK TO that savepoint restores exactly
 * the state the statement ran against (undoing it and everything after it in the pipeline), and the missing keys
 * can be named.
 *
 * A LOAD DATA batch (load-data.ts) is always the last statement of its query: its rows are served as the query's
 * local file, and on a mismatch — fewer rows than sent (a duplicate key: LOAD DATA LOCAL skips it) or any warning
 * (strict mode does not stop LOAD DATA LOCAL: a value too long would be cut) — it is rolled back to its savepoint
 * and the same rows run as the INSERT, whose outcome is checked as an insert batch's: an error is the INSERT's
 * own (1062 → APPLY_DIVERGED naming the key), a success (e.g. notes only) goes on with nothing else undone.
 */
import type mysql from 'mysql2/promise';
import { Readable } from 'node:stream';
import { TidemarkError } from '../../core/errors.ts';
import type { StatementBatch } from './batcher.ts';
import { DivergenceError, wrapDbError } from './errors.ts';
import { LOAD_FILE } from './load-data.ts';
import { buildExists, describeKey, type Flavor, qualified } from '../../mysql/sql.ts';

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

/** Serves the local file a LOAD DATA LOCAL statement of the query asks for (mysql2's infileStreamFactory). */
export type InfileFactory = (path: string) => Readable;

/**
 * Sends one query (possibly several statements) and returns mysql2's result. `infile` is given with a query that
 * holds a LOAD DATA LOCAL batch (only then): pass it as the query's infileStreamFactory.
 */
export type QueryFn = (kind: QueryKind, sql: string, infile?: InfileFactory) => Promise<unknown>;

/** Test-only fault injection: runs around every query an applier sends (e.g. to kill its connection). */
export interface ApplierFaults {
  beforeQuery?(q: { kind: QueryKind; n: number }): void | Promise<void>;
  afterQuery?(q: { kind: QueryKind; n: number }): void | Promise<void>;
}

/** One query of an apply session, with the test hooks around it; `n` numbers the session's queries. */
export async function sendQuery(
  conn: mysql.Connection,
  kind: QueryKind,
  n: number,
  sql: string,
  faults: ApplierFaults | undefined,
  infile?: InfileFactory,
): Promise<unknown> {
  if (faults?.beforeQuery) await faults.beforeQuery({ kind, n });
  const [res] = await (infile ? conn.query({ sql, infileStreamFactory: infile }) : conn.query(sql));
  if (faults?.afterQuery) await faults.afterQuery({ kind, n });
  return res;
}

interface Header {
  affectedRows: number;
  warningStatus?: number;
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

const savepoint = (i: number) => `SAVEPOINT tidemark_stmt_${i}`;
const rollbackTo = (i: number) => `ROLLBACK TO SAVEPOINT tidemark_stmt_${i}`;

/** How many statements (and so results) a batch puts into a query, SET foreign_key_checks around it excluded. */
function statementCount(b: StatementBatch): number {
  if (b.kind === 'insert' || b.kind === 'history') return 1;
  if (b.kind === 'per-row') return b.rows;
  return 2; // savepoint + DELETE … IN / joined UPDATE / LOAD DATA
}

/**
 * Statements behind a savepoint: those that match many keys at once (a short count is diagnosed key by key) and
 * LOAD DATA (a mismatch re-runs its rows as the INSERT).
 */
const keyed = (b: StatementBatch): boolean => b.kind === 'delete-in' || b.kind === 'update-join' || b.kind === 'load';

/** Chunks of a load's file: each becomes one protocol packet (mysql2), well below any max_allowed_packet. */
const INFILE_CHUNK = 64 << 10;

/** The local file of the query's LOAD DATA batch (the last one), served under load-data.ts's name only. */
function infileOf(batches: readonly StatementBatch[]): InfileFactory | undefined {
  const load = batches.findIndex((b) => b.kind === 'load');
  if (load < 0) return undefined;
  const data = batches[load]!.data;
  if (load !== batches.length - 1 || !data) {
    throw new TidemarkError('a LOAD DATA batch must be the last of its query and carry its rows', {
      code: 'APPLY_FAILED',
    });
  }
  return (path) => {
    if (path !== LOAD_FILE) {
      return new Readable({
        read() {
          this.destroy(new Error(`the server asked for local file ${JSON.stringify(path)}: only the rows are served`));
        },
      });
    }
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < data.length; at += INFILE_CHUNK) chunks.push(data.subarray(at, at + INFILE_CHUNK));
    return Readable.from(chunks, { objectMode: false });
  };
}

/** A batch with fkChecks runs between `SET foreign_key_checks = 1` and `= 0` (two more results). */
const FK_ON = 'SET SESSION foreign_key_checks = 1';
const FK_OFF = 'SET SESSION foreign_key_checks = 0';
const fkExtra = (b: StatementBatch): number => (b.fkChecks ? 2 : 0);

function describeBatch(b: StatementBatch): string {
  return `${b.op} of ${b.rows} row(s) in ${qualified(b.schema, b.table)} from seq ${b.seqs[0]}`;
}

/**
 * Sends `prefix` statements (e.g. START TRANSACTION) and every batch as one query, then checks each batch.
 * Throws the DivergenceError of the first batch that did not match.
 */
export async function executePipeline(
  q: QueryFn,
  batches: readonly StatementBatch[],
  flavor: Flavor,
  prefix: readonly string[] = [],
): Promise<void> {
  if (batches.length === 0 && prefix.length === 0) return;
  const parts: string[] = [...prefix];
  let total = prefix.length;
  batches.forEach((b, i) => {
    const sql = keyed(b) ? `${savepoint(i)};\n${b.sql}` : b.sql;
    parts.push(b.fkChecks ? `${FK_ON};\n${sql};\n${FK_OFF}` : sql);
    total += statementCount(b) + fkExtra(b);
  });
  let res: unknown;
  try {
    const infile = infileOf(batches);
    res = await (infile ? q('rows', parts.join(';\n'), infile) : q('rows', parts.join(';\n')));
  } catch (err) {
    const first = batches[0];
    const last = batches[batches.length - 1];
    const what =
      batches.length <= 1
        ? first
          ? describeBatch(first)
          : prefix.join('; ')
        : `${batches.length} statements from seq ${first?.seqs[0]} to seq ${last?.seqs[last.seqs.length - 1]} (first: ${describeBatch(first!)})`;
    throw wrapDbError(err, what, first ? { schema: first.schema, table: first.table, firstSeq: first.seqs[0] } : {});
  }
  const all = results(res, total);
  let at = prefix.length;
  for (let i = 0; i < batches.length; i++) {
    const b = batches[i]!;
    const n = statementCount(b);
    const skip = fkExtra(b) / 2;
    await checkBatch(q, b, all.slice(at + skip, at + skip + n), i, flavor);
    at += n + fkExtra(b);
  }
}

async function checkBatch(q: QueryFn, b: StatementBatch, res: unknown[], index: number, flavor: Flavor) {
  // Built only on a mismatch: a batch that matched (nearly all of them) needs no text.
  const ctx = () => ({ schema: b.schema, table: b.table, op: b.op, firstSeq: b.seqs[0], rows: b.rows });
  if (b.kind === 'load') {
    const h = res[1];
    if (affected(h) === b.rows && (h as Header).warningStatus === 0) return;
    await reinsert(q, b, index, ctx());
    return;
  }
  if (b.kind === 'insert' || b.kind === 'history') {
    const n = affected(res[0]);
    const did = b.kind === 'insert' ? 'inserted' : 'DELETE HISTORY removed';
    if (n !== b.rows) throw diverged(b, 0, `${did} ${n} of ${b.rows} rows`);
    return;
  }
  if (b.kind === 'per-row') {
    for (let i = 0; i < res.length; i++) {
      const n = affected(res[i]);
      if (n !== 1) throw diverged(b, i, n === 0 ? 'no such row on the replica' : `matched ${n} rows`);
    }
    return;
  }
  const n = affected(res[1]);
  if (n === b.rows) return;
  const did = b.kind === 'delete-in' ? 'deleted' : 'matched';
  // Some keys were missing: undo this statement and ask which.
  let missing = -1;
  let count = 0;
  try {
    await q('diagnose', rollbackTo(index));
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
    throw wrapDbError(
      err,
      `${describeBatch(b)}: ${did} ${n} of ${b.rows} rows; finding the missing keys failed`,
      ctx(),
    );
  }
  if (missing < 0) throw diverged(b, 0, `${did} ${n} of ${b.rows} rows`);
  throw diverged(b, missing, `no such row on the replica (${count} of ${b.rows} keys in the statement missing)`);
}

/** A LOAD DATA that did not match: rolled back to its savepoint, its rows run as the INSERT and checked as one. */
async function reinsert(
  q: QueryFn,
  b: StatementBatch,
  index: number,
  ctx: Record<string, string | number | bigint | undefined>,
) {
  let n: number;
  try {
    await q('diagnose', rollbackTo(index));
    n = affected(await q('rows', b.insertSql!()));
  } catch (err) {
    throw wrapDbError(err, describeBatch(b), ctx);
  }
  if (n !== b.rows) throw diverged(b, 0, `inserted ${n} of ${b.rows} rows`);
}

/** Does the server take LOAD DATA LOCAL (local_infile)? */
export async function localInfileOn(conn: mysql.Connection): Promise<boolean> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.local_infile AS li');
  return Number(rows[0]?.['li']) === 1;
}
