/**
 * The reviewable script of a plan for a PostgreSQL server: `psql -v ON_ERROR_STOP=1 … -f FILE` runs it with the
 * same result as executePgPlan (the PostgreSQL counterpart of rollback/script.ts).
 *
 *   -- header comments
 *   \set ON_ERROR_STOP on                    also when the client was started without -v ON_ERROR_STOP=1
 *   SET client_encoding, TimeZone, …         the settings of tidemark's own sessions (postgres/session.ts)
 *   BEGIN;
 *   SET LOCAL session_replication_role = replica;   as apply and executePgPlan: triggers and FK actions stay off
 *   -- tx <id> committed <ISO time> (<µs>) seq <n>: undo, <rows> rows
 *   DO $tidemark$ #variable_conflict use_column DECLARE tidemark_n bigint; BEGIN
 *   <statement>; GET DIAGNOSTICS tidemark_n = ROW_COUNT; IF tidemark_n <> <n> THEN RAISE EXCEPTION …; END IF;
 *   …                                        (up to 200 statements per block, one per line)
 *   END $tidemark$;
 *   COMMIT;
 *
 * A failed guard raises an error naming the row; psql stops (ON_ERROR_STOP) with a non-zero exit and the server
 * rolls the transaction back. Without ON_ERROR_STOP every later statement fails inside the aborted transaction
 * and its COMMIT is a ROLLBACK: nothing is changed either way, and a truncated script (no COMMIT) changes nothing.
 * ROW_COUNT after an UPDATE is the rows it matched (PostgreSQL counts no-op updates too). The dollar-quote tag is
 * chosen per block so that no data in the block can end it; psql reads nothing inside dollar quotes (no variables,
 * no backslash commands), and every statement of the block runs in the script's transaction.
 */
import { quoteLiteral } from '../postgres/sql.ts';
import { SESSION_SETTINGS } from '../postgres/session.ts';
import type { PlanItem } from './guard.ts';
import { type ScriptBlocks, streamScript, txComment } from './script.ts';

const BLOCK_STATEMENTS = 200;
const BLOCK_BYTES = 1 << 20;

/** One guarded statement inside a DO block: runs it, then checks its row count. */
export function pgGuardedLine(item: PlanItem): string {
  if (item.kind === 'tx') throw new Error('a tx item is a comment, not a statement');
  const { sql, expect, what } = item.kind === 'final' ? item : item.stmt;
  return (
    `${sql}; GET DIAGNOSTICS tidemark_n = ROW_COUNT; IF tidemark_n <> ${expect} THEN RAISE EXCEPTION ` +
    `'tidemark guard failed: %: matched % row(s), expected ${expect}; rolled back, nothing was changed', ` +
    `${quoteLiteral(what)}, tidemark_n; END IF;\n`
  );
}

/** Groups statements into DO blocks of up to BLOCK_STATEMENTS statements or BLOCK_BYTES of SQL. */
export class PgBlockWriter implements ScriptBlocks {
  #lines: string[] = [];
  #bytes = 0;
  statements = 0;

  add(item: PlanItem): string {
    if (item.kind === 'tx') return this.close() + txComment(item);
    const line = pgGuardedLine(item);
    let out = '';
    if (this.#lines.length > 0 && this.#bytes + line.length > BLOCK_BYTES) out += this.close();
    this.#lines.push(line);
    this.#bytes += line.length;
    this.statements++;
    if (this.#lines.length >= BLOCK_STATEMENTS) out += this.close();
    return out;
  }

  close(): string {
    if (this.#lines.length === 0) return '';
    const body = this.#lines.join('');
    this.#lines = [];
    this.#bytes = 0;
    let tag = '$tidemark$';
    for (let i = 1; body.includes(tag); i++) tag = `$tidemark${i}$`;
    return `DO ${tag}\n#variable_conflict use_column\nDECLARE tidemark_n bigint;\nBEGIN\n${body}END ${tag};\n`;
  }
}

function head(header: readonly string[]): string {
  const lines = header
    .flatMap((h) => h.split(/\r\n|\r|\n/))
    .map((h) => `-- ${h.replace(/[\x00-\x1f\x7f]/g, ' ')}`.trimEnd());
  const settings = Object.entries(SESSION_SETTINGS).map(([k, v]) => `SET ${k} = ${quoteLiteral(v)};`);
  return [
    ...lines,
    '--',
    '-- Run with: psql -v ON_ERROR_STOP=1 -h HOST -p PORT -U USER -d DATABASE -f THIS_FILE',
    '-- One transaction: the first failed guard stops psql with an error and nothing is changed.',
    '\\set ON_ERROR_STOP on',
    "SET client_encoding = 'UTF8';",
    ...settings,
    'BEGIN;',
    'SET LOCAL session_replication_role = replica;',
    '',
  ].join('\n');
}

/** Writes the plan as a psql script to `path` (script.ts streamScript); returns the statements written. */
export function writePgScript(
  path: string,
  items: AsyncIterable<PlanItem>,
  header: readonly string[],
): Promise<{ statements: number }> {
  return streamScript(path, items, head(header), new PgBlockWriter(), () => 'COMMIT;\n-- end of script\n');
}
