/**
 * Running the object part of a rewind or forward (objects.ts plans it): the exact statement texts read back from
 * the journal, the statements run on the server, and the section a --sql script gets.
 *
 * Object DDL commits implicitly on MariaDB and MySQL, so it cannot share the one transaction of the row changes.
 * Row statements do not depend on the objects (they write base tables only; the session sets @tidemark_apply, so
 * a replica's guarded triggers never fire for them; events are off on a replica), so the order between the two
 * parts is free and chosen for failure:
 *   direct execution   objects first (each to its state at the point), then the row transaction; when anything
 *                      fails the objects are put back to their state at what the server holds (the same plan at
 *                      the head), so a refused or failed rewind changes nothing
 *   --sql script       the object section after COMMIT: the client stops at a failed guard before it, and the
 *                      section is idempotent (DROP … IF EXISTS first), so a failed object statement can be fixed
 *                      and the section run again
 */
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import { readEntryAt } from '../journal/index.ts';
import { rewindDbError } from './errors.ts';
import type { ItemContext } from './items.ts';
import {
  type ObjectPlan,
  type ObjectStatement,
  objectDdlOf,
  objectHistory,
  objectStatements,
  planObjectsAt,
  stepLine,
  windowObjects,
} from './objects.ts';

export interface ObjectWork {
  /** Plan lines for output (redacted), empty when the window holds no object statement. */
  readonly lines: readonly string[];
  /** The statements that put the touched objects into their state at the point. */
  readonly toPoint: readonly ObjectStatement[];
  /** The statements that put them back into their state at what the server holds now. */
  readonly back: readonly ObjectStatement[];
}

const NONE: ObjectWork = { lines: [], toPoint: [], back: [] };

/** The exact text of each replayed statement (the index keeps DDL redacted). */
async function exactTexts(ctx: ItemContext, plans: readonly ObjectPlan[]): Promise<Map<bigint, string>> {
  const out = new Map<bigint, string>();
  for (const p of plans) {
    for (const s of p.steps) {
      if (s.kind !== 'replay' || out.has(s.ddl.info.seq)) continue;
      const seq = s.ddl.info.seq;
      const tx = ctx.index.txContaining(seq);
      const ref = tx && ctx.index.entriesOf(tx.commitSeq).find((r) => r.kind === 'ddl' && r.seq === seq);
      if (!ref) throw new TidemarkError(`rollback index: the DDL entry of seq ${seq} is missing`, { code: 'INDEX' });
      const e = await readEntryAt(ctx.journalDir, ref.segment, ref.offset, ref.lsn, ctx.files);
      if (e.kind !== 'ddl') {
        throw new CorruptionError(`journal LSN ${ref.lsn}: the rollback index says ddl, the journal holds ${e.kind}`, {
          lsn: ref.lsn,
        });
      }
      out.set(seq, e.sql);
    }
  }
  return out;
}

/**
 * The object work of moving a server that holds `head` to `point` across the window (lo, hi]: nothing when the
 * window holds no object statement. `replica`: the server is a target (statements as apply runs them).
 */
export async function objectWork(
  ctx: ItemContext,
  lo: bigint,
  hi: bigint,
  head: bigint,
  point: bigint,
  replica: boolean,
): Promise<ObjectWork> {
  // The whole history is read only for a window that holds object statements.
  if (!ctx.index.ddlBetween(lo, hi).some((d) => objectDdlOf(d) !== null)) return NONE;
  const h = objectHistory(ctx.index, hi);
  const touched = windowObjects(h, lo, hi);
  if (touched.length === 0) return NONE;
  const there = planObjectsAt(h, touched, point);
  const back = planObjectsAt(h, there.objects, head);
  const exact = await exactTexts(ctx, [there, back]);
  return {
    lines: [
      `objects: ${there.objects.length} (views, routines, triggers, events) put back as of seq ${point}:`,
      ...there.steps.map((s) => `  ${stepLine(s)}`),
    ],
    toPoint: objectStatements(there, exact, replica),
    back: objectStatements(back, exact, replica),
  };
}

async function runAll(conn: mysql.Connection, stmts: readonly ObjectStatement[]): Promise<void> {
  for (const s of stmts) {
    try {
      await conn.query(s.sql);
    } catch (err) {
      throw rewindDbError(err, `object statement failed (${s.what})`);
    }
  }
}

/**
 * Runs the objects' statements, then `rows` (the row transaction); when either fails, the objects are put back
 * into their state at what the server holds and the error is rethrown (with a note when putting back failed too).
 */
export async function withObjects<T>(
  conn: mysql.Connection,
  work: ObjectWork,
  log: Logger,
  rows: () => Promise<T>,
): Promise<T> {
  if (work.toPoint.length === 0) return rows();
  try {
    await runAll(conn, work.toPoint);
    log.info({ statements: work.toPoint.length }, 'objects put back');
    return await rows();
  } catch (err) {
    if (err instanceof TidemarkError && err.code === 'REWIND_COMMIT_UNKNOWN') {
      // The rows may be at the point: the objects, already there, stay.
      throw new TidemarkError(
        `${err.message}; the objects (views, routines, triggers, events) were already put into their state at ` +
          "the point: check the target's position (tidemark status) before running the command again",
        { code: err.code, retriable: false, cause: err, context: err.context },
      );
    }
    try {
      await runAll(conn, work.back);
      log.warn('the row transaction did not commit: the objects are back as they were');
    } catch (again) {
      log.error({ err: again }, 'objects could not be put back as they were');
      if (err instanceof TidemarkError) {
        throw new TidemarkError(
          `${err.message}; the rows were not changed, but the objects could not be put back as they were ` +
            `(${again instanceof Error ? again.message : String(again)}): run tidemark forward --to-head once the ` +
            'cause is fixed, or re-create them by hand',
          { code: err.code, retriable: false, cause: err, context: err.context },
        );
      }
    }
    throw err;
  }
}

/** The delimiter of the object section: one no statement contains. */
function delimiterFor(stmts: readonly ObjectStatement[]): string {
  let d = '$$';
  while (stmts.some((s) => s.sql.includes(d) || s.what.includes(d))) d += '$';
  return d;
}

/** The object section of a --sql script, after COMMIT (see the module comment); '' when there is none. */
export function scriptSection(work: ObjectWork): string {
  if (work.toPoint.length === 0) return '';
  const d = delimiterFor(work.toPoint);
  const lines = [
    '-- objects (views, routines, triggers, events), after the row transaction: DDL commits implicitly.',
    '-- Idempotent: if a statement fails, fix the cause and run this section again. Run the script without',
    '-- --force (which would run this section even if the row transaction rolled back) and with --comments',
    '-- (which keeps comments inside routine and trigger bodies).',
    `DELIMITER ${d}`,
  ];
  for (const s of work.toPoint) lines.push(`-- ${s.what.replace(/[\r\n]+/g, ' ')}`, `${s.sql}${d}`);
  lines.push('DELIMITER ;');
  return `${lines.join('\n')}\n`;
}
