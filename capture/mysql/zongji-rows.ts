/**
 * Lets a ZongJi instance hand its rows events' row images to row-image.ts instead of converting every cell
 * itself (issue #15): the rows come out as the journal's RowImages, decoded once.
 *
 * zongji parses the rows of an event in the event's constructor through the `_fetchOneRow` method of its
 * WriteRows/DeleteRows/UpdateRows classes (lib/rows_event.js), which its package exports do not expose. They are
 * loaded here by file from the resolved package, and `_fetchOneRow` is wrapped once per process: for a ZongJi
 * instance that `useRowImages` was called on, and a table it returns cell readers for, the row image is read by
 * row-image.ts and the event is marked (`decodedRows`); every other instance and table goes through zongji's own
 * code unchanged. Should a zongji release move these internals, nothing is wrapped and capture decodes as before
 * (`rowImagesAvailable` says which; the unit test fails on it so an upgrade is noticed).
 */
import type ZongJi from '@vlasky/zongji';
import { type CellReader, type ReadMysqlValue, type RowParser, readRowImage } from './row-image.ts';
import { zongjiLib } from './zongji-lib.ts';

/** The cell readers of a table id, or null to let zongji decode that table's rows. */
export type CellLookup = (tableId: number) => readonly CellReader[] | null;

const LOOKUP = Symbol.for('tidemark.capture.cellLookup');

interface RowsEventInternals {
  _zongji: Record<symbol, CellLookup | undefined>;
  tableId: number;
  tableMap: Record<number, unknown>;
  columns_present_bitmap: Uint8Array;
  columns_present_bitmap2?: Uint8Array;
  decodedRows?: boolean;
}

type FetchOneRow = (this: RowsEventInternals, parser: RowParser) => unknown;
interface RowsClass {
  prototype: { _fetchOneRow: FetchOneRow };
}

async function loadInternals(): Promise<{ classes: Record<string, RowsClass>; readValue: ReadMysqlValue } | null> {
  const rows = await zongjiLib<Record<string, RowsClass>>('rows_event.js');
  const common = await zongjiLib<{ readMysqlValue?: ReadMysqlValue }>('common.js');
  const ok =
    typeof common?.readMysqlValue === 'function' &&
    ['WriteRows', 'DeleteRows', 'UpdateRows'].every((n) => typeof rows?.[n]?.prototype?._fetchOneRow === 'function');
  return ok ? { classes: rows!, readValue: common!.readMysqlValue! } : null;
}

const internals = await loadInternals();

function wrap(cls: RowsClass, op: 'insert' | 'delete' | 'update', readValue: ReadMysqlValue): void {
  const original = cls.prototype._fetchOneRow;
  cls.prototype._fetchOneRow = function (this: RowsEventInternals, parser: RowParser): unknown {
    const cells = this._zongji[LOOKUP]?.(this.tableId);
    if (!cells) return original.call(this, parser);
    this.decodedRows = true;
    const reader = { cells, readValue, tableMap: this.tableMap[this.tableId], zongji: this._zongji };
    return readRowImage(reader, parser, op, this.columns_present_bitmap, this.columns_present_bitmap2);
  };
}

if (internals) {
  wrap(internals.classes['WriteRows']!, 'insert', internals.readValue);
  wrap(internals.classes['DeleteRows']!, 'delete', internals.readValue);
  wrap(internals.classes['UpdateRows']!, 'update', internals.readValue);
}

/** Whether this zongji's internals were found (else `useRowImages` does nothing). */
export const rowImagesAvailable = internals !== null;

/** zongji's own cell reader (for the tests comparing row-image.ts with it), or null. */
export const zongjiReadValue: ReadMysqlValue | null = internals?.readValue ?? null;

/**
 * Makes `z` decode the rows of tables `lookup` knows into RowImages (events then carry `decodedRows: true`).
 * row-image.ts writes temporal values as zongji does with `dateStrings: true, timezone: 'Z'` (the capture's
 * connection options, mysql/session.ts): with other options, or without the internals, nothing changes and
 * this returns false.
 */
export function useRowImages(z: ZongJi, lookup: CellLookup): boolean {
  const config = (z as unknown as { connection?: { config?: { dateStrings?: unknown; timezone?: unknown } } })
    .connection?.config;
  if (!internals || config?.dateStrings !== true || config.timezone !== 'Z') return false;
  (z as unknown as Record<symbol, CellLookup>)[LOOKUP] = lookup;
  return true;
}

/** Whether a rows event's `rows` are RowImages already (decoded by row-image.ts). */
export function hasRowImages(ev: object): boolean {
  return (ev as { decodedRows?: boolean }).decodedRows === true;
}
