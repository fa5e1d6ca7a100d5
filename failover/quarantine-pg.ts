/**
 * The quarantine file of a PostgreSQL old primary (quarantine.ts, option `text`): the same layout as MySQL's, in
 * SQL that `psql -v ON_ERROR_STOP=1` runs against the new primary. Pure: no I/O.
 *
 *   -- <header lines> / what the file holds / how to use it
 *   \set ON_ERROR_STOP on
 *   SET client_encoding = 'UTF8'; SET TimeZone = 'UTC'; …     the settings the journal's value texts were read with
 *   -- transaction … / START TRANSACTION;                      (quarantine-text.ts txHead)
 *   -- before: {…} after: {…}                                  per row: its images as one JSON line
 *   INSERT INTO "s"."t" ("id", …) VALUES ('1'::integer, …);    the change as it was (rollback/pg-guard.ts, redo):
 *   UPDATE "s"."t" SET … WHERE "id" = … AND "c" IS NOT DISTINCT FROM …;   values typed by casts, UPDATE and DELETE
 *   SET search_path = "s"; <DDL as it was>;                    matching the row only while it holds the before image
 *   COMMIT;
 */
import { quoteIdent, quoteLiteral } from '../postgres/sql.ts';
import { SESSION_SETTINGS } from '../postgres/session.ts';
import type { DdlEntry, RowsEntry } from '../record/record.ts';
import { pgGuardedStatements } from '../rollback/pg-guard.ts';
import type { QuarantineText } from './quarantine.ts';
import { comment, headComments, imagesLine } from './quarantine-text.ts';

export function pgQuarantineHead(journalDir: string, afterLsn: bigint, header: readonly string[]): string {
  const settings = Object.entries(SESSION_SETTINGS).map(([k, v]) => `SET ${k} = ${quoteLiteral(v)};\n`);
  return (
    headComments(journalDir, afterLsn, header, [
      'on the new primary by hand, e.g. psql -v ON_ERROR_STOP=1 -h HOST -U USER -d DATABASE -f THIS_FILE.',
      'Each row change comes with its before/after images as JSON (bytea as "0x…"). An UPDATE or DELETE matches',
      'the row only while it holds the before image: check that each reports 1 row (UPDATE 1, DELETE 1).',
    ]) +
    '\\set ON_ERROR_STOP on\n' +
    "SET client_encoding = 'UTF8';\n" +
    settings.join('') +
    '\n'
  );
}

/** Each row change: its images line, then its statement (redo of that one row). */
export function* pgRowsText(e: RowsEntry): Generator<string> {
  for (let i = 0; i < e.rows.length; i++) {
    const images = imagesLine(e, e.rows[i]!);
    let sql = '';
    try {
      for (const s of pgGuardedStatements(e, 'redo', { txId: e.txId, fromRow: i, toRow: i + 1 })) sql += `${s.sql};\n`;
    } catch (err) {
      sql = comment(`${e.op} not expressible as SQL (${(err as Error).message}): see the images above`);
    }
    yield images + sql;
  }
}

/** A DDL statement as it was, after setting its schema as the search path. */
export function pgDdlText(e: DdlEntry): string {
  let out = comment(`DDL at seq ${e.seq}${e.schema ? ` in schema ${e.schema}` : ''}`);
  if (e.schema) out += `SET search_path = ${quoteIdent(e.schema)};\n`;
  const sql = e.sql.replace(/[\s;]+$/, '');
  // A comment on the last line would swallow the semicolon.
  const nl = /--|\/\*/.test(sql.slice(sql.lastIndexOf('\n') + 1)) ? '\n' : '';
  return `${out}${sql}${nl};\n`;
}

export const pgQuarantineText: QuarantineText = {
  head: pgQuarantineHead,
  rows: (e) => pgRowsText(e),
  ddl: pgDdlText,
};
