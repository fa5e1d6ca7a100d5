/**
 * Whether a TABLE_MAP event describes a table id exactly as the previous one for that id did (pure, no I/O).
 *
 * Every transaction's rows events are preceded by a table map of each table they touch, and zongji rebuilds its
 * column schemas for each one. EventDecoder used to find the table's TableInfo by a signature string built from
 * every column's name, type text, binlog type, charset and metadata: ~75 MB of strings per 20k OLTP
 * transactions (4.6 % of the run process's allocation) and ~2 % of its main thread (issue #15). Comparing the
 * same fields with the previous map of the table id allocates nothing; only a map that differs (first sight, an
 * ALTER, a table id reused) goes the signature way.
 */
import type { TableMapEntry, TableMapEvent } from '@vlasky/zongji';
import { sameItems } from '../../core/collections.ts';

/** What a table map's TableInfo was built from, kept per table id to compare the next map with. */
export interface SeenTableMap {
  readonly schema: string;
  readonly table: string;
  readonly selfDescribing: boolean;
  readonly primaryKey: readonly number[] | undefined;
  readonly columnCount: number;
  readonly entry: TableMapEntry;
}

export function seenTableMap(ev: TableMapEvent, entry: TableMapEntry): SeenTableMap {
  const selfDescribing = ev.hasSelfDescribingMetadata();
  return {
    schema: ev.schemaName,
    table: ev.tableName,
    selfDescribing,
    primaryKey: selfDescribing ? ev.primaryKey : undefined,
    columnCount: ev.columnCount,
    entry,
  };
}

/** Same keys with identical (===) values: zongji's per-column metadata are plain objects of numbers and booleans. */
function sameMetadata(a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

/**
 * True when `ev` (with zongji's `entry` for it) carries everything the signature would: schema, table, key
 * columns, and per column its name, type text, binlog type, charset and metadata.
 */
export function sameTableMap(seen: SeenTableMap, ev: TableMapEvent, entry: TableMapEntry): boolean {
  if (seen.schema !== ev.schemaName || seen.table !== ev.tableName || seen.columnCount !== ev.columnCount) {
    return false;
  }
  const selfDescribing = ev.hasSelfDescribingMetadata();
  if (seen.selfDescribing !== selfDescribing) return false;
  if (selfDescribing && !sameItems(seen.primaryKey ?? [], ev.primaryKey ?? [])) return false;
  const a = seen.entry;
  const aTypes = a.columns;
  const bTypes = entry.columns;
  if ((aTypes === undefined) !== (bTypes === undefined)) return false;
  for (let i = 0; i < ev.columnCount; i++) {
    const x = a.columnSchemas[i];
    const y = entry.columnSchemas[i];
    if (x?.COLUMN_NAME !== y?.COLUMN_NAME || x?.COLUMN_TYPE !== y?.COLUMN_TYPE) return false;
    const s = aTypes?.[i];
    const t = bTypes?.[i];
    if ((s === undefined) !== (t === undefined)) return false;
    if (s && t && (s.type !== t.type || s.charset !== t.charset || !sameMetadata(s.metadata, t.metadata))) {
      return false;
    }
  }
  return true;
}
