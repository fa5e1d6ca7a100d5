import { describe, expect, it } from 'vitest';
import type { Column, RowsEntry, Value } from '../../record/record.ts';
import { epochText, IMPLICIT_PERIOD, isCurrentRowEnd, systemPeriodOf } from '../../record/versioning.ts';
import { type StatementBatch, StatementBatcher } from './batcher.ts';

const MAX = '2038-01-19 03:14:07.999999';
const T1 = '2026-01-02 03:04:05.000001';
const T2 = '2026-01-02 03:04:06.500000';

const cols: Column[] = [
  { name: 'id', type: 'int' },
  { name: 'v', type: 'varchar' },
  { name: 'row_start', type: 'timestamp', columnType: 'timestamp(6)' },
  { name: 'row_end', type: 'timestamp', columnType: 'timestamp(6)' },
];

function rows(op: RowsEntry['op'], seq: bigint, images: RowsEntry['rows']): RowsEntry {
  return {
    kind: 'rows',
    source: 'src',
    seq,
    txId: 't',
    schema: 's',
    table: 'h',
    op,
    columns: cols,
    pk: ['id', 'row_end'],
    rows: images,
  };
}

function drain(entries: RowsEntry[], skip = new Set<string>()): StatementBatch[] {
  const b = new StatementBatcher({ noPrimaryKey: 'full-row', flavor: 'mariadb' });
  const out: StatementBatch[] = [];
  for (const e of entries) {
    for (const s of b.push(e, skip, IMPLICIT_PERIOD)) out.push(s);
    const rest = b.flush();
    if (rest) out.push(rest);
  }
  return out;
}

describe('record/versioning', () => {
  it('finds the period columns in SHOW CREATE TABLE', () => {
    expect(
      systemPeriodOf('CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB WITH SYSTEM VERSIONING'),
    ).toEqual(IMPLICIT_PERIOD);
    const explicit =
      "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `r``s` timestamp(6) GENERATED ALWAYS AS ROW START COMMENT 'WITH SYSTEM VERSIONING',\n" +
      '  `re` timestamp(6) GENERATED ALWAYS AS ROW END,\n  PERIOD FOR SYSTEM_TIME (`r``s`, `re`)\n) WITH SYSTEM VERSIONING';
    expect(systemPeriodOf(explicit)).toEqual({ start: 'r`s', end: 're', implicit: false });
    expect(systemPeriodOf("CREATE TABLE `t` (`c` int COMMENT 'WITH SYSTEM VERSIONING')")).toBeNull();
  });

  it('recognizes current rows and converts timestamps exactly', () => {
    expect(isCurrentRowEnd(MAX)).toBe(true);
    expect(isCurrentRowEnd(T1)).toBe(false);
    expect(epochText('1970-01-01 00:00:01.5')).toBe('1.500000');
    expect(epochText(T1)).toBe('1767323045.000001');
    expect(epochText('nonsense')).toBeNull();
  });
});

describe('batcher on a system-versioned table', () => {
  const cur = (v: string, start: string): Value[] => [1n, v, start, MAX];

  it('inserts write the period columns with system_versioning_insert_history', () => {
    const [b] = drain([rows('insert', 1n, [{ before: null, after: cur('a', T1) }])], new Set(['row_start']));
    expect(b?.sql).toBe(
      'SET STATEMENT system_versioning_insert_history = 1 FOR INSERT INTO `s`.`h` (`id`,`v`,`row_start`,`row_end`) ' +
        `VALUES (1,'a','${T1}','${MAX}')`,
    );
  });

  it('an update runs at the new row_start and the history row the replica writes itself is skipped', () => {
    const out = drain([
      rows('update', 1n, [{ before: cur('a', T1), after: cur('b', T2) }]),
      rows('insert', 2n, [
        { before: null, after: [1n, 'a', T1, T2] }, // written by the replica's own UPDATE
        { before: null, after: [1n, 'z', '2020-01-01 00:00:00.000000', T1] }, // a genuine history insert
      ]),
    ]);
    expect(out[0]?.sql).toBe(
      "SET STATEMENT timestamp = 1767323046.500000 FOR UPDATE `s`.`h` SET `v` = 'b' WHERE `id` = 1 AND `row_end` = " +
        `'${MAX}'`,
    );
    expect(out[1]?.rows).toBe(1);
    expect(out[1]?.seqs).toEqual([3n]);
    expect(out[1]?.sql).toContain("VALUES (1,'z',");
  });

  it('a current row that becomes history is a DELETE at the new row_end', () => {
    const [b] = drain([rows('update', 1n, [{ before: cur('a', T1), after: [1n, 'a', T1, T2] }])]);
    expect(b?.sql).toBe(
      `SET STATEMENT timestamp = 1767323046.500000 FOR DELETE FROM \`s\`.\`h\` WHERE \`id\` = 1 AND \`row_end\` = '${MAX}'`,
    );
  });

  it('deleted history rows become one DELETE HISTORY whose count is checked; changed history is refused', () => {
    const [b] = drain([
      rows('delete', 1n, [
        { before: [1n, 'a', '2020-01-01 00:00:00.000000', T1], after: null },
        { before: [2n, 'a', '2020-01-01 00:00:00.000000', T2], after: null },
      ]),
    ]);
    expect(b?.kind).toBe('history');
    expect(b?.rows).toBe(2);
    expect(b?.sql).toBe('DELETE HISTORY FROM `s`.`h` BEFORE SYSTEM_TIME FROM_UNIXTIME(1767323046.500001)');
    expect(() => drain([rows('update', 1n, [{ before: [1n, 'a', T1, T2], after: [1n, 'b', T1, T2] }])])).toThrow(
      /history row/,
    );
    expect(() => drain([rows('delete', 1n, [{ before: cur('a', T1), after: null }])])).toThrow(/current row/);
  });
});

describe('batcher and ENUM index 0', () => {
  const ecols: Column[] = [
    { name: 'id', type: 'int' },
    { name: 'e', type: 'enum', columnType: "enum('','a')" },
  ];
  const e = (op: RowsEntry['op'], images: RowsEntry['rows']): RowsEntry => ({
    kind: 'rows',
    source: 'src',
    seq: 1n,
    txId: 't',
    schema: 's',
    table: 'e',
    op,
    columns: ecols,
    pk: ['id'],
    rows: images,
  });

  it('writes index 0 (0n) without strict mode, only in statements that need it', () => {
    const b = new StatementBatcher({ noPrimaryKey: 'full-row', flavor: 'mariadb' });
    const ins = [...b.push(e('insert', [{ before: null, after: [1n, 0n] }]))];
    const i = ins[0] ?? b.flush();
    expect(i?.sql).toBe(
      "SET STATEMENT sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION' FOR INSERT INTO `s`.`e` (`id`,`e`) VALUES (1,0)",
    );
    const plain = [...b.push(e('insert', [{ before: null, after: [2n, ''] }]))][0] ?? b.flush();
    expect(plain?.sql).toBe("INSERT INTO `s`.`e` (`id`,`e`) VALUES (2,'')");
    const upd = [...b.push(e('update', [{ before: [1n, 'a'], after: [1n, 0n] }]))][0] ?? b.flush();
    expect(upd?.sql).toMatch(/^SET STATEMENT sql_mode = '[A-Z_,]+' FOR UPDATE `s`.`e` SET `e` = 0 WHERE `id` = 1$/);
  });

  it('on MySQL with the SET_VAR hint', () => {
    const b = new StatementBatcher({ noPrimaryKey: 'full-row', flavor: 'mysql' });
    const ins = [...b.push(e('insert', [{ before: null, after: [1n, 0n] }]))][0] ?? b.flush();
    expect(ins?.sql).toBe(
      "INSERT /*+ SET_VAR(sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION') */ INTO `s`.`e` (`id`,`e`) VALUES (1,0)",
    );
    const upd = [...b.push(e('update', [{ before: [1n, 'a'], after: [1n, 0n] }]))][0] ?? b.flush();
    expect(upd?.sql).toMatch(
      /^UPDATE \/\*\+ SET_VAR\(sql_mode = '[A-Z_,]+'\) \*\/ `s`.`e` SET `e` = 0 WHERE `id` = 1$/,
    );
  });
});
