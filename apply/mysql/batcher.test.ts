import { describe, expect, it } from 'vitest';
import type { Column, RowImage, RowsEntry, Value } from '../../record/record.ts';
import { type StatementBatch, StatementBatcher } from './batcher.ts';

const cols: Column[] = [
  { name: 'id', type: 'int' },
  { name: 'v', type: 'varchar' },
];

function entry(op: RowsEntry['op'], seq: bigint, rows: (readonly Value[])[], over: Partial<RowsEntry> = {}): RowsEntry {
  const images: RowImage[] = rows.map((r) =>
    op === 'insert'
      ? { before: null, after: r }
      : op === 'delete'
        ? { before: r, after: null }
        : { before: r, after: r },
  );
  return {
    kind: 'rows',
    source: 'src',
    seq,
    txId: 't',
    schema: 's',
    table: 't',
    op,
    columns: cols,
    pk: ['id'],
    rows: images,
    ...over,
  };
}

function drain(b: StatementBatcher, ...entries: RowsEntry[]): StatementBatch[] {
  const out: StatementBatch[] = [];
  for (const e of entries) for (const s of b.push(e)) out.push(s);
  const rest = b.flush();
  if (rest) out.push(rest);
  return out;
}

const opts = { noPrimaryKey: 'full-row' as const, flavor: 'mariadb' as const };

/** The joined-update tests use short entries: join from 2 rows. */
const jopts = { ...opts, joinMinRows: 2 };

describe('StatementBatcher', () => {
  it('merges consecutive inserts of one table into one statement', () => {
    const out = drain(new StatementBatcher(opts), entry('insert', 10n, [[1n, 'a']]), entry('insert', 11n, [[2n, 'b']]));
    expect(out).toHaveLength(1);
    expect(out[0]!.sql).toBe("INSERT INTO `s`.`t` (`id`,`v`) VALUES (1,'a'),(2,'b')");
    expect(out[0]!.seqs).toEqual([10n, 11n]);
    expect(out[0]!.keys).toEqual([[1n], [2n]]);
  });

  it('starts a new statement when table or operation changes', () => {
    const out = drain(
      new StatementBatcher(opts),
      entry('insert', 1n, [[1n, 'a']]),
      entry('delete', 2n, [[1n, 'a']]),
      entry('insert', 3n, [[1n, 'a']], { table: 'u' }),
    );
    expect(out.map((b) => b.kind)).toEqual(['insert', 'delete-in', 'insert']);
    expect(out[1]!.sql).toBe('DELETE FROM `s`.`t` WHERE `id` IN (1)');
    expect(out[2]!.table).toBe('u');
  });

  it('respects the row limit', () => {
    const rows = Array.from({ length: 10 }, (_, i) => [BigInt(i), 'x']);
    const out = drain(new StatementBatcher({ ...opts, maxRows: 4 }), entry('insert', 1n, rows));
    expect(out.map((b) => b.rows)).toEqual([4, 4, 2]);
    expect(out[1]!.seqs).toEqual([5n, 6n, 7n, 8n]);
  });

  it('respects the byte limit, and a single oversized row still goes alone', () => {
    const big = 'y'.repeat(500);
    const rows = Array.from({ length: 6 }, (_, i) => [BigInt(i), big]);
    const out = drain(new StatementBatcher({ ...opts, maxBytes: 1200 }), entry('insert', 1n, rows));
    expect(out.map((b) => b.rows)).toEqual([2, 2, 2]);
    for (const b of out) expect(Buffer.byteLength(b.sql)).toBeLessThanOrEqual(1200 + 100);
    const huge = drain(new StatementBatcher({ ...opts, maxBytes: 100 }), entry('insert', 1n, rows));
    expect(huge.map((b) => b.rows)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('never puts one key twice into an IN list', () => {
    const out = drain(new StatementBatcher(opts), entry('delete', 1n, [[1n, 'a']]), entry('delete', 2n, [[1n, 'a']]));
    expect(out.map((b) => b.rows)).toEqual([1, 1]);
  });

  it('updates are one statement per row, sent together', () => {
    const out = drain(
      new StatementBatcher(opts),
      entry('update', 5n, [
        [1n, 'a'],
        [2n, 'b'],
      ]),
    );
    expect(out).toHaveLength(1);
    expect(out[0]!.kind).toBe('per-row');
    expect(out[0]!.rows).toBe(2);
    expect(out[0]!.sql.split(';\n')).toEqual([
      "UPDATE `s`.`t` SET `id` = 1, `v` = 'a' WHERE `id` = 1",
      "UPDATE `s`.`t` SET `id` = 2, `v` = 'b' WHERE `id` = 2",
    ]);
  });

  it('no primary key: full-row match, or refusal naming the table', () => {
    const e = entry('delete', 1n, [[1n, null]], { pk: [], table: 'no`pk' });
    const out = drain(new StatementBatcher(opts), e);
    expect(out[0]!.kind).toBe('per-row');
    expect(out[0]!.fullRow).toBe(true);
    expect(out[0]!.sql).toBe('DELETE FROM `s`.`no``pk` WHERE `id` <=> 1 AND `v` <=> NULL LIMIT 1');
    const refuse = new StatementBatcher({ ...opts, noPrimaryKey: 'refuse' });
    expect(() => drain(refuse, e)).toThrow(/`s`\.`no``pk` has no primary key/);
    expect(() => drain(refuse, { ...e, op: 'insert', rows: [{ before: null, after: [1n, 'a'] }] })).toThrow(
      /no primary key/,
    );
  });

  it('skips generated columns when writing', () => {
    const b = new StatementBatcher(opts);
    const out = [...b.push(entry('insert', 1n, [[1n, 'a']]), new Set(['v']))];
    out.push(b.flush()!);
    expect(out[0]!.sql).toBe('INSERT INTO `s`.`t` (`id`) VALUES (1)');
  });

  it('refuses malformed images', () => {
    const bad = entry('update', 1n, [[1n, 'a']]);
    const broken: RowsEntry = { ...bad, rows: [{ before: [1n], after: [1n, 'a'] }] };
    expect(() => drain(new StatementBatcher(opts), broken)).toThrow(/before image has 1 values for 2 columns/);
    expect(() => drain(new StatementBatcher(opts), { ...bad, pk: ['nope'] })).toThrow(/key column nope/);
  });

  it('reset drops pending rows', () => {
    const b = new StatementBatcher(opts);
    for (const _ of b.push(entry('insert', 1n, [[1n, 'a']]))) void _;
    expect(b.pendingRows).toBe(1);
    b.reset();
    expect(b.flush()).toBeNull();
  });
});

describe('foreign key checks of the source', () => {
  it('a delete the source ran with foreign_key_checks = 0 does not share a statement with one it ran with checks on', () => {
    const b = new StatementBatcher({ noPrimaryKey: 'full-row', flavor: 'mariadb' });
    const out = drain(
      b,
      entry('delete', 1n, [[1n, 'a']]),
      entry('delete', 2n, [[2n, 'b']], { fkChecksOff: true }),
      entry('delete', 3n, [[3n, 'c']], { fkChecksOff: true }),
    );
    expect(out.map((s) => [s.rows, s.fkChecksOff ?? false])).toEqual([
      [1, false],
      [2, true],
    ]);
  });
});

describe('ordered deletes (ON DELETE cascades that reach the same table)', () => {
  it('deletes one row at a time by key, in source order', () => {
    const b = new StatementBatcher({ noPrimaryKey: 'full-row', flavor: 'mariadb', orderedDeletes: () => true });
    const out = drain(b, entry('delete', 1n, [[3n, 'c']]), entry('delete', 2n, [[1n, 'a']]));
    expect(out).toHaveLength(1);
    expect(out[0]!.kind).toBe('per-row');
    expect(out[0]!.sql).toBe('DELETE FROM `s`.`t` WHERE `id` = 3;\nDELETE FROM `s`.`t` WHERE `id` = 1');
  });
});

describe('key-unchanged updates joined with a derived table of the new values (MariaDB)', () => {
  const upd = (
    seq: bigint,
    rows: [readonly Value[], readonly Value[]][],
    over: Partial<RowsEntry> = {},
  ): RowsEntry => ({
    ...entry('update', seq, []),
    rows: rows.map(([before, after]) => ({ before, after })),
    ...over,
  });

  it('one statement for the rows of consecutive entries, keys distinct, matched by key alone', () => {
    const out = drain(
      new StatementBatcher(jopts),
      upd(5n, [
        [
          [1n, 'a'],
          [1n, 'x'],
        ],
        [
          [2n, 'b'],
          [2n, "it's"],
        ],
      ]),
      upd(7n, [
        [
          [3n, 'c'],
          [3n, null],
        ],
      ]),
    );
    expect(out).toHaveLength(1);
    expect(out[0]!.kind).toBe('update-join');
    expect(out[0]!.rows).toBe(3);
    expect(out[0]!.seqs).toEqual([5n, 6n, 7n]);
    expect(out[0]!.keys).toEqual([[1n], [2n], [3n]]);
    expect(out[0]!.sql).toBe(
      'UPDATE (WITH tidemark_v(k0,n0) AS (VALUES /* key: k0 = `id`; written: n0 = `v` */ (NULL,NULL),\n' +
        "(1,'x'),\n(2,'it\\'s'),\n(3,NULL)\n) SELECT * FROM tidemark_v) tidemark_v STRAIGHT_JOIN `s`.`t` " +
        'ON `s`.`t`.`id` = tidemark_v.k0 SET `s`.`t`.`v` = tidemark_v.n0',
    );
  });

  it('joins only from joinMinRows rows (default 8): fewer go out as the per-row UPDATEs, as before', () => {
    const rows = (n: number): [readonly Value[], readonly Value[]][] =>
      Array.from({ length: n }, (_, i) => [
        [BigInt(i + 1), 'a'],
        [BigInt(i + 1), 'b'],
      ]);
    const three = drain(new StatementBatcher(opts), upd(1n, rows(3)));
    expect(three.map((b) => [b.kind, b.rows])).toEqual([['per-row', 3]]);
    expect(three[0]!.sql).toBe(
      [1, 2, 3].map((i) => `UPDATE \`s\`.\`t\` SET \`v\` = 'b' WHERE \`id\` = ${i}`).join(';\n'),
    );
    expect(drain(new StatementBatcher(opts), upd(1n, rows(7))).map((b) => [b.kind, b.rows])).toEqual([['per-row', 7]]);
    expect(drain(new StatementBatcher(opts), upd(1n, rows(8))).map((b) => [b.kind, b.rows])).toEqual([
      ['update-join', 8],
    ]);
  });

  it('a repeated key, a key move or a no-op update starts a new statement; a joined update of one row is per-row', () => {
    const u = (id: bigint, v: string, id2: bigint, v2: string): [readonly Value[], readonly Value[]] => [
      [id, v],
      [id2, v2],
    ];
    const out = drain(
      new StatementBatcher(jopts),
      upd(1n, [
        u(1n, 'a', 1n, 'b'),
        u(2n, 'a', 2n, 'b'),
        u(1n, 'b', 1n, 'c'),
        u(3n, 'c', 3n, 'd'),
        u(4n, 'c', 9n, 'c'),
        u(5n, 'd', 5n, 'd'),
        u(6n, 'e', 6n, 'f'),
      ]),
    );
    expect(out.map((b) => [b.kind, b.rows])).toEqual([
      ['update-join', 2],
      ['update-join', 2],
      ['per-row', 2],
      ['per-row', 1],
    ]);
    expect(out[2]!.sql).toBe(
      "UPDATE `s`.`t` SET `id` = 9 WHERE `id` = 4;\nUPDATE `s`.`t` SET `id` = 5, `v` = 'd' WHERE `id` = 5",
    );
    expect(out[3]!.sql).toBe("UPDATE `s`.`t` SET `v` = 'f' WHERE `id` = 6");
    expect(out[3]!.seqs).toEqual([7n]);
  });

  it('stays per-row on MySQL, without a key, with a non-integer key, for ENUM index 0, or when switched off', () => {
    const rows: [readonly Value[], readonly Value[]][] = [
      [
        [1n, 'a'],
        [1n, 'b'],
      ],
      [
        [2n, 'a'],
        [2n, 'b'],
      ],
    ];
    const kinds = (o: ConstructorParameters<typeof StatementBatcher>[0], e: RowsEntry) =>
      drain(new StatementBatcher(o), e).map((b) => b.kind);
    expect(kinds({ ...jopts, flavor: 'mysql' }, upd(1n, rows))).toEqual(['per-row']);
    expect(kinds({ ...jopts, joinUpdates: false }, upd(1n, rows))).toEqual(['per-row']);
    expect(kinds(jopts, upd(1n, rows, { pk: [] }))).toEqual(['per-row']);
    const textKey: Column[] = [
      { name: 'id', type: 'varchar' },
      { name: 'v', type: 'varchar' },
    ];
    const textRows: [readonly Value[], readonly Value[]][] = [
      [
        ['k', 'a'],
        ['k', 'b'],
      ],
    ];
    expect(kinds(jopts, upd(1n, textRows, { columns: textKey }))).toEqual(['per-row']);
    const enumCol: Column[] = [
      { name: 'id', type: 'int' },
      { name: 'v', type: 'enum' },
    ];
    const zero: [readonly Value[], readonly Value[]][] = [
      [
        [1n, 'a'],
        [1n, 0n],
      ],
    ];
    expect(kinds(jopts, upd(1n, zero, { columns: enumCol }))).toEqual(['per-row']);
  });
});

describe('long values stay per-row (MariaDB cuts binary literals of 64 KiB and more in a value list)', () => {
  it('a row with a text or binary value over 65,535 characters/bytes is its own UPDATE; the others join', () => {
    const blobCols: Column[] = [
      { name: 'id', type: 'int' },
      { name: 'b', type: 'longblob' },
      { name: 'v', type: 'varchar' },
    ];
    const e: RowsEntry = {
      ...entry('update', 1n, []),
      columns: blobCols,
      rows: [
        { before: [1n, new Uint8Array(1), 'a'], after: [1n, new Uint8Array(65_535), 'b'] },
        { before: [2n, new Uint8Array(1), 'a'], after: [2n, new Uint8Array(2), 'b'] },
        { before: [3n, new Uint8Array(1), 'a'], after: [3n, new Uint8Array(65_536), 'b'] },
        { before: [4n, new Uint8Array(1), 'a'], after: [4n, new Uint8Array(2), 'x'.repeat(65_536)] },
        { before: [5n, new Uint8Array(1), 'a'], after: [5n, new Uint8Array(2), 'b'] },
        { before: [6n, new Uint8Array(1), 'a'], after: [6n, new Uint8Array(2), 'b'] },
      ],
    };
    const out = drain(new StatementBatcher(jopts), e);
    expect(out.map((b) => [b.kind, b.rows])).toEqual([
      ['update-join', 2],
      ['per-row', 2],
      ['update-join', 2],
    ]);
  });
});
