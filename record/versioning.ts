/**
 * MariaDB system-versioned tables (`WITH SYSTEM VERSIONING`) in the record model (pure; shared by capture, apply
 * and verify).
 *
 * Such a table keeps every row version: current rows have row_end = the maximum TIMESTAMP(6), history rows the
 * time they stopped being current. The period columns are either declared (`rs TIMESTAMP(6) GENERATED ALWAYS AS
 * ROW START`, `PERIOD FOR SYSTEM_TIME (rs, re)`) or implicit and hidden (`row_start`, `row_end`, listed neither by
 * information_schema.COLUMNS nor by SELECT *). Either way the binlog's row images carry both, and the table's
 * primary key ends with the row_end column, so current and history rows of one key are distinct rows.
 *
 * Capture carries them as ordinary TIMESTAMP(6) columns (history rows included: the baseline reads FOR
 * SYSTEM_TIME ALL), with row_end in the primary key. Apply recognizes the table on the replica and writes the
 * versions with their source timestamps (apply/mysql/versioned.ts).
 */
import type { Value } from './record.ts';

/** Names of the two period columns. */
export interface SystemPeriod {
  readonly start: string;
  readonly end: string;
  /** Hidden columns MariaDB added itself (row_start/row_end, absent from information_schema.COLUMNS). */
  readonly implicit: boolean;
}

export const IMPLICIT_PERIOD: SystemPeriod = { start: 'row_start', end: 'row_end', implicit: true };

/** Reads one backtick-quoted identifier at `s` (doubled backticks inside). */
function ident(s: string): { name: string; rest: string } | null {
  const m = /^\s*`((?:[^`]|``)*)`/.exec(s);
  if (!m || m[1] === undefined) return null;
  return { name: m[1].replaceAll('``', '`'), rest: s.slice(m[0].length) };
}

/**
 * The system period of a table from its SHOW CREATE TABLE text, or null when the text does not show a
 * system-versioned table. Without `PERIOD FOR SYSTEM_TIME` the period columns are the implicit row_start/row_end.
 * (Callers that know the table is versioned, from information_schema.TABLES.TABLE_TYPE = 'SYSTEM VERSIONED',
 * use `?? IMPLICIT_PERIOD`.)
 */
export function systemPeriodOf(createTable: string): SystemPeriod | null {
  // Identifiers are backtick-quoted, comments and defaults single-quoted: blank the latter before looking.
  const text = createTable.replace(/'(?:[^'\\]|\\.|'')*'/g, "''");
  const at = text.search(/\bPERIOD\s+FOR\s+SYSTEM_TIME\s*\(/i);
  if (at >= 0) {
    const after = text.slice(at).replace(/^PERIOD\s+FOR\s+SYSTEM_TIME\s*\(/i, '');
    const a = ident(after);
    const b = a ? ident(a.rest.replace(/^\s*,/, '')) : null;
    if (a && b) return { start: a.name, end: b.name, implicit: false };
  }
  if (/\bWITH\s+SYSTEM\s+VERSIONING\b/i.test(text)) return IMPLICIT_PERIOD;
  return null;
}

/** row_end of a current row: TIMESTAMP's maximum (2038 on MariaDB ≤ 11.4, 2106 on newer 64-bit servers). */
export function isCurrentRowEnd(v: Value): boolean {
  return v === '2038-01-19 03:14:07.999999' || v === '2106-02-07 06:28:15.999999';
}

/** "YYYY-MM-DD hh:mm:ss[.ffffff]" (UTC) → exact "seconds.micros" for SET timestamp; null when not such text. */
export function epochText(v: Value): string | null {
  if (typeof v !== 'string') return null;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(v);
  if (!m) return null;
  const secs = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  if (!Number.isSafeInteger(secs) || secs < 0) return null;
  return `${secs}.${(m[7] ?? '').padEnd(6, '0')}`;
}
