import { describe, expect, it } from 'vitest';
import { createTableFilter, globToRegExp, literalSchemas } from './table-filter.ts';

describe('globToRegExp', () => {
  it('handles * and ? and escapes everything else', () => {
    expect(globToRegExp('a*').test('abc')).toBe(true);
    expect(globToRegExp('a?c').test('abc')).toBe(true);
    expect(globToRegExp('a?c').test('abbc')).toBe(false);
    expect(globToRegExp('a.c').test('abc')).toBe(false);
    expect(globToRegExp('a+(b)').test('a+(b)')).toBe(true);
    expect(globToRegExp('t*').test('t`x')).toBe(true);
  });
});

describe('createTableFilter', () => {
  const f = createTableFilter(['shop.*', 'crm.cust?mers', '*.audit_*'], ['shop.tmp_*', 'crm.*_old']);

  it('includes matching tables', () => {
    expect(f.includesTable('shop', 'orders')).toBe(true);
    expect(f.includesTable('crm', 'customers')).toBe(true);
    expect(f.includesTable('crm', 'custXmers')).toBe(true);
    expect(f.includesTable('hr', 'audit_log')).toBe(true);
  });

  it('excludes non-matching and excluded tables', () => {
    expect(f.includesTable('crm', 'leads')).toBe(false);
    expect(f.includesTable('shop', 'tmp_1')).toBe(false);
    expect(f.includesTable('crm', 'customers_old')).toBe(false);
    expect(f.includesTable('Shop', 'orders')).toBe(false); // case-sensitive like the server on Linux
  });

  it('always excludes system schemas and tidemark, even with a catch-all include', () => {
    const all = createTableFilter(['*.*'], []);
    for (const s of ['mysql', 'information_schema', 'performance_schema', 'sys', 'tidemark', 'MYSQL']) {
      expect(all.includesTable(s, 'x')).toBe(false);
      expect(all.includesSchema(s)).toBe(false);
    }
    expect(all.includesTable('app', 'x')).toBe(true);
  });

  it('decides schema membership for database DDL', () => {
    expect(f.includesSchema('shop')).toBe(true);
    expect(f.includesSchema('crm')).toBe(true);
    expect(f.includesSchema('anything')).toBe(true); // *.audit_* may put tables there
    const g = createTableFilter(['shop.*', 'crm.a'], ['shop.*']);
    expect(g.includesSchema('shop')).toBe(false);
    expect(g.includesSchema('crm')).toBe(true);
    expect(g.includesSchema('other')).toBe(false);
  });

  it('handles names with backticks and dots in the table part', () => {
    const h = createTableFilter(['a.we`ird*'], []);
    expect(h.includesTable('a', 'we`ird`name')).toBe(true);
  });
});

describe('literalSchemas', () => {
  it('lists schemas spelled out by include patterns', () => {
    expect(literalSchemas(['shop.*', 'crm.a', 'x*.t', 'mysql.user', 'shop.b'])).toEqual(['crm', 'shop']);
  });
});
