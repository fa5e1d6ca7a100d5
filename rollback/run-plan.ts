/**
 * The common end of rewind, forward and undo: a stream of plan items either runs on the server (one
 * transaction, every statement's row count checked; any surprise rolls everything back) or is written as a
 * reviewable script for the plain mariadb client.
 */
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { executePlan } from './execute.ts';
import type { PlanItem } from './guard.ts';
import { writeScript } from './script.ts';

export interface PlanOutput {
  /** Write a script here instead of executing. */
  readonly sqlFile?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly log: Logger;
  /** Header lines of the script (what, where, when). */
  readonly header: readonly string[];
  /** Script text after COMMIT (objects-run.ts scriptSection). */
  readonly after?: string | undefined;
}

export interface PlanResult {
  readonly executed: boolean;
  readonly statements: number;
  readonly rows: number;
  readonly txs: number;
}

/** Wraps leading/trailing items (the position lock, the final position) around the body. */
export async function* framed(
  first: readonly PlanItem[],
  body: AsyncIterable<PlanItem>,
  last: readonly PlanItem[],
): AsyncGenerator<PlanItem> {
  yield* first;
  yield* body;
  yield* last;
}

export async function runPlan(
  conn: mysql.Connection,
  items: AsyncIterable<PlanItem>,
  o: PlanOutput,
): Promise<PlanResult> {
  if (o.sqlFile !== undefined) {
    const r = await writeScript(o.sqlFile, items, o.header, o.after ? { after: o.after } : {});
    return { executed: false, statements: r.statements, rows: 0, txs: 0 };
  }
  const started = Date.now();
  const r = await executePlan(conn, items, {
    ...(o.signal ? { signal: o.signal } : {}),
    onProgress: (p: { rows: number }) => o.log.info({ rows: p.rows }, 'working'),
  });
  o.log.info({ ...r, seconds: (Date.now() - started) / 1000 }, 'committed');
  return { executed: true, ...r };
}
