/**
 * Reading one account as the server shows it (issue #16, source.accounts): SHOW CREATE USER / SHOW GRANTS FOR, the
 * first column of every row, or null when the account does not exist. Shared by the baseline (capture/mysql/
 * baseline-accounts.ts, which journals the lines) and verify (apply/mysql/verify-accounts.ts, which compares them).
 * The lines can hold a password hash: callers never log them (mysql/accounts.ts redactSecrets before showing).
 */
import { TidemarkError } from '../core/errors.ts';
import { serverFields } from './errors.ts';

/** "no such account" from SHOW CREATE USER / SHOW GRANTS FOR. */
const ABSENT_ERRNO: ReadonlySet<number> = new Set([1133, 1141, 1396, 1449]);
/** Access denied (to the mysql schema, or for SHOW CREATE USER). */
const DENIED_ERRNO: ReadonlySet<number> = new Set([1044, 1142, 1227]);

/** Runs `sql` and returns its rows as arrays. */
export type RowsQuery = (sql: string) => Promise<unknown[][]>;

/**
 * The first column of every row of `sql` (a SHOW … for `entry`), or null when the account does not exist. Access
 * denied is a PRIVILEGE error whose message says which grant `who` (e.g. "the capture account") needs.
 */
export async function showAccountLines(
  q: RowsQuery,
  sql: string,
  entry: string,
  who: string,
): Promise<string[] | null> {
  try {
    return (await q(sql)).map((r) => String(r[0]));
  } catch (err) {
    const errno = serverFields(err).errno ?? 0;
    if (ABSENT_ERRNO.has(errno)) return null;
    if (DENIED_ERRNO.has(errno)) {
      throw new TidemarkError(
        `cannot read account ${entry} (source.accounts): grant ${who} SELECT ON mysql.* ` +
          '(SHOW CREATE USER and SHOW GRANTS FOR another account need it)',
        { code: 'PRIVILEGE', cause: err, context: { errno } },
      );
    }
    throw err;
  }
}
