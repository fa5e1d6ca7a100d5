import { describe, expect, it } from 'vitest';
import {
  accountSql,
  isListed,
  parseAccountDdl,
  parseAccountList,
  redactSecrets,
  redactServerMessage,
} from './accounts.ts';

describe('parseAccountDdl', () => {
  it('reads the accounts of user statements, quoted or bare', () => {
    expect(parseAccountDdl("CREATE USER 'app'@'%' IDENTIFIED BY 'pw', `b`@`h` IDENTIFIED BY PASSWORD '*AB'")).toEqual({
      statement: 'CREATE USER',
      accounts: [
        { user: 'app', host: '%' },
        { user: 'b', host: 'h' },
      ],
      current: false,
    });
    expect(parseAccountDdl('create or replace user if not exists x@localhost')?.accounts).toEqual([
      { user: 'x', host: 'localhost' },
    ]);
    expect(
      parseAccountDdl("ALTER USER IF EXISTS 'a'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('x,y')")?.accounts,
    ).toEqual([{ user: 'a', host: '%' }]);
    expect(parseAccountDdl("DROP USER 'a'@'%', bare")?.accounts).toEqual([{ user: 'a', host: '%' }, { user: 'bare' }]);
    expect(parseAccountDdl("RENAME USER 'a'@'%' TO 'b'@'%', c TO d")?.accounts).toEqual([
      { user: 'a', host: '%' },
      { user: 'b', host: '%' },
      { user: 'c' },
      { user: 'd' },
    ]);
  });

  it('reads roles and the grantees of GRANT and REVOKE, not the roles granted', () => {
    expect(parseAccountDdl('CREATE ROLE IF NOT EXISTS reader WITH ADMIN root@localhost')?.accounts).toEqual([
      { user: 'reader' },
    ]);
    expect(parseAccountDdl('DROP ROLE r1, `r2`')?.accounts).toEqual([{ user: 'r1' }, { user: 'r2' }]);
    expect(parseAccountDdl("GRANT SELECT, INSERT (a, b) ON `shop`.* TO 'app'@'%', rep WITH GRANT OPTION")).toEqual({
      statement: 'GRANT',
      accounts: [{ user: 'app', host: '%' }, { user: 'rep' }],
      current: false,
    });
    expect(parseAccountDdl("GRANT reader TO 'app'@'%'")?.accounts).toEqual([{ user: 'app', host: '%' }]);
    expect(parseAccountDdl("REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'app'@'%'")?.accounts).toEqual([
      { user: 'app', host: '%' },
    ]);
    expect(parseAccountDdl('GRANT SELECT ON t TO PUBLIC')?.current).toBe(true);
  });

  it('reads SET PASSWORD / SET DEFAULT ROLE FOR, and marks the own account', () => {
    expect(parseAccountDdl("SET PASSWORD FOR 'app'@'%' = PASSWORD('pw')")?.accounts).toEqual([
      { user: 'app', host: '%' },
    ]);
    expect(parseAccountDdl("SET PASSWORD = '*AB'")).toEqual({ statement: 'SET PASSWORD', accounts: [], current: true });
    expect(parseAccountDdl('SET DEFAULT ROLE reader FOR app@localhost')?.accounts).toEqual([
      { user: 'app', host: 'localhost' },
    ]);
    expect(parseAccountDdl('ALTER USER CURRENT_USER() IDENTIFIED BY "x"')?.current).toBe(true);
  });

  it('is null for everything else', () => {
    for (const s of [
      'CREATE TABLE user (a int)',
      'SET NAMES utf8',
      'ALTER ROLE x',
      'DROP TABLE t',
      'FLUSH PRIVILEGES',
    ]) {
      expect(parseAccountDdl(s)).toBeNull();
    }
  });
});

describe('account lists', () => {
  const list = parseAccountList(['app@%', 'report@10.0.0.%', 'Rep@LocalHost', 'reader']);
  it('matches users by user@host (host case-insensitive) and roles by name', () => {
    expect(isListed({ user: 'app', host: '%' }, list)).toBe(true);
    expect(isListed({ user: 'app' }, list)).toBe(true); // bare = app@'%'
    expect(isListed({ user: 'app', host: 'localhost' }, list)).toBe(false);
    expect(isListed({ user: 'Rep', host: 'localhost' }, list)).toBe(true);
    expect(isListed({ user: 'rep', host: 'localhost' }, list)).toBe(false);
    expect(isListed({ user: 'reader' }, list)).toBe(true);
    expect(isListed({ user: 'other' }, list)).toBe(false);
  });
  it('quotes an entry as SQL', () => {
    expect(accountSql("o'k@10.0.0.%")).toBe("'o\\'k'@'10.0.0.%'");
    expect(accountSql('reader')).toBe("'reader'");
  });
});

describe('redactSecrets', () => {
  it('replaces every literal that is not an account name', () => {
    expect(redactSecrets("CREATE USER 'app'@'%' IDENTIFIED BY 's3cr''et'")).toBe(
      "CREATE USER 'app'@'%' IDENTIFIED BY '<redacted>'",
    );
    expect(redactSecrets("ALTER USER a@'%' IDENTIFIED BY PASSWORD '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'")).toBe(
      "ALTER USER a@'%' IDENTIFIED BY PASSWORD '<redacted>'",
    );
    expect(redactSecrets("SET PASSWORD FOR 'a'@'h' = PASSWORD(\"pw\")")).toBe(
      "SET PASSWORD FOR 'a'@'h' = PASSWORD('<redacted>')",
    );
    expect(redactSecrets("CREATE USER x@h IDENTIFIED VIA ed25519 USING 'hash' OR unix_socket")).toBe(
      "CREATE USER x@h IDENTIFIED VIA ed25519 USING '<redacted>' OR unix_socket",
    );
    expect(redactSecrets("GRANT SELECT ON *.* TO 'a'@'%' IDENTIFIED BY 'pw'")).not.toContain('pw');
  });
  it('leaves statements without secrets unchanged', () => {
    const s = "CREATE VIEW v AS SELECT 'x' AS c";
    expect(redactSecrets(s)).toBe(s);
  });
  it('drops the statement quote of a server message', () => {
    const m = "You have an error in your SQL syntax; check the manual near 'IDENTIFIED BY 'pw' x' at line 1";
    expect(redactServerMessage(m)).not.toContain('pw');
    expect(redactServerMessage("Operation CREATE USER failed for 'a'@'%'")).toBe(
      "Operation CREATE USER failed for 'a'@'%'",
    );
  });
});
