/**
 * The accounts of the baseline (issue #16, opt-in): for each entry of `source.accounts`, the statements that make
 * a replica's account equal to the source's, read after the schema objects and applied after them:
 *
 *   1. roles   CREATE ROLE IF NOT EXISTS r; REVOKE ALL PRIVILEGES, GRANT OPTION FROM r (a role is not dropped:
 *              that would take it from the replica's own accounts that hold it)
 *   2. users   DROP USER IF EXISTS u; SHOW CREATE USER u (with its password hash, limits, TLS, lock state)
 *   3. grants  SHOW GRANTS FOR each role, then each user (GRANT … ON …, GRANT role TO u, SET DEFAULT ROLE … FOR u)
 *
 * An entry the source does not have is dropped on the replica (DROP USER IF EXISTS / DROP ROLE IF EXISTS): the
 * listed accounts end up as the source has them. Accounts not listed are never named. The statements carry
 * password hashes: they go to the journal only (never to a log line, see mysql/accounts.ts redactSecrets).
 * Reading another account's definition needs SELECT on the `mysql` schema: an error names that grant.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { accountSql } from '../../mysql/accounts.ts';
import { showAccountLines } from '../../mysql/account-show.ts';
import type { ObjectStatement } from './baseline-objects.ts';
import type { SourceConnection } from './connection.ts';

/** The first column of every row of `sql`, or null when the account does not exist. */
function firstColumn(conn: SourceConnection, sql: string, entry: string): Promise<string[] | null> {
  const q = async (text: string) => {
    const [rows] = await conn.promise.query<RowDataPacket[]>({ sql: text, rowsAsArray: true });
    return rows as unknown as unknown[][];
  };
  return showAccountLines(q, sql, entry, 'the capture account');
}

/** The statements for `entries` (source.accounts), in the order of the module comment. */
export async function readAccountStatements(
  conn: SourceConnection,
  entries: readonly string[],
): Promise<ObjectStatement[]> {
  const create: string[] = [];
  const grants: string[] = [];
  const roles = entries.filter((e) => !e.includes('@'));
  const users = entries.filter((e) => e.includes('@'));
  for (const r of roles) {
    const g = await firstColumn(conn, `SHOW GRANTS FOR ${accountSql(r)}`, r);
    if (g === null) {
      create.push(`DROP ROLE IF EXISTS ${accountSql(r)}`);
      continue;
    }
    create.push(
      `CREATE ROLE IF NOT EXISTS ${accountSql(r)}`,
      `REVOKE ALL PRIVILEGES, GRANT OPTION FROM ${accountSql(r)}`,
    );
    grants.push(...g);
  }
  const userGrants: string[] = [];
  for (const u of users) {
    const def = await firstColumn(conn, `SHOW CREATE USER ${accountSql(u)}`, u);
    create.push(`DROP USER IF EXISTS ${accountSql(u)}`);
    if (def === null || def[0] === undefined) continue;
    create.push(def[0]);
    userGrants.push(...((await firstColumn(conn, `SHOW GRANTS FOR ${accountSql(u)}`, u)) ?? []));
  }
  return [...create, ...grants, ...userGrants].map((sql) => ({ schema: '', sql }));
}
