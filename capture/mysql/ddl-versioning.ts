/**
 * `ALTER TABLE inc.t … ADD SYSTEM VERSIONING` on a table that already has rows gives every row the statement's
 * time as its row_start. Verbatim on a target the rows would get the target's own time, and their history would
 * differ from the source's for good; so the statement becomes a copy of the table (table-copy.ts, as for a table
 * moving into the include set): its definition and rows, history and period columns included, read from the
 * source. Pure.
 */
import type { StatementClass } from './ddl.ts';
import { type TableRef, tokenize } from '../../mysql/sql-text.ts';

/** Does the statement's text add system versioning (ADD SYSTEM VERSIONING outside strings and comments)? */
export function addsSystemVersioning(sql: string): boolean {
  const words = tokenize(sql).map((t) => (t.t === 'word' ? t.up : t.t === 'punct' ? t.v : ''));
  for (let i = 0; i + 2 < words.length; i++) {
    if (words[i] === 'ADD' && words[i + 1] === 'SYSTEM' && words[i + 2] === 'VERSIONING') return true;
  }
  return false;
}

/** A copy of the table for ALTER TABLE inc.t … ADD SYSTEM VERSIONING, or null for any other statement. */
export function versioningSteps(
  cls: Extract<StatementClass, { kind: 'table-ddl' }>,
  sql: string,
  includes: (t: TableRef) => boolean,
): { readonly kind: 'copy'; readonly table: TableRef }[] | null {
  const t = cls.tables[0];
  if (cls.statement !== 'ALTER TABLE' || cls.tables.length !== 1 || !t || !includes(t)) return null;
  return addsSystemVersioning(sql) ? [{ kind: 'copy', table: t }] : null;
}
