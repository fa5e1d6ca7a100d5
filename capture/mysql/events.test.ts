import type { AnyBinlogEvent, TableMapEntry } from '@vlasky/zongji';
import { describe, expect, it } from 'vitest';
import { EventDecoder } from './events.ts';

function tableMap(opts: { id: number; table: string; cols: [string, string][]; pk?: number[]; full?: boolean }) {
  const entry: TableMapEntry = {
    parentSchema: 'app',
    tableName: opts.table,
    columnSchemas: opts.cols.map(([n, t]) => ({
      COLUMN_NAME: n,
      COLUMN_TYPE: t,
      COLLATION_NAME: null,
      CHARACTER_SET_NAME: null,
      COLUMN_COMMENT: '',
    })),
  };
  return {
    getEventName: () => 'tablemap',
    tableId: opts.id,
    schemaName: 'app',
    tableName: opts.table,
    columnCount: opts.cols.length,
    primaryKey: opts.pk,
    tableMap: { [opts.id]: entry },
    hasSelfDescribingMetadata: () => opts.full !== false,
  } as unknown as AnyBinlogEvent;
}

const rowsEvent = (name: string, tableId: number, rows: unknown[]) =>
  ({ getEventName: () => name, tableId, rows }) as unknown as AnyBinlogEvent;

describe('EventDecoder', () => {
  const all = new EventDecoder({ includesTable: (_s, t) => t !== 'skip' });

  it('decodes rows with normalized values, columns and pk from the table map', () => {
    all.decode(
      tableMap({
        id: 1,
        table: 't',
        cols: [
          ['id', 'int'],
          ['b', 'bit(8)'],
          ['y', 'year'],
        ],
        pk: [0],
      }),
    );
    const item = all.decode(rowsEvent('writerows', 1, [{ id: 5, b: Buffer.from([3]), y: 1900 }]));
    expect(item).toEqual({
      type: 'rows',
      op: 'insert',
      schema: 'app',
      table: 't',
      columns: [
        { name: 'id', type: 'int', columnType: 'int', unsigned: false },
        { name: 'b', type: 'bit', columnType: 'bit(8)' },
        { name: 'y', type: 'year', columnType: 'year' },
      ],
      pk: ['id'],
      rows: [{ before: null, after: [5n, 3n, 0n] }],
    });
    const upd = all.decode(
      rowsEvent('updaterows', 1, [{ before: { id: 5, b: null, y: 2000 }, after: { id: 6, b: null, y: 2001 } }]),
    );
    expect(upd).toMatchObject({ op: 'update', rows: [{ before: [5n, null, 2000n], after: [6n, null, 2001n] }] });
    const del = all.decode(rowsEvent('deleterows', 1, [{ id: 6, b: null, y: null }]));
    expect(del).toMatchObject({ op: 'delete', rows: [{ before: [6n, null, null], after: null }] });
  });

  it('pk is [] with FULL metadata and no key, null without FULL metadata', () => {
    all.decode(tableMap({ id: 2, table: 'nopk', cols: [['a', 'int']] }));
    expect(all.decode(rowsEvent('writerows', 2, [{ a: 1 }]))).toMatchObject({ pk: [] });
    all.decode(tableMap({ id: 3, table: 'old', cols: [['a', 'int(11)']], full: false }));
    expect(all.decode(rowsEvent('writerows', 3, [{ a: 1 }]))).toMatchObject({ pk: null });
  });

  it('shares one column array between table maps of the same definition', () => {
    const d = new EventDecoder({ includesTable: () => true });
    d.decode(tableMap({ id: 7, table: 't', cols: [['id', 'int']], pk: [0] }));
    const a = d.decode(rowsEvent('writerows', 7, [{ id: 1 }]));
    d.decode(tableMap({ id: 7, table: 't', cols: [['id', 'int']], pk: [0] }));
    const b = d.decode(rowsEvent('writerows', 7, [{ id: 2 }]));
    expect(a?.type === 'rows' && b?.type === 'rows' && a.columns === b.columns).toBe(true);
  });

  it('ignores rows of excluded tables and refuses unsupported column types of included ones', () => {
    all.decode(tableMap({ id: 4, table: 'skip', cols: [['g', 'vector(3)']] }));
    expect(all.decode(rowsEvent('writerows', 4, [{ g: 'x' }]))).toBeNull();
    expect(() => all.decode(tableMap({ id: 5, table: 'vec', cols: [['v', 'vector(3)']] }))).toThrow(
      /column types tidemark cannot capture exactly: app\.vec \(v vector\(3\)\)/,
    );
  });

  it('has zongji read geometry columns raw (BLOB without charset) and keeps their stored bytes', () => {
    const ev = tableMap({
      id: 6,
      table: 'geo',
      cols: [
        ['id', 'int'],
        ['g', 'point'],
      ],
      pk: [0],
    });
    const entry = (ev as unknown as { tableMap: Record<number, TableMapEntry> }).tableMap[6]!;
    entry.columns = [
      { name: 'id', charset: null, type: 3, metadata: {} },
      { name: 'g', charset: 'utf8mb4', type: 255, metadata: { length_size: 4 } },
    ];
    all.decode(ev);
    expect(entry.columns.map((c) => [c.type, c.charset])).toEqual([
      [3, null],
      [252, null],
    ]);
    const g = Buffer.from('E6100000010100000000000000000000F03F00000000000000C0', 'hex');
    const item = all.decode(rowsEvent('writerows', 6, [{ id: 1, g }]));
    expect(item?.type === 'rows' && item.columns.map((c) => c.type)).toEqual(['int', 'point']);
    expect(item?.type === 'rows' && item.rows[0]?.after?.[1]).toEqual(new Uint8Array(g));
  });

  it('refuses rows without a table map', () => {
    expect(() => all.decode(rowsEvent('writerows', 99, []))).toThrow(/without a preceding table map/);
  });

  it('decodes transaction events', () => {
    const gtid = {
      getEventName: () => 'mariadbgtid',
      gtid: '0-1-5',
      standalone: true,
      preparedXa: false,
      completedXa: false,
      nextPosition: 120,
    } as unknown as AnyBinlogEvent;
    expect(all.decode(gtid)).toEqual({ type: 'gtid', gtid: '0-1-5', standalone: true, xa: false, endOffset: 120n });
    const q = { getEventName: () => 'query', schema: 'app', query: 'BEGIN', timestamp: 5000, nextPosition: 200 };
    expect(all.decode(q as unknown as AnyBinlogEvent)).toEqual({
      type: 'query',
      schema: 'app',
      sql: 'BEGIN',
      timestampMs: 5000,
      endOffset: 200n,
    });
    const rot = { getEventName: () => 'rotate', binlogName: 'b.000002', position: 4 } as unknown as AnyBinlogEvent;
    expect(all.decode(rot)).toEqual({ type: 'rotate', file: 'b.000002', offset: 4n });
    expect(all.decode({ getEventName: () => 'heartbeat' } as unknown as AnyBinlogEvent)).toBeNull();
  });
});
