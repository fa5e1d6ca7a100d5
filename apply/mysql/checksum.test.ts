import { describe, expect, it } from 'vitest';
import {
  boundarySql,
  chunkChecksumSql,
  columnsSql,
  keyCompare,
  keyText,
  primaryKeySql,
  rangeWhere,
  renderColumn,
  rowHashExpr,
  rowHashesSql,
  shapeDifference,
  type TableColumn,
  type TableShape,
} from './checksum.ts';

const c = (name: string, dataType: string, columnType = dataType, collation: string | null = null): TableColumn => ({
  name,
  dataType,
  columnType,
  collation,
});

const shape: TableShape = {
  schema: 's',
  table: 't`x',
  columns: [c('a', 'int'), c('b n', 'varchar', 'varchar(10)', 'utf8mb4_general_ci'), c('f', 'float'), c('bl', 'blob')],
  pk: ['a', 'b n'],
};

describe('checksum SQL', () => {
  it('renders each type canonically', () => {
    expect(renderColumn(c('x', 'int'))).toBe('CAST(`x` AS CHAR)');
    expect(renderColumn(c('x', 'decimal'))).toBe('CAST(`x` AS CHAR)');
    expect(renderColumn(c('x', 'datetime'))).toBe('CAST(`x` AS CHAR)');
    expect(renderColumn(c('x', 'float'))).toBe('CAST(CAST(`x` AS DOUBLE) AS CHAR)');
    expect(renderColumn(c('x', 'bit'))).toBe('CAST(`x` + 0 AS CHAR)');
    expect(renderColumn(c('x', 'text'))).toBe('HEX(CONVERT(`x` USING utf8mb4))');
    expect(renderColumn(c('x', 'json'))).toBe('HEX(CONVERT(`x` USING utf8mb4))');
    // ENUM: text and index (the invalid index 0 and a '' member have the same text).
    expect(renderColumn(c('x', 'enum', "enum('','a')"))).toBe("CONCAT(HEX(CONVERT(`x` USING utf8mb4)), ':', `x` + 0)");
    expect(renderColumn(c('x', 'varbinary'))).toBe('HEX(`x`)');
    expect(renderColumn(c('x`y', 'geometry'))).toBe('HEX(`x``y`)');
  });

  it('hashes rows with NULL markers and a separator no rendering contains', () => {
    expect(rowHashExpr([c('a', 'int'), c('b', 'text')])).toBe(
      "MD5(CONCAT_WS('#', COALESCE(CAST(`a` AS CHAR), 'N'), COALESCE(HEX(CONVERT(`b` USING utf8mb4)), 'N')))",
    );
  });

  it('spells keyset comparisons out so indexes are used', () => {
    const cols = [c('a', 'int'), c('b', 'varchar')];
    expect(keyCompare(cols, [1n, "x'"], '>')).toBe("(`a` > 1 OR (`a` = 1 AND `b` > 'x\\''))");
    expect(keyCompare(cols, [1n, 'x'], '<=')).toBe("(`a` < 1 OR (`a` = 1 AND `b` <= 'x'))");
    expect(keyCompare([c('a', 'decimal')], ['1.50'], '>')).toBe('`a` > 1.50');
    expect(rangeWhere(shape, null, null)).toBe('');
    expect(rangeWhere(shape, [1n, 'a'], [9n, 'z'])).toBe(
      " WHERE (`a` > 1 OR (`a` = 1 AND `b n` > 'a')) AND (`a` < 9 OR (`a` = 9 AND `b n` <= 'z'))",
    );
  });

  it('walks boundaries by offset on the primary key', () => {
    expect(boundarySql(shape, null, 1000)).toBe(
      'SELECT `a`, `b n` FROM `s`.`t``x` FORCE INDEX (PRIMARY) ORDER BY `a`, `b n` LIMIT 1 OFFSET 999',
    );
    expect(boundarySql(shape, [5n, 'q'], 1)).toContain("WHERE (`a` > 5 OR (`a` = 5 AND `b n` > 'q')) ORDER BY");
  });

  it('chunk checksums: XOR with a key, SUM without', () => {
    const x = chunkChecksumSql(shape, [1n, 'a'], null, 'xor');
    expect(x).toContain('BIT_XOR(CAST(CONV(SUBSTRING(MD5(');
    expect(x).toContain(', 1, 16), 16, 10) AS UNSIGNED))');
    expect(x).toContain(', 17, 16), 16, 10) AS UNSIGNED))');
    expect(x).toContain('CAST(COUNT(*) AS CHAR) AS n');
    expect(x).toContain("WHERE (`a` > 1 OR (`a` = 1 AND `b n` > 'a'))");
    const noPk: TableShape = { ...shape, pk: [] };
    const s = chunkChecksumSql(noPk, null, null, 'sum');
    expect(s).toContain('SUM(CAST(CONV(SUBSTRING(MD5(');
    expect(s).toContain('AS DECIMAL(20,0)))');
    expect(s).not.toContain('FORCE INDEX');
    expect(s).not.toContain('WHERE');
  });

  it('row hashes in key order with a limit', () => {
    const sql = rowHashesSql(shape, null, [3n, 'c'], 50);
    expect(sql).toMatch(
      /^SELECT `a`, `b n`, MD5\(.*\) AS tidemark_row_hash FROM `s`.`t``x` FORCE INDEX \(PRIMARY\) WHERE/,
    );
    expect(sql).toMatch(/ORDER BY `a`, `b n` LIMIT 50$/);
  });

  it('information_schema queries quote names as strings', () => {
    expect(columnsSql({ schema: "a'b", table: 't' })).toContain("TABLE_SCHEMA = 'a\\'b'");
    expect(primaryKeySql({ schema: 's', table: 't' })).toContain("INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX");
  });

  it('reports shape differences', () => {
    expect(shapeDifference(shape, shape)).toBeNull();
    expect(shapeDifference(shape, { ...shape, columns: [] })).toBe('table not found on the replica');
    const changed: TableShape = {
      ...shape,
      columns: [c('a', 'bigint'), shape.columns[1]!, shape.columns[2]!, c('extra', 'int')],
      pk: ['a'],
    };
    const why = shapeDifference(shape, changed)!;
    expect(why).toContain('column a: int on the source, bigint on the replica');
    expect(why).toContain('column bl missing on the replica');
    expect(why).toContain('column extra only on the replica');
    expect(why).toContain('primary key (a, b n) on the source, (a) on the replica');
    const coll: TableShape = {
      ...shape,
      columns: shape.columns.map((x) => (x.name === 'b n' ? { ...x, collation: 'utf8mb4_bin' } : x)),
    };
    expect(shapeDifference(shape, coll)).toContain('collation');
  });

  it('key text for reports', () => {
    expect(keyText(shape, [5n, "o'k"])).toBe("a=5, b n='o\\'k'");
  });
});

describe('system-versioned tables', () => {
  const v: TableShape = { ...shape, versioned: true };

  it('are read FOR SYSTEM_TIME ALL, history included', () => {
    expect(boundarySql(v, null, 10)).toContain('FROM `s`.`t``x` FOR SYSTEM_TIME ALL FORCE INDEX (PRIMARY)');
    expect(chunkChecksumSql({ ...v, pk: [] }, null, null, 'sum')).toMatch(/FROM `s`.`t``x` FOR SYSTEM_TIME ALL$/);
    expect(rowHashesSql(v, null, null, 5)).toContain('FOR SYSTEM_TIME ALL FORCE INDEX (PRIMARY)');
  });

  it('a table versioned on one side only differs', () => {
    expect(shapeDifference(v, shape)).toBe('system-versioned on the source only');
    expect(shapeDifference(shape, v)).toBe('system-versioned on the replica only');
  });
});
