import { describe, expect, it } from 'vitest';
import { canSelectSchema, hasGlobal, likeMatch, missingObjectPrivileges, parseGrants } from './grants.ts';

const CAP_GRANTS = [
  "GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR ON *.* TO `tidemark_cap`@`127.0.0.1` IDENTIFIED BY PASSWORD '*2B3FF1EAD94E728B80EEC7C8D31F180D1A085246'",
];

describe('grants', () => {
  it('parses global, schema and table grants without keeping the password hash', () => {
    const g = parseGrants([
      ...CAP_GRANTS,
      'GRANT SELECT, INSERT ON `shop\\_1`.* TO `u`@`%`',
      'GRANT SELECT (`a`), UPDATE ON `crm`.`t` TO `u`@`%`',
      'GRANT `reporting` TO `u`@`%`',
    ]);
    expect([...g.global].sort()).toEqual(['BINLOG MONITOR', 'REPLICATION SLAVE', 'SELECT', 'SLAVE MONITOR']);
    expect(g.schemas).toEqual([{ pattern: 'shop\\_1', privileges: new Set(['SELECT', 'INSERT']) }]);
    expect(g.tables).toEqual([{ schema: 'crm', table: 't', privileges: new Set(['UPDATE']) }]);
    expect(g.hasRoles).toBe(true);
    expect(JSON.stringify({ ...g, global: [...g.global] })).not.toContain('2B3FF1');
  });

  it('matches schema grant patterns like the server (LIKE with escapes)', () => {
    expect(likeMatch('shop\\_1', 'shop_1')).toBe(true);
    expect(likeMatch('shop\\_1', 'shopX1')).toBe(false);
    expect(likeMatch('shop_1', 'shopX1')).toBe(true);
    expect(likeMatch('app%', 'app_prod')).toBe(true);
    const g = parseGrants(['GRANT SELECT ON `app%`.* TO `u`@`%`']);
    expect(canSelectSchema(g, 'app_prod')).toBe(true);
    expect(canSelectSchema(g, 'crm')).toBe(false);
  });

  it('ALL PRIVILEGES stands for every privilege; a column grant gives no table-wide access', () => {
    const g = parseGrants(['GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`']);
    expect(hasGlobal(g, 'REPLICATION SLAVE')).toBe(true);
    expect(canSelectSchema(g, 'any')).toBe(true);
    const col = parseGrants(['GRANT SELECT (`a`) ON `crm`.`t` TO `u`@`%`']);
    expect(canSelectSchema(col, 'crm')).toBe(false);
    expect(hasGlobal(col, 'SELECT')).toBe(false);
  });
});

describe('missingObjectPrivileges', () => {
  it('names SHOW VIEW, TRIGGER, EVENT unless held globally or on the schema', () => {
    const g = parseGrants([
      "GRANT SELECT, REPLICATION SLAVE ON *.* TO 'c'@'h'",
      "GRANT SHOW VIEW, TRIGGER ON `sh%`.* TO 'c'@'h'",
      "GRANT EVENT ON `shop`.`t` TO 'c'@'h'",
    ]);
    expect(missingObjectPrivileges(g, 'shop')).toEqual(['EVENT']);
    expect(missingObjectPrivileges(g, 'other')).toEqual(['SHOW VIEW', 'TRIGGER', 'EVENT']);
    expect(missingObjectPrivileges(parseGrants(["GRANT ALL PRIVILEGES ON *.* TO 'r'@'h'"]), 'x')).toEqual([]);
  });
});
