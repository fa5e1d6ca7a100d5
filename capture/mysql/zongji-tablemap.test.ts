import { describe, expect, it } from 'vitest';
import { reusedTableMap, tableMapCacheAvailable, useTableMapCache } from './zongji-tablemap.ts';

const index = import.meta.resolve('@vlasky/zongji');
const { TableMap } = (await import(new URL('./lib/binlog_event.js', index).href)) as {
  TableMap: new (parser: unknown, options: unknown, zongji: unknown) => Record<string, unknown>;
};
const { Parser } = (await import(new URL('./lib/reader.js', index).href)) as {
  Parser: new () => { append(b: Buffer): void; _offset: number; _packetEnd: number };
};

const lenenc = (n: number) => Buffer.from([n]);
const str = (s: string) => Buffer.concat([lenenc(Buffer.byteLength(s)), Buffer.from(s)]);
const tlv = (type: number, body: Buffer) => Buffer.concat([Buffer.from([type]), lenenc(body.length), body]);

/**
 * A TABLE_MAP event body with binlog_row_metadata=FULL: shop.t (id INT, name VARCHAR(20), e ENUM('a','b')),
 * key (id); `name` names the second column (a changed byte elsewhere than the table id).
 */
function tableMapBody(tableId: number, name = 'name', checksum = false): Buffer {
  const id = Buffer.alloc(6);
  id.writeUIntLE(tableId, 0, 6);
  const types = Buffer.from([3, 15, 254]); // LONG, VARCHAR, STRING (ENUM in its metadata)
  const meta = Buffer.from([80, 0, 247, 1]); // VARCHAR max 80 bytes; STRING: real type ENUM, 1 byte
  const optional = Buffer.concat([
    tlv(1, Buffer.from([0x00])), // SIGNEDNESS: id signed
    tlv(2, lenenc(45)), // DEFAULT_CHARSET utf8mb4_general_ci
    tlv(4, Buffer.concat([str('id'), str(name), str('e')])), // COLUMN_NAME
    tlv(6, Buffer.concat([lenenc(2), str('a'), str('b')])), // ENUM_STR_VALUE
    tlv(8, lenenc(0)), // SIMPLE_PRIMARY_KEY: column 0
  ]);
  return Buffer.concat([
    id,
    Buffer.from([1, 0]), // flags
    str('shop'),
    Buffer.from([0]),
    str('t'),
    Buffer.from([0]),
    lenenc(3),
    types,
    lenenc(meta.length),
    meta,
    Buffer.from([0b110]), // null bitmap
    optional,
    checksum ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0),
  ]);
}

function fakeZongji(useChecksum = false) {
  return { tableMap: {} as Record<number, unknown>, useChecksum, _skipSchema: () => false };
}

/** Parses `body` as zongji does, then runs the steps its binlog handler runs for a self-describing map. */
function parse(z: ReturnType<typeof fakeZongji>, body: Buffer): Record<string, unknown> {
  const p = new Parser();
  p.append(body);
  const ev = new TableMap(p, { timestamp: 0, nextPosition: 0, size: body.length }, z);
  expect(p._offset).toBeLessThanOrEqual(p._packetEnd);
  const build = ev['buildColumnSchemas'] as () => unknown[];
  z.tableMap[ev['tableId'] as number] = { columnSchemas: build.call(ev), parentSchema: 'shop', tableName: 't' };
  (ev['updateColumnInfo'] as () => void).call(ev);
  return ev;
}

/** What a consumer reads of a parsed map and its table map entry. */
function view(z: ReturnType<typeof fakeZongji>, ev: Record<string, unknown>) {
  const entry = z.tableMap[ev['tableId'] as number] as { columnSchemas: unknown[]; columns: unknown[] };
  return {
    tableId: ev['tableId'],
    schema: ev['schemaName'],
    table: ev['tableName'],
    types: ev['columnTypes'],
    meta: ev['columnsMetadata'],
    names: ev['columnNames'],
    pk: ev['primaryKey'],
    schemas: JSON.parse(JSON.stringify(entry.columnSchemas)),
    columns: JSON.parse(JSON.stringify(entry.columns)),
  };
}

describe('zongji table maps parsed once per table id and layout (zongji-tablemap.ts)', () => {
  it('finds the internals of the installed zongji', () => {
    expect(tableMapCacheAvailable).toBe(true);
  });

  it('a map equal byte for byte to its table id last one reuses that parse, with the same results', () => {
    const plain = fakeZongji();
    const cached = fakeZongji();
    expect(useTableMapCache(cached as never)).toBe(true);
    const first = parse(cached, tableMapBody(7));
    expect(reusedTableMap(first)).toBe(false);
    const again = parse(cached, tableMapBody(7));
    expect(reusedTableMap(again)).toBe(true);
    const fresh = parse(plain, tableMapBody(7));
    expect(reusedTableMap(fresh)).toBe(false);
    // The same as parsing it anew, ENUM's real type and its values included.
    expect(view(cached, again)).toEqual(view(plain, fresh));
    expect((view(cached, again).types as number[])[2]).toBe(247);
    expect(view(cached, again).schemas[2]).toMatchObject({ COLUMN_NAME: 'e', COLUMN_TYPE: "enum('a','b')" });
  });

  it('another layout, another table id or another instance parses anew; the checksum is not compared', () => {
    const z = fakeZongji(true);
    useTableMapCache(z as never);
    parse(z, tableMapBody(7, 'name', true));
    const renamed = parse(z, tableMapBody(7, 'nick', true));
    expect(reusedTableMap(renamed)).toBe(false);
    expect(view(z, renamed).names).toEqual(['id', 'nick', 'e']);
    // The renamed layout is now the one remembered; the old one comes back parsed.
    expect(reusedTableMap(parse(z, tableMapBody(7, 'name', true)))).toBe(false);
    expect(reusedTableMap(parse(z, tableMapBody(8, 'name', true)))).toBe(false);
    const other = tableMapBody(7, 'name', true);
    other.writeUInt32LE(0xdeadbeef, other.length - 4); // another event's checksum
    expect(reusedTableMap(parse(z, other))).toBe(true);
    const untouched = fakeZongji(true);
    expect(reusedTableMap(parse(untouched, tableMapBody(7, 'name', true)))).toBe(false);
    expect(reusedTableMap(parse(untouched, tableMapBody(7, 'name', true)))).toBe(false);
  });
});
