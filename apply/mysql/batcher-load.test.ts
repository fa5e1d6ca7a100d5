import { describe, expect, it } from 'vitest';
import type { Column, RowsEntry, Value } from '../../record/record.ts';
import { type BatcherOptions, type StatementBatch, StatementBatcher } from './batcher.ts';

const COLS: Column[] = [
  { name: 'id', type: 'int' },
  { name: 'v', type: 'varchar' },
  { name: 'e', type: 'enum', columnType: "enum('a','b')" },
];

/** An insert entry of rows id = from…from+n-1, its seqs from `seq`. */
function inserts(seq: bigint, from: number, n: number, over: Partial<RowsEntry> = {}): RowsEntry {
  const rows = Array.from({ length: n }, (_, i) => ({
    before: null,
    after: [BigInt(from + i), `v'${from + i}\t`, 'a'] as Value[],
  }));
  return {
    kind: 'rows',
    source: 's',
    seq,
    txId: 't',
    schema: 's',
    table: 't',
    op: 'insert',
    columns: COLS,
    pk: ['id'],
    rows,
    ...over,
  };
}

function batches(o: Partial<BatcherOptions>, ...entries: RowsEntry[]): StatementBatch[] {
  const b = new StatementBatcher({ noPrimaryKey: 'full-row', flavor: 'mariadb', loadData: true, loadMinRows: 4, ...o });
  const out: StatementBatch[] = [];
  for (const e of entries) out.push(...b.push(e));
  const rest = b.flush();
  if (rest) out.push(rest);
  return out;
}

/** The same entries without LOAD DATA: the INSERTs every load must be equivalent to. */
const plain = (...entries: RowsEntry[]) => batches({ loadData: false, maxRows: 1_000_000 }, ...entries);

describe('StatementBatcher with loadData', () => {
  it('sends consecutive insert entries as one LOAD DATA; its INSERT, seqs and keys come from its file', () => {
    const es = [inserts(10n, 1, 3), inserts(14n, 4, 2)]; // seq 13 is the first transaction's commit
    const [b, ...rest] = batches({}, ...es);
    expect(rest).toEqual([]);
    expect(b!.kind).toBe('load');
    expect(b!.sql).toMatch(/^LOAD DATA LOCAL INFILE 'tidemark' INTO TABLE `s`.`t` .*\(`id`,`v`,`e`\)$/);
    expect(Buffer.from(b!.data!).toString()).toBe([1, 2, 3, 4, 5].map((i) => `${i}\tv'${i}\\t\ta\n`).join(''));
    expect(b!.rows).toBe(5);
    expect(b!.seqs).toEqual([10n, 11n, 12n, 14n, 15n]);
    expect(b!.keys).toEqual([[1n], [2n], [3n], [4n], [5n]]);
    expect(b!.insertSql!()).toBe(plain(...es)[0]!.sql);
  });

  it('fewer than loadMinRows rows go as the INSERT they always were', () => {
    const e = inserts(1n, 1, 3);
    const out = batches({}, e);
    expect(out.map((b) => b.kind)).toEqual(['insert']);
    expect(out[0]).toMatchObject({ sql: plain(e)[0]!.sql, seqs: [1n, 2n, 3n], keys: [[1n], [2n], [3n]] });
    expect(out[0]!.data).toBeUndefined();
  });

  it('a row a field cannot carry (ENUM index 0) ends a load; the INSERT it starts stays one to its end', () => {
    const e = inserts(1n, 1, 12);
    (e.rows[5]!.after as Value[])[2] = 0n;
    const out = batches({}, e);
    expect(out.map((b) => [b.kind, b.rows])).toEqual([
      ['load', 5],
      ['insert', 7],
    ]);
    expect(out[1]!.sql).toMatch(/^SET STATEMENT sql_mode = .* FOR INSERT INTO `s`.`t` .*\(6,'v\\'6\t',0\),\(7,/);
    expect(out.map((b) => b.seqs[0])).toEqual([1n, 6n]);
    // Rows before the refused one that never reached loadMinRows stay in the INSERT with it.
    const f = inserts(1n, 1, 6);
    (f.rows[2]!.after as Value[])[2] = 0n;
    expect(batches({}, f).map((b) => [b.kind, b.rows])).toEqual([['insert', 6]]);
  });

  it('an INSERT that may still become a load holds up to loadMinRows rows, whatever maxRows', () => {
    expect(batches({ maxRows: 2 }, inserts(1n, 1, 5)).map((b) => [b.kind, b.rows])).toEqual([['load', 5]]);
    expect(batches({ maxRows: 2 }, inserts(1n, 1, 3)).map((b) => [b.kind, b.rows])).toEqual([['insert', 3]]);
  });

  it('bounds a load by loadMaxBytes, not by maxRows', () => {
    const out = batches({ loadMaxBytes: 100, maxRows: 2 }, inserts(1n, 1, 30));
    expect(out.every((b) => b.kind === 'load' && b.data!.length <= 100)).toBe(true);
    expect(out.reduce((n, b) => n + b.rows, 0)).toBe(30);
    expect(out.length).toBeLessThan(15);
  });

  it('never loads on MySQL, into system-versioned tables, or when a key column is generated', () => {
    const e = inserts(1n, 1, 8);
    expect(batches({ flavor: 'mysql' }, e).map((b) => b.kind)).toEqual(['insert']);
    const b = new StatementBatcher({ noPrimaryKey: 'full-row', flavor: 'mariadb', loadData: true, loadMinRows: 4 });
    const generatedKey = [...b.push(e, new Set(['id']))];
    const rest = b.flush();
    expect([...generatedKey, rest].map((x) => x?.kind)).toEqual(['insert']);
    const vCols: Column[] = [...COLS, { name: 'rs', type: 'timestamp' }, { name: 're', type: 'timestamp' }];
    const v = inserts(1n, 1, 8, { columns: vCols, pk: ['id', 're'] });
    for (const r of v.rows) (r.after as Value[]).push('2024-01-01 00:00:00.000000', '2038-01-19 03:14:07.999999');
    const vb = new StatementBatcher({ noPrimaryKey: 'full-row', flavor: 'mariadb', loadData: true, loadMinRows: 4 });
    const versioned = [...vb.push(v, new Set(), { start: 'rs', end: 're', implicit: false }), vb.flush()];
    expect(versioned.map((x) => x?.kind)).toEqual(['insert']);
    expect(versioned[0]!.sql).toMatch(/^SET STATEMENT system_versioning_insert_history = 1 FOR INSERT/);
    // Keyless: loads when every column is written, the whole row is the key.
    const keyless = batches({}, inserts(1n, 1, 4, { pk: [] }));
    expect(keyless.map((x) => x.kind)).toEqual(['load']);
    expect(keyless[0]!.fullRow).toBe(true);
    expect(keyless[0]!.keys[0]).toEqual([1n, "v'1\t", 'a']);
  });
});
