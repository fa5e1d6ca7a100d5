import type { ColumnInfo, TableMapEntry, TableMapEvent } from '@vlasky/zongji';
import { describe, expect, it } from 'vitest';
import { EventDecoder } from './events.ts';
import { sameTableMap, seenTableMap } from './table-map-same.ts';

interface MapSpec {
  table?: string;
  cols?: [string, string][];
  pk?: number[];
  full?: boolean;
  types?: ColumnInfo[];
}

const COLS: [string, string][] = [
  ['id', 'int(11)'],
  ['name', 'varchar(20)'],
];
const TYPES: ColumnInfo[] = [
  { name: 'id', charset: null, type: 3, metadata: {} },
  { name: 'name', charset: 'utf8mb4', type: 15, metadata: { max_length: 80 } },
];

/** A fresh event + entry each call, as zongji builds them for every TABLE_MAP. */
function map(spec: MapSpec = {}): { ev: TableMapEvent; entry: TableMapEntry } {
  const cols = spec.cols ?? COLS;
  const entry: TableMapEntry = {
    parentSchema: 'app',
    tableName: spec.table ?? 't',
    columnSchemas: cols.map(([n, t]) => ({
      COLUMN_NAME: n,
      COLUMN_TYPE: t,
      COLLATION_NAME: null,
      CHARACTER_SET_NAME: null,
      COLUMN_COMMENT: '',
    })),
    columns: (spec.types ?? TYPES).map((c) => ({ ...c, metadata: { ...c.metadata } })),
  };
  const ev = {
    getEventName: () => 'tablemap',
    getTypeName: () => 'TableMap',
    tableId: 7,
    schemaName: 'app',
    tableName: spec.table ?? 't',
    columnCount: cols.length,
    primaryKey: spec.pk ?? [0],
    tableMap: { 7: entry },
    hasSelfDescribingMetadata: () => spec.full !== false,
  } as unknown as TableMapEvent;
  return { ev, entry };
}

function same(a: MapSpec, b: MapSpec): boolean {
  const x = map(a);
  const y = map(b);
  return sameTableMap(seenTableMap(x.ev, x.entry), y.ev, y.entry);
}

describe('sameTableMap', () => {
  it('is true for an identical map rebuilt from scratch', () => {
    expect(same({}, {})).toBe(true);
  });

  it('sees each field the signature held change', () => {
    expect(same({}, { table: 'u' })).toBe(false);
    expect(same({}, { pk: [1] })).toBe(false);
    expect(same({}, { full: false })).toBe(false);
    expect(same({}, { cols: [['id', 'int(11)']], types: [TYPES[0]!] })).toBe(false);
    expect(same({}, { cols: [COLS[0]!, ['nom', 'varchar(20)']] })).toBe(false);
    expect(same({}, { cols: [COLS[0]!, ['name', 'varchar(30)']] })).toBe(false);
    const retyped = (f: Partial<ColumnInfo>) => [TYPES[0]!, { ...TYPES[1]!, ...f }];
    expect(same({}, { types: retyped({ type: 253 }) })).toBe(false);
    expect(same({}, { types: retyped({ charset: 'latin1' }) })).toBe(false);
    expect(same({}, { types: retyped({ metadata: { max_length: 120 } }) })).toBe(false);
    expect(same({}, { types: retyped({ metadata: { max_length: 80, extra: 1 } }) })).toBe(false);
  });

  it('ignores the key columns when the map does not describe them (no FULL metadata)', () => {
    expect(same({ full: false, pk: [0] }, { full: false, pk: [1] })).toBe(true);
  });
});

describe('EventDecoder with repeated table maps', () => {
  it('keeps the TableInfo of an unchanged map and rebuilds it after an ALTER', () => {
    const d = new EventDecoder({ includesTable: () => true });
    const rows = (ev: TableMapEvent) => {
      d.decode(ev as never);
      const item = d.decode({ getEventName: () => 'writerows', tableId: 7, rows: [{ id: 1n, name: 'a' }] } as never);
      return item && item.type === 'rows' ? item : null;
    };
    const a = rows(map().ev);
    const b = rows(map().ev);
    expect(a?.columns).toBeDefined();
    expect(b?.columns).toBe(a?.columns);
    const altered = rows(map({ cols: [COLS[0]!, ['name', 'varchar(40)']] }).ev);
    expect(altered?.columns).not.toBe(a?.columns);
    expect(altered?.columns[1]?.name).toBe('name');
  });
});
