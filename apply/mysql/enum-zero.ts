/**
 * ENUM index 0 (record Value 0n: the invalid-value index a non-strict source stored for an unknown label) can only
 * be written without strict mode: a statement writing one runs with the session's sql_mode minus strictness, for
 * that statement only. Pure; used by the apply batcher and rewind's guarded statements.
 */
import type { Column, Value } from '../../record/record.ts';
import { SQL_MODE } from '../../mysql/session.ts';
import type { Flavor } from '../../mysql/sql.ts';

/** The apply session's sql_mode without strictness: lets a statement store ENUM index 0 (see the file comment). */
export const ENUM_ZERO_MODE = `sql_mode = '${SQL_MODE.split(',')
  .filter((m) => m !== 'STRICT_ALL_TABLES' && m !== 'STRICT_TRANS_TABLES')
  .join(',')}'`;

/** `SET STATEMENT a, b FOR ` for the given variable settings ('' for none). */
export function setStatement(vars: readonly string[]): string {
  return vars.length === 0 ? '' : `SET STATEMENT ${vars.join(', ')} FOR `;
}

/**
 * `sql` (an INSERT or UPDATE) run without strict mode, so it can store ENUM index 0: MariaDB's SET STATEMENT, or
 * MySQL's SET_VAR optimizer hint after the verb (the MySQL form is not exercised against a MySQL server).
 */
export function withEnumZero(sql: string, flavor: Flavor): string {
  if (flavor === 'mariadb') return setStatement([ENUM_ZERO_MODE]) + sql;
  return sql.replace(/^(INSERT|UPDATE)\b/, `$1 /*+ SET_VAR(${ENUM_ZERO_MODE}) */`);
}

/** Does a written value of these columns hold ENUM index 0 (0n)? */
export function writesEnumZero(row: readonly Value[], cols: readonly Column[], idx: readonly number[]): boolean {
  return idx.some((i) => row[i] === 0n && cols[i]!.type === 'enum');
}
