/**
 * PostgreSQL DDL entries as rewind sees them (capture/postgres journals TRUNCATE and table DDL as DDL entries):
 * none of them is an object or account statement rewind could cross, so each is a barrier a rewind window or a
 * later-DDL check stops at.
 */
import { describe, expect, it } from 'vitest';
import { truncateSql } from '../capture/postgres/ddl-message.ts';
import { synthesizeDdl } from '../capture/postgres/shape-diff.ts';
import { crossable } from './objects.ts';

const info = (sql: string) => ({ seq: 1n, lsn: 1n, schema: 'app', sql, commitTimeUs: 0n, txId: '7:0/10' });

describe('PostgreSQL DDL entries are rewind barriers', () => {
  it('TRUNCATE, synthesized ALTER TABLE and event-trigger table DDL are not crossable', () => {
    const shape = { schema: 'app', table: 't', columns: [], pk: [], bytea: [] };
    const drop = synthesizeDdl(shape, { kind: 'dropped', columns: ['c'] }, []);
    const texts = [
      truncateSql([{ schema: 'app', table: 'b' }], false),
      truncateSql([{ schema: 'app', table: 'b' }], true),
      ...('sql' in drop ? drop.sql : []),
      'ALTER TABLE app.a RENAME COLUMN n TO n2',
      'CREATE TABLE app.c (id int PRIMARY KEY, v text)',
      'DROP TABLE app.gone',
    ];
    expect(texts).toHaveLength(6);
    for (const sql of texts) expect(crossable(info(sql)), sql).toBe(false);
  });
});
