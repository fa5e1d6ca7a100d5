/**
 * The reviewable script of a plan: the plain `mariadb` client runs it with the same result as executePlan.
 *
 *   -- header comments
 *   charset utf8mb4                          client command: the client parses the rest as utf8mb4 (a client
 *                                            set to e.g. gbk would otherwise misread multi-byte data)
 *   SET NAMES …, sql_mode, time_zone …       the apply session of apply/mysql/session.ts
 *   SET @tidemark_apply = 1                  a replica's guarded triggers do not fire (mysql/objects.ts)
 *   START TRANSACTION;
 *   DELIMITER $$
 *   -- tx <id> committed <ISO time> (<µs>) seq <n>: undo, <rows> rows
 *   BEGIN NOT ATOMIC IF <not in a transaction> THEN SIGNAL …; END IF;
 *   <statement>; IF <row count differs> THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '<what>'; END IF;
 *   …                                        (up to 200 statements per block, one per line)
 *   SET @tidemark_done = @tidemark_done + <n>; END$$
 *   …
 *   BEGIN NOT ATOMIC <every statement ran, else ROLLBACK and fail> END$$
 *   DELIMITER ;
 *   COMMIT;
 *   <object section>                         views, routines, triggers, events (rollback/objects-run.ts): DDL
 *                                            commits implicitly, so after the row transaction
 *
 * The client stops at the first error (without --force) with a non-zero exit; the connection closes and the
 * server rolls the open transaction back, so nothing is changed. A truncated script (no COMMIT) changes nothing
 * either. Even under --force the last block rolls back unless every statement ran and passed, and each block
 * refuses to run outside the script's transaction (after a client reconnect, say).
 *
 * Row counts: the client session has no FOUND_ROWS, so ROW_COUNT() after an UPDATE is the number of rows it
 * CHANGED. A guarded update that changes a column changes exactly the one row it matches, so the count is the
 * same; a no-op update (noop) checks the row's existence with its locking SELECT instead. 'final' items are
 * checked with ROW_COUNT() too: they must change what they match (the position update sets applied_at).
 *
 * Multi-row statements: the plan goes through the same merging as executePlan (batch.ts), so the script runs
 * the same multi-row UPDATEs/DELETEs (one constructor row per line). Every row of a multi-row UPDATE changes
 * something (no-op updates stay per-row), so its ROW_COUNT() is its number of rows; a mismatch stops the
 * script with a message naming the statement's range of rows (executePlan narrows it down to the row).
 *
 * The delimiter: the client tracks quoted strings and `identifiers` (with backslash escapes in strings) and
 * ignores a delimiter inside them, data literals never hold a raw newline (sql.ts escapes \n and \r), and
 * comments are single-line with control characters escaped (and no '$$'). Verified with the client set to
 * latin1, gbk, sjis and utf8mb4 against strings made of quotes, backslashes, delimiters, comment markers, client
 * commands (\G, \c) and control characters, and a table name holding "$$\nDELIMITER ;\n". MariaDB only.
 */
import { rewindValueError } from './errors.ts';
import { SQL_MODE } from '../mysql/session.ts';
import { openDurable } from '../core/durable-file.ts';
import { quoteString } from '../mysql/sql.ts';
import { type BatchOptions, batchItems } from './batch.ts';
import { oneLine, type PlanItem } from './guard.ts';
import { formatTimeUs } from './time.ts';

const DELIMITER = '$$';
const FLUSH_BYTES = 1 << 20;
const BLOCK_STATEMENTS = 200;
const BLOCK_BYTES = 1 << 20;
/** MESSAGE_TEXT holds at most 128 characters. */
const MESSAGE_CHARS = 128;

/** `text` cut to `max` characters (code points) by dropping its middle, so the start and the end (seq, tx) stay. */
export function clip(text: string, max = MESSAGE_CHARS): string {
  const cps = Array.from(text);
  if (cps.length <= max) return text;
  const head = Math.ceil((max - 3) / 2);
  const tail = max - 3 - head;
  return cps.slice(0, head).join('') + '...' + cps.slice(cps.length - tail).join('');
}

function fail(message: string): string {
  return `SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = ${quoteString(clip(message))}`;
}

const IN_TX = `IF @@in_transaction = 0 THEN ${fail("tidemark: not inside the script's transaction; stopping")}; END IF;`;

/** One guarded statement inside a block: runs it, then checks its outcome. */
export function guardedLine(item: PlanItem): string {
  if (item.kind === 'tx') throw new Error('a tx item is a comment, not a statement');
  if (item.kind === 'final') return `${item.sql}; IF ROW_COUNT() <> ${item.expect} THEN ${fail(item.what)}; END IF;\n`;
  const s = item.stmt;
  let check = `ROW_COUNT() <> ${s.expect}`;
  if (s.noop) {
    if (!s.exists) throw new Error(`no-op statement without an existence check: ${s.what}`);
    check = `NOT EXISTS (${s.exists})`;
  }
  return `${s.sql}; IF ${check} THEN ${fail(s.what)}; END IF;\n`;
}

/** The comment line of a source transaction. */
export function txComment(item: Extract<PlanItem, { kind: 'tx' }>): string {
  const when = `${formatTimeUs(item.commitTimeUs)} (${item.commitTimeUs})`;
  return `-- ${oneLine(`tx ${item.txId} committed ${when} seq ${item.commitSeq}: ${item.direction}, ${item.rows} rows`).replace(/\$(?=\$)/g, '$ ')}\n`;
}

/**
 * Groups guarded statements into compound blocks (one client round trip and one compiled block per up to
 * BLOCK_STATEMENTS statements or BLOCK_BYTES of SQL): `BEGIN NOT ATOMIC <in transaction?> (<stmt>; <check>)…
 * SET @tidemark_done = @tidemark_done + <n>; END$$`.
 */
export class BlockWriter implements ScriptBlocks {
  #open = 0;
  #bytes = 0;
  /** Statements written (all blocks). */
  statements = 0;

  /** Text for one item (a comment line for a tx item). */
  add(item: PlanItem): string {
    if (item.kind === 'tx') return txComment(item);
    const line = guardedLine(item);
    let out = '';
    if (this.#open > 0 && this.#bytes + line.length > BLOCK_BYTES) out += this.close();
    if (this.#open === 0) out += `BEGIN NOT ATOMIC ${IN_TX}\n`;
    this.#open++;
    this.#bytes += line.length;
    this.statements++;
    out += line;
    if (this.#open >= BLOCK_STATEMENTS) out += this.close();
    return out;
  }

  /** Ends the open block, if any. */
  close(): string {
    if (this.#open === 0) return '';
    const out = `SET @tidemark_done = @tidemark_done + ${this.#open}; END${DELIMITER}\n`;
    this.#open = 0;
    this.#bytes = 0;
    return out;
  }
}

function head(header: readonly string[]): string {
  const lines = header.flatMap((h) => h.split(/\r\n|\r|\n/)).map((h) => `-- ${oneLine(h)}`.trimEnd());
  return (
    [
      ...lines,
      '--',
      '-- Run with the plain client, e.g.: mariadb -h HOST -P PORT -u USER -p < THIS_FILE',
      '-- One transaction: the first failed guard stops the client with an error and nothing is changed.',
      '-- Rows larger than 16 MiB need the client option --max-allowed-packet=1G.',
      'charset utf8mb4',
      `SET NAMES utf8mb4, time_zone = '+00:00', sql_mode = '${SQL_MODE}', foreign_key_checks = 0;`,
      'SET @tidemark_done = 0;',
      // As in tidemark's own sessions: a replica's triggers are guarded and must not fire for the script's writes.
      'SET @tidemark_apply = 1;',
      'START TRANSACTION;',
      `DELIMITER ${DELIMITER}`,
    ].join('\n') + '\n'
  );
}

function tail(statements: number, after: string): string {
  const check = `IF NOT (@tidemark_done <=> ${statements}) THEN ROLLBACK; ${fail(`tidemark: ${statements} statements should have run and passed; rolled back`)}; END IF;`;
  return `BEGIN NOT ATOMIC ${check} END${DELIMITER}\nDELIMITER ;\nCOMMIT;\n${after}-- end of script\n`;
}

/** What writes a plan's statements into blocks of the engine's client (BlockWriter; pg-script.ts PgBlockWriter). */
export interface ScriptBlocks {
  /** Text for one item (a comment line for a tx item). */
  add(item: PlanItem): string;
  /** Ends the open block, if any. */
  close(): string;
  /** Statements written (all blocks). */
  readonly statements: number;
}

/**
 * Streams a plan into a script at `path` (through `path`.tmp, fsynced and renamed when complete:
 * core/durable-file.ts): `head`, the statements through `blocks`, the finals last, then `tail(statements)`. The
 * plan is never held in memory. Returns the number of guarded statements (finals included).
 */
export async function streamScript(
  path: string,
  items: AsyncIterable<PlanItem>,
  head: string,
  blocks: ScriptBlocks,
  tail: (statements: number) => string,
): Promise<{ statements: number }> {
  const dest = await openDurable(path);
  const fh = dest.fh;
  const finals: PlanItem[] = [];
  let buf = head;
  try {
    for await (const item of items) {
      if (item.kind === 'final') finals.push(item);
      else buf += blocks.add(item);
      if (buf.length >= FLUSH_BYTES) {
        await fh.write(buf);
        buf = '';
      }
    }
    buf += blocks.close();
    if (finals.length > 0) {
      buf += '-- final\n';
      for (const f of finals) buf += blocks.add(f);
      buf += blocks.close();
    }
    buf += tail(blocks.statements);
    await fh.write(buf);
  } catch (err) {
    await dest.abort();
    throw rewindValueError(err);
  }
  await dest.commit();
  return { statements: blocks.statements };
}

/** Writes the plan as a script for the mariadb client to `path` (streamScript). */
export function writeScript(
  path: string,
  items: AsyncIterable<PlanItem>,
  header: readonly string[],
  opts: {
    readonly batch?: BatchOptions | false;
    /** Text after COMMIT (the object section of objects-run.ts). */
    readonly after?: string;
  } = {},
): Promise<{ statements: number }> {
  const plan = opts.batch === false ? items : batchItems(items, opts.batch);
  return streamScript(path, plan, head(header), new BlockWriter(), (n) => tail(n, opts.after ?? ''));
}
