import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { readAccountStatements } from './baseline-accounts.ts';
import type { SourceConnection } from './connection.ts';

/** A source answering SHOW CREATE USER / SHOW GRANTS FOR from `accounts` (absent: errno 1396 / 1141). */
function fakeSource(accounts: Record<string, { create?: string; grants: string[] }>, denied = false): SourceConnection {
  const query = async ({ sql }: { sql: string }) => {
    if (denied) throw Object.assign(new Error('denied'), { errno: 1142 });
    const m = /^SHOW (CREATE USER|GRANTS FOR) (.*)$/.exec(sql);
    const a = m && accounts[m[2]!];
    if (!a) throw Object.assign(new Error('no such account'), { errno: m?.[1] === 'GRANTS FOR' ? 1141 : 1396 });
    const rows = m[1] === 'CREATE USER' ? [a.create] : a.grants;
    return [rows.map((r) => [r])];
  };
  return { promise: { query } } as unknown as SourceConnection;
}

describe('readAccountStatements', () => {
  it('creates roles, then users, then the roles’ and the users’ grants; drops what the source lacks', async () => {
    const conn = fakeSource({
      "'r'": { grants: ['GRANT USAGE ON *.* TO `r`', 'GRANT SELECT ON `shop`.* TO `r`'] },
      "'app'@'%'": {
        create: "CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*AB'",
        grants: ["GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB'", 'GRANT `r` TO `app`@`%`'],
      },
    });
    const out = await readAccountStatements(conn, ['app@%', 'gone@h', 'r', 'nore']);
    expect(out.every((s) => s.schema === '')).toBe(true);
    expect(out.map((s) => s.sql)).toEqual([
      "CREATE ROLE IF NOT EXISTS 'r'",
      "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'r'",
      "DROP ROLE IF EXISTS 'nore'",
      "DROP USER IF EXISTS 'app'@'%'",
      "CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*AB'",
      "DROP USER IF EXISTS 'gone'@'h'",
      'GRANT USAGE ON *.* TO `r`',
      'GRANT SELECT ON `shop`.* TO `r`',
      "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB'",
      'GRANT `r` TO `app`@`%`',
    ]);
  });

  it('names nothing when no account is listed', async () => {
    expect(await readAccountStatements(fakeSource({}, true), [])).toEqual([]);
  });

  it('names the grant the capture account lacks', async () => {
    const err = await readAccountStatements(fakeSource({}, true), ['app@%']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('PRIVILEGE');
    expect((err as Error).message).toMatch(/app@%.*SELECT ON mysql\.\*/);
  });
});
