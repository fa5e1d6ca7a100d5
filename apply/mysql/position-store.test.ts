import { describe, expect, it } from 'vitest';
import { preparePosition } from './position-store.ts';

/** A query function that answers the table-state query with `state` and records every statement. */
function fakeServer(state: { has_table: number | string; has_hold: number | string }) {
  const statements: string[] = [];
  const q = async (sql: string): Promise<unknown> => {
    statements.push(sql);
    if (sql.includes('information_schema.COLUMNS')) return [state];
    if (sql.startsWith('SELECT')) return [{ seq: null, hold: 'held by a test' }];
    return { affectedRows: 0 };
  };
  const ddl = () => statements.filter((s) => /^(CREATE|ALTER)\b/.test(s));
  return { q, statements, ddl };
}

describe('preparePosition', () => {
  it('issues no DDL for a table that is up to date (CREATE IF NOT EXISTS would reach the binlog)', async () => {
    const s = fakeServer({ has_table: 1, has_hold: '1' });
    const stored = await preparePosition(s.q, 'orders');
    expect(s.ddl()).toEqual([]);
    expect(s.statements.some((x) => x.startsWith('INSERT IGNORE INTO `tidemark`.`applied_position`'))).toBe(true);
    expect(stored.hold).toBe('held by a test');
  });

  it('creates the schema and the table when missing, and only adds `hold` to an older table', async () => {
    const missing = fakeServer({ has_table: 0, has_hold: 0 });
    await preparePosition(missing.q, 'orders');
    expect(missing.ddl().map((x) => x.split('(')[0]?.trim())).toEqual([
      'CREATE DATABASE IF NOT EXISTS `tidemark` CHARACTER SET utf8mb4',
      'CREATE TABLE IF NOT EXISTS `tidemark`.`applied_position`',
    ]);
    const older = fakeServer({ has_table: '1', has_hold: '0' });
    await preparePosition(older.q, 'orders');
    expect(older.ddl()).toEqual(['ALTER TABLE `tidemark`.`applied_position` ADD COLUMN hold VARCHAR(512) NULL']);
  });
});
