/** Assembler: user/role/grant statements are journaled only for the listed accounts (source.accounts). */
import { describe, expect, it } from 'vitest';
import { asm, query } from '../../test/fixtures/assembler-items.ts';
import type { BinlogItem } from './binlog-item.ts';
import { parseAccountList } from '../../mysql/accounts.ts';

const standalone = (n: number, end: number): BinlogItem => ({
  type: 'gtid',
  gtid: `0-1-${n}`,
  standalone: true,
  xa: false,
  endOffset: BigInt(end),
});

function run(accounts: string[] | null, sql: string) {
  const mixed: [string, readonly string[]][] = [];
  const skipped: string[] = [];
  const a = asm({
    ...(accounts ? { accounts: parseAccountList(accounts) } : {}),
    onMixedAccounts: (st, l) => mixed.push([st, l]),
    onSkippedStatement: (st) => skipped.push(st),
  });
  const out = [standalone(10, 150), query(sql, 300, '')].flatMap((i) => a.feed(i));
  return { out, mixed, skipped, position: a.position.binlog.offset };
}

describe('account statements', () => {
  it('journals a statement about listed accounts as a ddl entry and its commit', () => {
    const sql = "GRANT SELECT ON app.* TO 'app'@'%', reader";
    const { out } = run(['app@%', 'reader'], sql);
    expect(out.map((o) => o.kind)).toEqual(['append', 'commit']);
    const e = out[0];
    expect(e?.kind === 'append' && e.entry).toMatchObject({ kind: 'ddl', sql, tables: [], schema: '', seq: 10n });
  });

  it('skips statements about other accounts, and every one when no accounts are listed', () => {
    for (const [list, sql] of [
      [['app@%'], "DROP USER 'other'@'%'"],
      [['app@%'], "ALTER USER 'app'@'localhost' IDENTIFIED BY 'x'"],
      [null, "CREATE USER 'app'@'%' IDENTIFIED BY 'x'"],
      [[], "CREATE USER 'app'@'%'"],
    ] as const) {
      const r = run(list ? [...list] : null, sql);
      expect(r.out).toEqual([]);
      expect(r.skipped).toHaveLength(1);
      expect(r.position).toBe(300n);
    }
  });

  it('skips and reports a statement naming listed and other accounts (or the own account)', () => {
    const r = run(['app@%'], "DROP USER 'app'@'%', 'other'@'%'");
    expect(r.out).toEqual([]);
    expect(r.mixed).toEqual([['DROP USER', ['app@%']]]);
    const g = run(['app@%'], "GRANT SELECT ON *.* TO 'app'@'%', CURRENT_USER");
    expect(g.out).toEqual([]);
    expect(g.mixed).toHaveLength(1);
  });
});
