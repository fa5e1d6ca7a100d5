/**
 * Lets a ZongJi instance reuse its parse of a TABLE_MAP event whose bytes equal those of the last map of the same
 * table id (issue #15). Every transaction maps each table it touches again, and zongji parses each map in full:
 * per-column metadata, the optional metadata block (names, charsets, signedness, key), then builds column schemas
 * from them — ~8 % of the `run` thread in the spine bench's OLTP catch-up and ~135 MB of its 1.34 GB allocation.
 * A map's parse is a function of its bytes, so a map equal byte for byte (from the table id to the end, the
 * checksum left out) to the last one of its table id takes that one's results: per-column metadata, column
 * types, optional metadata and column schemas are shared with it rather than built again.
 *
 * How: zongji's TableMap class (lib/binlog_event.js, loaded by file as zongji-rows.ts does with its rows classes)
 * gets its steps wrapped once per process — `_readTableId` (first step: compares the bytes), `_readColumnMetadata`
 * and `_readOptionalMetadata` (a hit takes the stored results and skips to the end of the event), `buildColumnSchemas`
 * and `updateColumnInfo` (a hit returns the stored schemas; the stored entry is used only after its own
 * `updateColumnInfo` ran, so what is shared is what zongji left after adjusting the column types, which running it
 * again leaves as it is). Only instances `useTableMapCache` was called on are affected; should a zongji release
 * move these internals, nothing is wrapped and every map is parsed as before (`tableMapCacheAvailable`).
 */
import type ZongJi from '@vlasky/zongji';
import { zongjiLib } from './zongji-lib.ts';

interface ParserInternals {
  _buffer: Buffer;
  _offset: number;
  _packetEnd: number;
}

interface Stored {
  readonly body: Buffer;
  readonly ev: TableMapInternals;
  /** The stored event's updateColumnInfo has run: its types and metadata are final. */
  done: boolean;
  schemas: unknown[] | null;
}

interface State {
  readonly z: { useChecksum?: boolean };
  readonly byId: Map<number, Stored>;
}

interface TableMapInternals {
  tableMap: object;
  tableId: number;
  columnTypes: number[];
  columnsMetadata: unknown[];
  [HIT]?: Stored;
  [PENDING]?: { st: State; body: Buffer };
  [k: string]: unknown;
}

type Method = (this: TableMapInternals, ...args: unknown[]) => unknown;
interface TableMapClass {
  prototype: Record<string, Method>;
}

const HIT = Symbol('tidemark.tableMapHit');
const PENDING = Symbol('tidemark.tableMapPending');
/** Per zongji instance, keyed by its `tableMap` object (what a TableMap event holds of its instance). */
const states = new WeakMap<object, State>();
/** Table ids remembered per instance (a bound: table ids grow with DDL; past it the store starts over). */
const MAX_IDS = 1000;
/** What _readOptionalMetadata sets. */
const OPTIONAL = [
  'columnNames',
  'signedness',
  'primaryKey',
  'columnVisibility',
  'geometryTypes',
  '_columnCharsetIds',
  '_enumSetValues',
] as const;
const WRAPPED = [
  '_readTableId',
  '_readColumnMetadata',
  '_readOptionalMetadata',
  'buildColumnSchemas',
  'updateColumnInfo',
];

async function loadTableMap(): Promise<TableMapClass | null> {
  const cls = (await zongjiLib<Record<string, TableMapClass>>('binlog_event.js'))?.['TableMap'];
  return cls && WRAPPED.every((m) => typeof cls.prototype[m] === 'function') ? cls : null;
}

function wrap(cls: TableMapClass): void {
  const p = cls.prototype;
  const [readTableId, readColumnMetadata, readOptional, buildSchemas, updateInfo] = WRAPPED.map((m) => p[m] as Method);
  p['_readTableId'] = function (this: TableMapInternals, parser: unknown) {
    readTableId!.call(this, parser);
    const st = states.get(this.tableMap);
    if (!st) return;
    const ps = parser as ParserInternals;
    const body = ps._buffer.subarray(ps._offset, ps._packetEnd - (st.z.useChecksum ? 4 : 0));
    const s = st.byId.get(this.tableId);
    if (s?.done && s.body.equals(body)) this[HIT] = s;
    else this[PENDING] = { st, body };
  };
  p['_readColumnMetadata'] = function (this: TableMapInternals, parser: unknown) {
    const hit = this[HIT];
    if (!hit) return readColumnMetadata!.call(this, parser);
    this.columnTypes = hit.ev.columnTypes;
    this.columnsMetadata = hit.ev.columnsMetadata;
  };
  p['_readOptionalMetadata'] = function (this: TableMapInternals, parser: unknown, zongji: unknown) {
    const hit = this[HIT];
    if (hit) {
      for (const k of OPTIONAL) this[k] = hit.ev[k];
      const ps = parser as ParserInternals;
      ps._offset = ps._packetEnd;
      return;
    }
    readOptional!.call(this, parser, zongji);
    // Parsed without an error (one would leave the optional metadata unset): this map is the table id's last.
    const pending = this[PENDING];
    if (!pending) return;
    delete this[PENDING];
    const byId = pending.st.byId;
    if (byId.size >= MAX_IDS && !byId.has(this.tableId)) byId.clear();
    byId.set(this.tableId, { body: Buffer.from(pending.body), ev: this, done: false, schemas: null });
  };
  p['buildColumnSchemas'] = function (this: TableMapInternals) {
    const hit = this[HIT];
    if (hit?.schemas) return hit.schemas;
    const schemas = buildSchemas!.call(this) as unknown[];
    const own = states.get(this.tableMap)?.byId.get(this.tableId);
    if (own?.ev === this) own.schemas = schemas;
    return schemas;
  };
  p['updateColumnInfo'] = function (this: TableMapInternals) {
    const r = updateInfo!.call(this);
    const own = states.get(this.tableMap)?.byId.get(this.tableId);
    if (own?.ev === this) own.done = true;
    return r;
  };
}

const tableMapClass = await loadTableMap();
if (tableMapClass) wrap(tableMapClass);

/** Whether this zongji's TableMap internals were found (else useTableMapCache does nothing). */
export const tableMapCacheAvailable = tableMapClass !== null;

/** Makes `z` reuse the parse of a table map equal to the last one of its table id; false when unavailable. */
export function useTableMapCache(z: ZongJi): boolean {
  const internals = z as unknown as { tableMap?: object; useChecksum?: boolean };
  if (!tableMapClass || typeof internals.tableMap !== 'object' || internals.tableMap === null) return false;
  states.set(internals.tableMap, { z: internals, byId: new Map() });
  return true;
}

/** Whether table map event `ev` took the results of an earlier equal one (tests). */
export function reusedTableMap(ev: object): boolean {
  return (ev as TableMapInternals)[HIT] !== undefined;
}
