/**
 * The quarantine file's text and the terminal summary (pure: no I/O). failover/quarantine.ts reads the journal and
 * writes the file; the format is described there.
 */
import { SQL_MODE } from '../mysql/session.ts';
import { buildDeleteRow, buildInsert, buildUpdateRow, type Flavor, useSchema } from '../mysql/sql.ts';
import type { DdlEntry, RowImage, RowsEntry } from '../record/record.ts';
import { oneLine } from '../rollback/guard.ts';
import { rowObject } from '../rollback/show.ts';
import { formatTimeUs } from '../rollback/time.ts';

export interface RowCounts {
  insert: number;
  update: number;
  delete: number;
}

export interface ErrantTx {
  txId: string;
  /** LSN of the unit's first frame and of its commit frame. */
  firstLsn: bigint;
  lastLsn: bigint;
  firstSeq: bigint;
  commitSeq: bigint;
  commitTimeUs: bigint;
  rows: RowCounts;
  ddl: number;
  /** "schema.table", sorted (DDL entries add the tables they name). */
  tables: string[];
}

export interface QuarantineSummary {
  file: string;
  afterLsn: bigint;
  transactions: number;
  rows: RowCounts;
  ddl: number;
  tables: string[];
  first: ErrantTx | null;
  last: ErrantTx | null;
  /** Size of the file written. */
  bytes: number;
  /** Frames followed the last commit (a unit that never committed); noted in the file, not written as SQL. */
  incompleteTail: boolean;
}

const MAX_TABLES_SHOWN = 20;

// ---- text (pure) ---------------------------------------------------------------------------------------------

/** JSON on one line (control characters, U+2028/2029 escaped); NaN/Infinity as strings, not null. */
function jsonLine(v: unknown): string {
  const finite = (_: string, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x);
  return JSON.stringify(v, finite).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

export function comment(text: string): string {
  return `-- ${oneLine(text)}`.trimEnd() + '\n';
}

/** The head's comment lines: the caller's header lines, what the file holds, then `usage` (how to use it). */
export function headComments(
  journalDir: string,
  afterLsn: bigint,
  header: readonly string[],
  usage: readonly string[],
): string {
  const lines = header.flatMap((h) => h.split(/\r\n|\r|\n/));
  return [
    ...lines,
    `errant transactions of ${journalDir} after LSN ${afterLsn}`,
    '',
    'They were committed on the old primary but never reached the new one. Review before re-applying any of them',
    ...usage,
  ]
    .map(comment)
    .join('');
}

/** The file's head: the caller's header lines, what the file holds, how to use it, the client session. */
export function quarantineHead(journalDir: string, afterLsn: bigint, header: readonly string[]): string {
  return (
    headComments(journalDir, afterLsn, header, [
      'on the new primary by hand, e.g. mariadb -h HOST -u USER -p < THIS_FILE (it stops at the first error).',
      'Each row change comes with its before/after images as JSON; binary values are "0x…" there, X\'…\' in SQL.',
      'Remove generated columns from the statements (the server computes them). DDL commits implicitly.',
    ]) +
    'charset utf8mb4\n' +
    `SET NAMES utf8mb4, time_zone = '+00:00', sql_mode = '${SQL_MODE}';\n\n`
  );
}

export function txCounts(t: ErrantTx): string {
  const r = t.rows;
  return `${r.insert} insert, ${r.update} update, ${r.delete} delete${t.ddl > 0 ? `, ${t.ddl} DDL` : ''}`;
}

/** The comment lines and START TRANSACTION of one transaction. */
export function txHead(t: ErrantTx): string {
  const at = `(LSN ${t.firstLsn}..${t.lastLsn}, seq ${t.firstSeq}..${t.commitSeq})`;
  let out = comment(`transaction ${t.txId} committed ${formatTimeUs(t.commitTimeUs)} ${at}: ${txCounts(t)}`);
  if (t.tables.length > 0) out += comment(`tables: ${t.tables.join(', ')}`);
  return out + 'START TRANSACTION;\n';
}

/** The plain SQL of one row change (throws when it cannot be written: a missing image, NaN …). */
function rowSql(e: RowsEntry, r: RowImage, pkIdx: readonly number[] | null, flavor: Flavor): string {
  const all = e.columns.map((_, i) => i);
  const img = (which: 'before' | 'after') => {
    const v = r[which];
    if (!v || v.length !== e.columns.length) {
      throw new Error(`${which} image ${v ? `has ${v.length} values for ${e.columns.length} columns` : 'is missing'}`);
    }
    return v;
  };
  if (e.op === 'insert') return buildInsert(e.schema, e.table, e.columns, all, [img('after')]);
  if (e.op === 'delete') return buildDeleteRow(e.schema, e.table, e.columns, pkIdx, img('before'), flavor);
  return buildUpdateRow(e.schema, e.table, e.columns, all, pkIdx, img('before'), img('after'), flavor);
}

/** Key column indexes of a rows entry, or null (match every column) without a usable primary key. */
function keyIndexes(e: RowsEntry): readonly number[] | null {
  if (e.pk.length === 0) return null;
  const idx = e.pk.map((name) => e.columns.findIndex((c) => c.name === name));
  return idx.every((i) => i >= 0) ? idx : null;
}

/** A row change's before and after images as one JSON comment line. */
export function imagesLine(e: RowsEntry, r: RowImage): string {
  return `-- before: ${jsonLine(rowObject(e.columns, r.before))} after: ${jsonLine(rowObject(e.columns, r.after))}\n`;
}

/** The text of each row change of a rows entry: its JSON images line and its statement, one row at a time. */
export function* rowsText(e: RowsEntry, flavor: Flavor = 'mariadb'): Generator<string> {
  const pkIdx = keyIndexes(e);
  if (e.pk.length > 0 && !pkIdx) {
    yield comment(`key ${e.pk.join(', ')} of ${e.schema}.${e.table} is not among its columns: rows matched by all`);
  }
  for (const r of e.rows) {
    const images = imagesLine(e, r);
    let sql: string;
    try {
      sql = rowSql(e, r, pkIdx, flavor) + ';\n';
    } catch (err) {
      sql = comment(`${e.op} not expressible as SQL (${(err as Error).message}): see the images above`);
    }
    yield images + sql;
  }
}

/** A DDL statement as it was, after USE of its default schema; inside DELIMITER when it holds ';'. */
export function ddlText(e: DdlEntry): string {
  let out = comment(`DDL at seq ${e.seq}${e.schema ? ` in schema ${e.schema}` : ''}`);
  if (e.schema) out += `${useSchema(e.schema)};\n`;
  const sql = e.sql.replace(/[\s;]+$/, '');
  // A comment on the last line would swallow the delimiter.
  const nl = /--|#|\/\*/.test(sql.slice(sql.lastIndexOf('\n') + 1)) ? '\n' : '';
  if (!sql.includes(';')) return `${out}${sql}${nl};\n`;
  let d = '$$';
  while (sql.includes(d)) d += '$';
  return `${out}DELIMITER ${d}\n${sql}${nl}${d}\nDELIMITER ;\n`;
}

function txLine(t: ErrantTx): string {
  return oneLine(
    `${t.txId} committed ${formatTimeUs(t.commitTimeUs)} (LSN ${t.firstLsn}..${t.lastLsn}): ${txCounts(t)}`,
  );
}

/** Human lines for the terminal. Pure. */
export function formatErrantSummary(s: QuarantineSummary): string[] {
  const out: string[] = [];
  const r = s.rows;
  if (s.transactions === 0) out.push(`no errant transactions after LSN ${s.afterLsn}`);
  else {
    const n = `${s.transactions} errant transaction${s.transactions === 1 ? '' : 's'}`;
    out.push(`${n} after LSN ${s.afterLsn}: ${r.insert} insert, ${r.update} update, ${r.delete} delete, ${s.ddl} DDL`);
    if (s.tables.length > 0) {
      const more = s.tables.length - MAX_TABLES_SHOWN;
      const shown = s.tables.slice(0, MAX_TABLES_SHOWN).join(', ');
      out.push(oneLine(`tables: ${shown}${more > 0 ? ` and ${more} more` : ''}`));
    }
    if (s.first) out.push(`first: ${txLine(s.first)}`);
    if (s.last && s.transactions > 1) out.push(`last:  ${txLine(s.last)}`);
  }
  if (s.incompleteTail) out.push('frames after the last commit (a transaction that never committed) were not saved');
  out.push(oneLine(`saved to ${s.file} (${s.bytes} bytes)`));
  return out;
}
