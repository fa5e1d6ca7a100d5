import { describe, expect, it } from 'vitest';
import { classifyStatement } from './ddl.ts';

const dml = (sql: string, db = 'd') => {
  const c = classifyStatement(sql, db);
  if (c.kind !== 'dml') return c.kind;
  return { statement: c.statement, tables: c.tables.map((t) => `${t.schema}.${t.table}`), unknown: c.unknownTarget };
};

describe('classifyStatement: statement-logged DML', () => {
  it('names the target of INSERT / REPLACE, with or without SELECT', () => {
    expect(dml('INSERT INTO t VALUES (1)')).toEqual({ statement: 'INSERT', tables: ['d.t'], unknown: false });
    expect(dml('insert low_priority ignore into `a`.`b` (x) values (1)')).toMatchObject({ tables: ['a.b'] });
    expect(dml('INSERT t SET x = 1')).toMatchObject({ statement: 'INSERT', tables: ['d.t'] });
    expect(dml('INSERT INTO app.t SELECT id, v FROM other.s')).toEqual({
      statement: 'INSERT … SELECT',
      tables: ['app.t'],
      unknown: false,
    });
    expect(dml('INSERT INTO t (a) VALUES ((SELECT 1))')).toMatchObject({ statement: 'INSERT' });
    expect(dml('REPLACE INTO x.y VALUES (1)')).toMatchObject({ statement: 'REPLACE', tables: ['x.y'] });
  });

  it('names every table of UPDATE, single and multi-table', () => {
    expect(dml('UPDATE t SET v = v + 1 WHERE id IN (SELECT id FROM other.z)')).toEqual({
      statement: 'UPDATE',
      tables: ['d.t'],
      unknown: false,
    });
    expect(dml('UPDATE app.t a JOIN other.x b ON a.id = b.id SET a.v = 9, b.v = 9')).toEqual({
      statement: 'multi-table UPDATE',
      tables: ['app.t', 'other.x'],
      unknown: false,
    });
    expect(dml('UPDATE LOW_PRIORITY a, b AS bb, (SELECT 1 AS id) d SET a.x = 1')).toMatchObject({
      tables: ['d.a', 'd.b'],
    });
    expect(dml('UPDATE (x.p LEFT JOIN x.q USING (id)) STRAIGHT_JOIN x.r ON 1 SET p.v = 1')).toMatchObject({
      tables: ['x.p', 'x.q', 'x.r'],
    });
  });

  it('names the tables after FROM / USING of DELETE, not subqueries', () => {
    expect(dml('DELETE FROM t WHERE id IN (SELECT id FROM other.z)')).toEqual({
      statement: 'DELETE',
      tables: ['d.t'],
      unknown: false,
    });
    expect(dml('DELETE a FROM app.t a WHERE id > 100')).toMatchObject({ tables: ['app.t'] });
    expect(dml('DELETE QUICK a, b FROM app.t a JOIN other.u b ON a.id = b.id')).toEqual({
      statement: 'multi-table DELETE',
      tables: ['app.t', 'other.u'],
      unknown: false,
    });
    expect(dml('DELETE FROM a, b USING x.a JOIN x.b USING (id) WHERE 1')).toMatchObject({
      statement: 'multi-table DELETE',
      tables: ['d.a', 'd.b', 'x.a', 'x.b'],
    });
  });

  it('reads LOAD DATA as the binlog shows it (Execute_load_query info)', () => {
    expect(
      dml("LOAD DATA INFILE '/tmp/f.txt' INTO TABLE `t` FIELDS TERMINATED BY '\\t' (`id`, `v`) ;file_id=1", 'app'),
    ).toEqual({ statement: 'LOAD DATA', tables: ['app.t'], unknown: false });
    expect(dml("LOAD DATA LOCAL INFILE 'x' REPLACE INTO TABLE o.t")).toMatchObject({ tables: ['o.t'] });
  });

  it('marks statements whose target cannot be told', () => {
    expect(dml('SELECT `app`.`f`(1)')).toEqual({ statement: 'SELECT', tables: [], unknown: true });
    expect(dml('DO f()')).toMatchObject({ unknown: true });
    expect(dml('INSERT INTO')).toMatchObject({ unknown: true });
  });

  it('leaves DDL and administrative statements alone', () => {
    expect(dml('CREATE TABLE t SELECT 1')).toBe('table-ddl');
    expect(dml('CREATE OR REPLACE TABLE t (id int)')).toBe('table-ddl');
    expect(dml('GRANT SELECT ON *.* TO x')).toBe('other');
    expect(dml('SAVEPOINT s')).toBe('other');
  });
});
