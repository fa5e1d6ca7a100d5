/**
 * Binlog event decoding: turns zongji event objects into BinlogItems for the assembler, one handler per binlog
 * event type. Row images are normalized here (values.ts), synchronously as zongji emits them, so the queue
 * between the binlog connection and the sink holds only final values. Pure apart from its table-map registry.
 *
 * Table metadata comes from the TableMap event, which with binlog_row_metadata=FULL carries column names,
 * types, signedness, enum/set labels and the primary key as of the moment the rows were written, so ALTERs never
 * leave stale columns. With FULL metadata an absent primary-key field means the table has none (pk = []); without
 * it (events written before FULL was switched on) pk is null and the stream resolves it from information_schema.
 *
 * Spatial columns: zongji parses a GEOMETRY value into {x, y} objects and arrays, losing the SRID (and Z/M
 * detail). Its row encoding is a BLOB's (length prefix of length_size bytes, then the stored SRID + WKB), so the
 * table map's geometry columns are retyped as BLOB (rawGeometry) before zongji parses the rows that follow: the
 * rows then carry the exact stored bytes. zongji emits each event synchronously before it parses the next.
 */
import { type SeenTableMap, sameTableMap, seenTableMap } from './table-map-same.ts';
import type {
  AnyBinlogEvent,
  DeleteRowsEvent,
  GtidEvent,
  MariadbGtidEvent,
  QueryEvent,
  RotateEvent,
  RowData,
  TableMapEntry,
  TableMapEvent,
  UnknownEvent,
  UpdateRowsEvent,
  WriteRowsEvent,
  XidEvent,
} from '@vlasky/zongji';
import type { Column, RowImage, RowOp, Value } from '../../record/record.ts';
import { TidemarkError } from '../../core/errors.ts';
import type { BinlogItem } from './binlog-item.ts';
import { formatXid } from './statement-errors.ts';
import { type CellReader, cellReaders } from './row-image.ts';
import { type ColumnSpec, columnSpec, normalizeValue, unsupportedColumns, unsupportedTableError } from './values.ts';
import { hasRowImages } from './zongji-rows.ts';

/**
 * Rows event header flag NO_FOREIGN_KEY_CHECKS_F: the statement ran with foreign_key_checks = 0, so nothing
 * cascaded on the source (apply must not cascade either; RowsEntry.fkChecksOff).
 */
const NO_FOREIGN_KEY_CHECKS_F = 0x0002;

/** `fkChecksOff: true` when a rows event's flags say the source ran it with foreign key checks off. */
function fkFlag(ev: { flags?: number }): { fkChecksOff?: true } {
  return (ev.flags ?? 0) & NO_FOREIGN_KEY_CHECKS_F ? { fkChecksOff: true } : {};
}

/** What the rows of one table map decode with. */
export interface TableInfo {
  readonly schema: string;
  readonly table: string;
  readonly specs: readonly ColumnSpec[];
  readonly columns: readonly Column[];
  readonly pk: readonly string[] | null;
  /** How row-image.ts reads this table's row images (zongji's column types known), else undefined. */
  readonly cells?: readonly CellReader[];
}

/** zongji's MYSQL_TYPE_GEOMETRY and MYSQL_TYPE_BLOB codes (binlog column types). */
const MYSQL_TYPE_GEOMETRY = 255;
const MYSQL_TYPE_BLOB = 252;

/**
 * Makes zongji hand the geometry columns of this table map over as raw bytes (see the file comment): retypes them
 * as BLOB without a charset, so the following rows events read them as Buffers of the stored SRID + WKB.
 */
export function rawGeometry(entry: TableMapEntry): void {
  for (const c of entry.columns ?? []) {
    if (c.type === MYSQL_TYPE_GEOMETRY) {
      c.type = MYSQL_TYPE_BLOB;
      c.charset = null;
    }
  }
}

/** Builds the TableInfo of a table map from zongji's column schemas (binlog FULL metadata or information_schema). */
export function tableInfoFromTableMap(ev: TableMapEvent, entry: TableMapEntry): TableInfo {
  const specs: ColumnSpec[] = [];
  for (let i = 0; i < ev.columnCount; i++) {
    const cs = entry.columnSchemas[i];
    if (!cs) {
      throw new TidemarkError(`table map of ${ev.schemaName}.${ev.tableName} lacks column ${i}`, {
        code: 'BINLOG_METADATA',
        retriable: false,
        context: { schema: ev.schemaName, table: ev.tableName },
      });
    }
    specs.push(columnSpec(cs.COLUMN_NAME, cs.COLUMN_TYPE));
  }
  const unsupported = unsupportedColumns(specs);
  if (unsupported.length > 0) throw unsupportedTableError(ev.schemaName, ev.tableName, unsupported);
  let pk: string[] | null = null;
  if (ev.hasSelfDescribingMetadata()) {
    pk = (ev.primaryKey ?? []).map((i) => specs[i]?.name ?? `#${i}`);
  }
  const columns = specs.map((s) => s.column);
  const info = { schema: ev.schemaName, table: ev.tableName, specs, columns, pk };
  const types = entry.columns;
  if (!types || types.length < specs.length) return info;
  return { ...info, cells: cellReaders(specs, types, entry.columnSchemas) };
}

/** Normalizes one zongji row object into values in column order. */
export function rowValues(info: TableInfo, row: RowData): Value[] {
  const out = new Array<Value>(info.specs.length);
  for (let i = 0; i < info.specs.length; i++) {
    const s = info.specs[i]!;
    out[i] = normalizeValue(s, row[s.name]);
  }
  return out;
}

function endOffset(ev: { nextPosition: number }): bigint {
  return BigInt(ev.nextPosition);
}

export interface EventDecoderOptions {
  /** Only tables this accepts are decoded (and checked for unsupported types). */
  readonly includesTable: (schema: string, table: string) => boolean;
  /** Bytes of an event's header plus checksum (19, or 23 with binlog_checksum=CRC32), to locate opaque events. */
  readonly headerBytes?: () => number;
}

/** Stateful decoder: remembers table maps by table id until the next TableMap for that id. */
export class EventDecoder {
  private readonly tables = new Map<number, TableInfo | null>();
  /** Identical table definitions share one TableInfo (and one Column array across entries). */
  private readonly bySignature = new Map<string, TableInfo>();
  /** The table map each TableInfo of `tables` was built from, by table id. */
  private readonly seen = new Map<number, SeenTableMap>();
  private readonly includesTable: (schema: string, table: string) => boolean;
  private readonly headerBytes: () => number;

  constructor(opts: EventDecoderOptions) {
    this.includesTable = opts.includesTable;
    this.headerBytes = opts.headerBytes ?? (() => 19);
  }

  /** Returns the item for an event, or null for events capture does not need (format, heartbeat, …). */
  decode(ev: AnyBinlogEvent): BinlogItem | null {
    switch (ev.getEventName()) {
      case 'rotate':
        return this.onRotate(ev as RotateEvent);
      case 'mariadbgtid':
        return this.onMariadbGtid(ev as MariadbGtidEvent);
      case 'gtid':
        return this.onGtid(ev as GtidEvent);
      case 'query':
        return this.onQuery(ev as QueryEvent);
      case 'xid':
        return this.onXid(ev as XidEvent);
      case 'xaprepare':
        return { type: 'xa-prepare', endOffset: endOffset(ev) };
      case 'tablemap':
        this.onTableMap(ev as TableMapEvent);
        return null;
      case 'writerows':
        return this.onRows('insert', ev as WriteRowsEvent);
      case 'updaterows':
        return this.onUpdateRows(ev as UpdateRowsEvent);
      case 'deleterows':
        return this.onRows('delete', ev as DeleteRowsEvent);
      case 'unknown':
        return this.onUnknown(ev as UnknownEvent);
      default:
        return null;
    }
  }

  onRotate(ev: RotateEvent): BinlogItem {
    return { type: 'rotate', file: ev.binlogName, offset: BigInt(ev.position) };
  }

  onMariadbGtid(ev: MariadbGtidEvent): BinlogItem {
    const xa = ev.preparedXa ? 'prepare' : ev.completedXa ? 'complete' : false;
    return {
      type: 'gtid',
      gtid: ev.gtid,
      standalone: ev.standalone,
      xa,
      ...(xa && ev.xidGtrid
        ? { xid: formatXid(ev.xidGtrid, ev.xidBqual ?? new Uint8Array(), ev.xidFormatId ?? 1) }
        : {}),
      endOffset: endOffset(ev),
    };
  }

  /** Event types zongji does not decode; `size` is the body length (event length minus header and checksum). */
  onUnknown(ev: UnknownEvent): BinlogItem {
    const end = endOffset(ev);
    // No end offset (never seen from MariaDB 10.11): the stream cannot look it up and stops rather than skip it.
    if (end <= 0n) return { type: 'opaque', startOffset: 0n, endOffset: 0n };
    return { type: 'opaque', startOffset: end - BigInt(ev.size + this.headerBytes()), endOffset: end };
  }

  onGtid(ev: GtidEvent): BinlogItem {
    return { type: 'gtid', gtid: ev.gtid, standalone: null, xa: false, endOffset: endOffset(ev) };
  }

  onQuery(ev: QueryEvent): BinlogItem {
    return {
      type: 'query',
      schema: ev.schema,
      sql: ev.query,
      timestampMs: ev.timestamp,
      endOffset: endOffset(ev),
      threadId: ev.slaveProxyId,
    };
  }

  onXid(ev: XidEvent): BinlogItem {
    return { type: 'xid', timestampMs: ev.timestamp, endOffset: endOffset(ev) };
  }

  onTableMap(ev: TableMapEvent): void {
    const entry = ev.tableMap[ev.tableId];
    if (!entry || !this.includesTable(ev.schemaName, ev.tableName)) {
      this.tables.set(ev.tableId, null);
      return;
    }
    rawGeometry(entry);
    // Mostly the same map as last time for this table id: then its TableInfo stands (table-map-same.ts).
    const seen = this.seen.get(ev.tableId);
    const prev = this.tables.get(ev.tableId);
    if (seen && prev && sameTableMap(seen, ev, entry)) return;
    const cols = entry.columnSchemas;
    let sig = `${ev.schemaName}\u0000${ev.tableName}\u0000${ev.hasSelfDescribingMetadata() ? (ev.primaryKey ?? []).join(',') : '?'}`;
    const types = entry.columns;
    for (let i = 0; i < ev.columnCount; i++) {
      sig += `\u0000${cols[i]?.COLUMN_NAME}\u0001${cols[i]?.COLUMN_TYPE}`;
      // The binlog type, charset and metadata decide how row-image.ts reads the cells (a charset change keeps
      // the type text).
      const t = types?.[i];
      if (t) sig += `\u0001${t.type}\u0001${t.charset}\u0001${Object.values(t.metadata ?? {}).join(',')}`;
    }
    let info = this.bySignature.get(sig);
    if (!info) {
      info = tableInfoFromTableMap(ev, entry);
      if (this.bySignature.size >= 1000) this.bySignature.clear();
      this.bySignature.set(sig, info);
    }
    this.tables.set(ev.tableId, info);
    if (this.seen.size >= 1000) this.seen.clear();
    this.seen.set(ev.tableId, seenTableMap(ev, entry));
  }

  /** The cell readers of a table id's rows (zongji-rows.ts), or null to let zongji convert them. */
  cellReaders(tableId: number): readonly CellReader[] | null {
    return this.tables.get(tableId)?.cells ?? null;
  }

  private table(tableId: number): TableInfo | null {
    const info = this.tables.get(tableId);
    if (info === undefined) {
      throw new TidemarkError(`rows event for table id ${tableId} without a preceding table map`, {
        code: 'BINLOG_SEQUENCE',
        retriable: false,
      });
    }
    return info;
  }

  onRows(op: RowOp, ev: WriteRowsEvent | DeleteRowsEvent): BinlogItem | null {
    const info = this.table(ev.tableId);
    if (!info) return null;
    if (hasRowImages(ev)) return rowsItem(info, op, ev.rows as unknown as RowImage[], ev);
    const rows: RowImage[] = new Array(ev.rows.length);
    for (let i = 0; i < ev.rows.length; i++) {
      const values = rowValues(info, ev.rows[i]!);
      rows[i] = op === 'insert' ? { before: null, after: values } : { before: values, after: null };
    }
    return rowsItem(info, op, rows, ev);
  }

  onUpdateRows(ev: UpdateRowsEvent): BinlogItem | null {
    const info = this.table(ev.tableId);
    if (!info) return null;
    if (hasRowImages(ev)) return rowsItem(info, 'update', ev.rows as unknown as RowImage[], ev);
    const rows: RowImage[] = new Array(ev.rows.length);
    for (let i = 0; i < ev.rows.length; i++) {
      const r = ev.rows[i]!;
      rows[i] = { before: rowValues(info, r.before), after: rowValues(info, r.after) };
    }
    return rowsItem(info, 'update', rows, ev);
  }
}

/** The rows item of one rows event (insert, update or delete) of the table `info` describes. */
function rowsItem(info: TableInfo, op: RowOp, rows: RowImage[], ev: { flags?: number }): BinlogItem {
  return {
    type: 'rows',
    op,
    schema: info.schema,
    table: info.table,
    columns: info.columns,
    pk: info.pk,
    rows,
    ...fkFlag(ev),
  };
}
