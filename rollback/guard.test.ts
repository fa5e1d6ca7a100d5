import { describe, expect, it } from 'vitest';
import type { Column, RowImage, RowsEntry, Value } from '../record/record.ts';
import { type GuardedStatement, guardedStatements, oneLine } from './guard.ts';

const col = (name: string, type: string, columnType = type): Column => ({ name, type, columnType });

const COLS: Column[] = [col('id', 'int'), col('na`me', 'varchar'), col('b', 'blob'), col('f', 'float')];

function entry(op: RowsEntry['op'], rows: RowImage[], over: Partial<RowsEntry> = {}): RowsEntry {
  return {
    kind: 'rows',
    source: 'src',
    seq: 100n,
    txId: '0-1-55',
    schema: 's',
    table: 't`x',
    op,
    columns: COLS,
    pk: ['id'],
    rows,
    ...over,
  };
}

const row = (id: bigint, name: string | null, b: Uint8Array | null = null, f: number | null = null): Value[] => [
  id,
  name,
  b,
  f,
];

function all(e: RowsEntry, dir: 'undo' | 'redo', opts: Partial<Parameters<typeof guardedStatements>[2]> = {}) {
  return [...guardedStatements(e, dir, { flavor: 'mariadb', txId: e.txId, ...opts })];
}

const T = '`s`.`t``x`';

/** The statement's fields (sql and what of a batchable row are getters), without its batch data. */
const plain = (s: GuardedStatement) => ({ sql: s.sql, expect: s.expect, what: s.what, seq: s.seq, kind: s.kind });

describe('guardedStatements: redo', () => {
  it('insert: one multi-row INSERT with every row, expect = rows', () => {
    const e = entry('insert', [
      { before: null, after: row(1n, "a'b", new Uint8Array([0, 255])) },
      { before: null, after: row(2n, null) },
    ]);
    const s = all(e, 'redo');
    expect(s).toHaveLength(1);
    expect(s[0]).toEqual({
      sql: `INSERT INTO ${T} (\`id\`,\`na\`\`me\`,\`b\`,\`f\`) VALUES (1,'a\\'b',X'00FF',NULL),(2,NULL,NULL,NULL)`,
      expect: 2,
      what: 'redo insert of `s`.`t``x` (2 rows: id=1 ... id=2) at seq 100..101 of tx 0-1-55',
      seq: 100n,
      kind: 'insert',
    });
  });

  it('delete: per row, key with = and every other column with <=>', () => {
    const e = entry('delete', [{ before: row(7n, null, new Uint8Array([1]), 0.1), after: null }]);
    const [s] = all(e, 'redo');
    expect(plain(s!)).toEqual({
      sql: `DELETE FROM ${T} WHERE \`id\` = 7 AND \`na\`\`me\` <=> NULL AND \`b\` <=> X'01' AND \`f\` <=> ${Math.fround(0.1)}e0`,
      expect: 1,
      what: 'redo delete of `s`.`t``x` (id=7) at seq 100 of tx 0-1-55',
      seq: 100n,
      kind: 'delete',
    });
  });

  it('update: SET only changed columns, WHERE the before image (the key may move)', () => {
    const e = entry('update', [{ before: row(1n, 'a'), after: row(2n, 'a') }]);
    const [s] = all(e, 'redo');
    expect(s!.sql).toBe(
      `UPDATE ${T} SET \`id\` = 2 WHERE \`id\` = 1 AND \`na\`\`me\` <=> 'a' AND \`b\` <=> NULL AND \`f\` <=> NULL`,
    );
    expect(s!.noop).toBeUndefined();
    expect(s!.expect).toBe(1);
  });
});

describe('guardedStatements: undo', () => {
  it('insert → DELETE of the after images, newest row first', () => {
    const e = entry('insert', [
      { before: null, after: row(1n, 'a') },
      { before: null, after: row(2n, 'b') },
    ]);
    const s = all(e, 'undo');
    expect(s.map((x) => [x.kind, x.seq])).toEqual([
      ['delete', 101n],
      ['delete', 100n],
    ]);
    expect(s[0]!.sql).toBe(
      `DELETE FROM ${T} WHERE \`id\` = 2 AND \`na\`\`me\` <=> 'b' AND \`b\` <=> NULL AND \`f\` <=> NULL`,
    );
    expect(s[0]!.what).toBe('undo insert of `s`.`t``x` (id=2) at seq 101 of tx 0-1-55');
  });

  it('delete → INSERT of the before images in reverse order', () => {
    const e = entry('delete', [
      { before: row(1n, 'a'), after: null },
      { before: row(2n, 'b'), after: null },
      { before: row(3n, 'c'), after: null },
    ]);
    const s = all(e, 'undo');
    expect(s).toHaveLength(1);
    expect(s[0]!.sql).toBe(
      `INSERT INTO ${T} (\`id\`,\`na\`\`me\`,\`b\`,\`f\`) VALUES (3,'c',NULL,NULL),(2,'b',NULL,NULL),(1,'a',NULL,NULL)`,
    );
    expect(s[0]!.seq).toBe(102n);
    expect(s[0]!.what).toBe('undo delete of `s`.`t``x` (3 rows: id=3 ... id=1) at seq 100..102 of tx 0-1-55');
  });

  it('update → UPDATE from the after image back to the before image, rows reversed', () => {
    const e = entry('update', [
      { before: row(1n, 'a'), after: row(1n, 'b') },
      { before: row(2n, 'x'), after: row(5n, 'x') },
    ]);
    const s = all(e, 'undo');
    expect(s.map((x) => x.sql)).toEqual([
      `UPDATE ${T} SET \`id\` = 2 WHERE \`id\` = 5 AND \`na\`\`me\` <=> 'x' AND \`b\` <=> NULL AND \`f\` <=> NULL`,
      `UPDATE ${T} SET \`na\`\`me\` = 'a' WHERE \`id\` = 1 AND \`na\`\`me\` <=> 'b' AND \`b\` <=> NULL AND \`f\` <=> NULL`,
    ]);
    expect(s.map((x) => x.seq)).toEqual([101n, 100n]);
  });

  it('fromRow/toRow select a range (undo: still newest first)', () => {
    const rows = [1n, 2n, 3n, 4n].map((id) => ({ before: row(id, 'a'), after: null }));
    const s = all(entry('delete', rows), 'undo', { fromRow: 1, toRow: 3 });
    expect(s[0]!.sql).toMatch(/VALUES \(3,.*\),\(2,.*\)$/);
    expect(s[0]!.expect).toBe(2);
    expect(all(entry('delete', rows), 'redo', { fromRow: 2, toRow: 2 })).toEqual([]);
  });
});

describe('guardedStatements: special cases', () => {
  it('a no-op update is flagged and carries a locking existence check', () => {
    const e = entry('update', [{ before: row(1n, 'a'), after: row(1n, 'a') }]);
    const [s] = all(e, 'undo') as [GuardedStatement];
    expect(s.noop).toBe(true);
    expect(s.sql).toMatch(/^UPDATE `s`.`t``x` SET `id` = 1, `na``me` = 'a', `b` = NULL, `f` = NULL WHERE `id` = 1 /);
    expect(s.exists).toBe(
      `SELECT 1 FROM ${T} WHERE \`id\` = 1 AND \`na\`\`me\` <=> 'a' AND \`b\` <=> NULL AND \`f\` <=> NULL FOR UPDATE`,
    );
  });

  it('tables without a primary key: the whole row with <=> and LIMIT 1', () => {
    const e = entry('update', [{ before: row(1n, null), after: row(1n, 'z') }], { pk: [] });
    const [s] = all(e, 'redo');
    expect(s!.sql).toBe(
      `UPDATE ${T} SET \`na\`\`me\` = 'z' WHERE \`id\` <=> 1 AND \`na\`\`me\` <=> NULL AND \`b\` <=> NULL AND \`f\` <=> NULL LIMIT 1`,
    );
    expect(s!.what).toBe('redo update of `s`.`t``x` (id=1, na`me=NULL, b=NULL, f=NULL) at seq 100 of tx 0-1-55');
    const [d] = all(entry('insert', [{ before: null, after: row(1n, null) }], { pk: [] }), 'undo');
    expect(d!.sql).toMatch(/^DELETE FROM .* LIMIT 1$/);
  });

  it('skipped (generated) columns are neither written nor compared', () => {
    const skipColumns = new Set(['b']);
    const [u] = all(entry('update', [{ before: row(1n, 'a', new Uint8Array([1])), after: row(1n, 'b') }]), 'redo', {
      skipColumns,
    });
    expect(u!.sql).toBe(
      `UPDATE ${T} SET \`na\`\`me\` = 'b' WHERE \`id\` = 1 AND \`na\`\`me\` <=> 'a' AND \`f\` <=> NULL`,
    );
    const [i] = all(entry('delete', [{ before: row(1n, 'a', new Uint8Array([1])), after: null }]), 'undo', {
      skipColumns,
    });
    expect(i!.sql).toBe(`INSERT INTO ${T} (\`id\`,\`na\`\`me\`,\`f\`) VALUES (1,'a',NULL)`);
    // Only a generated column differs: nothing to write, a no-op.
    const [n] = all(entry('update', [{ before: row(1n, 'a', new Uint8Array([1])), after: row(1n, 'a') }]), 'redo', {
      skipColumns,
    });
    expect(n!.noop).toBe(true);
  });

  it('timestamp and datetime columns are always set (ON UPDATE CURRENT_TIMESTAMP)', () => {
    const cols = [col('id', 'int'), col('v', 'int'), col('ts', 'timestamp')];
    const ts = '2024-01-01 00:00:00.000000';
    const e = entry('update', [{ before: [1n, 1n, ts], after: [1n, 2n, ts] }], { columns: cols });
    expect(all(e, 'redo')[0]!.sql).toBe(
      `UPDATE ${T} SET \`v\` = 2, \`ts\` = '${ts}' WHERE \`id\` = 1 AND \`v\` <=> 1 AND \`ts\` <=> '${ts}'`,
    );
  });

  it('MySQL compares JSON as JSON', () => {
    const cols = [col('id', 'int'), col('j', 'json')];
    const e = entry('delete', [{ before: [1n, '{"a": 1}'], after: null }], { columns: cols });
    const [m] = all(e, 'redo', { flavor: 'mysql' });
    expect(m!.sql).toBe(`DELETE FROM ${T} WHERE \`id\` = 1 AND \`j\` <=> CAST('{"a": 1}' AS JSON)`);
    expect(all(e, 'redo')[0]!.sql).toBe(`DELETE FROM ${T} WHERE \`id\` = 1 AND \`j\` <=> '{"a": 1}'`);
  });

  it('INSERTs are split by rows and by bytes', () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ before: null, after: row(BigInt(i), 'x'.repeat(100)) }));
    expect(all(entry('insert', rows), 'redo', { maxRows: 4 }).map((s) => s.expect)).toEqual([4, 4, 2]);
    const byBytes = all(entry('insert', rows), 'redo', { maxBytes: 350 });
    expect(byBytes.map((s) => s.expect)).toEqual([2, 2, 2, 2, 2]);
    expect(byBytes.map((s) => s.seq)).toEqual([100n, 102n, 104n, 106n, 108n]);
    // A single row larger than the limit goes alone.
    expect(all(entry('insert', rows.slice(0, 2)), 'redo', { maxBytes: 10 }).map((s) => s.expect)).toEqual([1, 1]);
  });

  it('what stays on one line: control characters in names and ids are escaped', () => {
    const e = entry('delete', [{ before: row(1n, 'a\nb'), after: null }], { table: 'x\ny', txId: 'a\rb' });
    const [s] = all(e, 'redo');
    expect(s!.what).toBe('redo delete of `s`.`x\\x0ay` (id=1) at seq 100 of tx a\\x0db');
    expect(s!.sql).toContain("<=> 'a\\nb'");
    expect(oneLine('tab\there\u2028')).toBe('tab\\x09here\\x2028');
  });

  it('refuses a missing image or an unknown key column', () => {
    expect(() => all(entry('delete', [{ before: null, after: null }]), 'redo')).toThrow(/before image is missing/);
    expect(() => all(entry('delete', [{ before: row(1n, 'a'), after: null }], { pk: ['nope'] }), 'redo')).toThrow(
      /key column nope/,
    );
    expect(() => all(entry('insert', [{ before: null, after: [1n] }]), 'redo')).toThrow(
      /after image has 1 values for 4 columns/,
    );
  });
});

describe('guardedStatements: batch data (MariaDB)', () => {
  const rows = [
    { before: row(1n, 'a', new Uint8Array([1]), 0.5), after: row(1n, 'b', new Uint8Array([1]), 0.5) },
    { before: row(2n, null), after: row(2n, 'c') },
  ];

  it('UPDATE/DELETE rows of an integer-keyed table carry their constructor row', () => {
    const [u2, u1] = all(entry('update', rows), 'undo');
    expect(u2!.batch?.tuple).toBe("(2,'c',NULL,NULL,NULL)");
    expect(u1!.batch?.tuple).toBe(`(1,'b',X'01',0.5e0,'a')`);
    expect(u1!.batch?.key).toBe('1');
    expect(u1!.batch?.txId).toBe('0-1-55');
    expect(u1!.batch?.shape).toBe(u2!.batch?.shape);
    expect(u1!.batch?.shape.head).toBe('undo update of `s`.`t``x`');
    // The per-row text is unchanged (built on first use).
    expect(u1!.sql).toBe(
      `UPDATE ${T} SET \`na\`\`me\` = 'a' WHERE \`id\` = 1 AND \`na\`\`me\` <=> 'b' AND \`b\` <=> X'01' AND \`f\` <=> 0.5e0`,
    );
    expect(u1!.what).toBe('undo update of `s`.`t``x` (id=1) at seq 100 of tx 0-1-55');
    const [d] = all(entry('delete', [{ before: row(7n, 'x'), after: null }]), 'redo');
    expect(d!.batch?.tuple).toBe("(7,'x',NULL,NULL)");
    expect(d!.batch?.shape.describe(row(7n, 'x'))).toBe('id=7');
  });

  it('rows whose set of written columns differs get another shape', () => {
    const e = entry('update', [
      { before: row(1n, 'a'), after: row(1n, 'b') },
      { before: row(2n, 'a', null, 1), after: row(2n, 'a', null, 2) },
    ]);
    const [a, b] = all(e, 'redo');
    expect(a!.batch!.shape.group).not.toBe(b!.batch!.shape.group);
  });

  it('what stays per-row: MySQL, no primary key, key moves, no-op updates, other key types, odd values', () => {
    expect(all(entry('update', rows), 'redo', { flavor: 'mysql' })[0]!.batch).toBeUndefined();
    expect(all(entry('update', rows, { pk: [] }), 'redo')[0]!.batch).toBeUndefined();
    const move = entry('update', [{ before: row(1n, 'a'), after: row(2n, 'a') }]);
    expect(all(move, 'redo')[0]!.batch).toBeUndefined();
    const noop = entry('update', [{ before: row(1n, 'a'), after: row(1n, 'a') }]);
    expect(all(noop, 'redo')[0]!.batch).toBeUndefined();
    // A text key: a collation may make two different keys the same row.
    const textKey = entry('delete', [{ before: row(1n, 'a'), after: null }], { pk: ['na`me'] });
    expect(all(textKey, 'redo')[0]!.batch).toBeUndefined();
    // A binary key is exact.
    const binKey = entry('delete', [{ before: row(1n, 'a', new Uint8Array([9])), after: null }], { pk: ['b'] });
    expect(all(binKey, 'redo')[0]!.batch?.key).toBe("X'09'");
    // A value of another kind than the column's class (bytes in a text column) would change the column's type.
    const odd = entry('delete', [{ before: [1n, new Uint8Array([1]), null, null], after: null }]);
    expect(all(odd, 'redo')[0]!.batch).toBeUndefined();
    // A column of a type the batch does not know (geometry) keeps the table per-row.
    const geo = entry('delete', [{ before: row(1n, 'a'), after: null }], {
      columns: [...COLS.slice(0, 3), col('f', 'geometry')],
    });
    expect(all(geo, 'redo')[0]!.batch).toBeUndefined();
    // A value of 64 KiB or more, held or written: MariaDB cuts long binary literals in a value list (batch-sql.ts).
    const long = (n: number) =>
      entry('update', [{ before: row(1n, 'a', new Uint8Array(1)), after: row(1n, 'a', new Uint8Array(n)) }]);
    expect(all(long(65_535), 'redo')[0]!.batch).toBeDefined();
    expect(all(long(65_536), 'redo')[0]!.batch).toBeUndefined();
    expect(all(long(65_536), 'undo')[0]!.batch).toBeUndefined();
  });

  it('generated columns are left out of the constructor row', () => {
    const [d] = all(entry('delete', [{ before: row(1n, 'a', new Uint8Array([1]), 2), after: null }]), 'redo', {
      skipColumns: new Set(['b']),
    });
    expect(d!.batch?.tuple).toBe("(1,'a',2e0)");
  });
});

describe('guardedStatements: ENUM index 0', () => {
  const ecols: Column[] = [col('id', 'int'), col('e', 'enum', "enum('','a')")];
  const e = (op: RowsEntry['op'], rows: RowImage[]) => entry(op, rows, { columns: ecols });
  const ZERO = "SET STATEMENT sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION' FOR ";

  it('writes index 0 (0n) without strict mode, alone; other statements stay strict', () => {
    // Undo of an update that left index 0: the row goes back to 'a' (strict is fine), and vice versa.
    const [back] = all(e('update', [{ before: [1n, 0n], after: [1n, 'a'] }]), 'undo');
    expect(back?.sql).toBe(`${ZERO}UPDATE ${T} SET \`e\` = 0 WHERE \`id\` = 1 AND \`e\` <=> 'a'`);
    expect(back?.batch).toBeUndefined();
    const [redo] = all(e('update', [{ before: [1n, 0n], after: [1n, 'a'] }]), 'redo');
    expect(redo?.sql).not.toContain('SET STATEMENT');
    // Undo of a delete re-inserts the row with its index 0.
    const [ins] = all(e('delete', [{ before: [2n, 0n], after: null }]), 'undo');
    expect(ins?.sql).toBe(`${ZERO}INSERT INTO ${T} (\`id\`,\`e\`) VALUES (2,0)`);
    const [plainIns] = all(e('delete', [{ before: [3n, ''], after: null }]), 'undo');
    expect(plainIns?.sql).toBe(`INSERT INTO ${T} (\`id\`,\`e\`) VALUES (3,'')`);
  });
});
