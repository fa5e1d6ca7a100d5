/**
 * How the cells of each column of a table map are read (row-image.ts): a fast kind read straight from the row
 * image bytes — exactly when the binlog column type, its metadata, the column's definition and the journal's value
 * family (values.ts ColumnSpec) all match a layout known here — or 'zongji' (zongji's own reader, then
 * normalizeValue) for everything else. Pure: no I/O.
 */
import type { ColumnInfo, ColumnSchema } from '@vlasky/zongji';
import { decimalBytes } from './cell-text.ts';
import type { ColumnSpec } from './values.ts';

/** Binlog column type codes (include/mysql_com.h enum_field_types). */
const T = {
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  TIMESTAMP2: 17,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  VARCHAR: 15,
  DATETIME2: 18,
  NEWDECIMAL: 246,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  STRING: 254,
} as const;

/** How one column's cells are read: a fast kind, or 'zongji' (its reader, then normalizeValue). */
export type Fast =
  | { k: 'int'; size: 1 | 2 | 3 | 4 | 8; unsigned: boolean }
  | { k: 'float' }
  | { k: 'double' }
  | { k: 'decimal'; precision: number; scale: number; size: number }
  | { k: 'date' }
  | { k: 'datetime'; dec: number }
  | { k: 'timestamp'; dec: number }
  | { k: 'text'; prefix: number }
  | { k: 'bytes'; prefix: number; pad: number }
  | { k: 'zongji' };

export interface CellReader {
  readonly spec: ColumnSpec;
  readonly column: ColumnInfo;
  readonly schema: ColumnSchema;
  readonly fast: Fast;
}

const UTF8 = new Set(['utf8mb4', 'utf8mb3', 'utf8']);

function num(meta: Record<string, unknown>, key: string): number | null {
  const v = meta[key];
  return typeof v === 'number' && Number.isInteger(v) ? v : null;
}

/** Chooses how the cells of one column are read; anything not matched exactly is left to zongji. */
function fastOf(spec: ColumnSpec, column: ColumnInfo, schema: ColumnSchema): Fast {
  const meta = column.metadata ?? {};
  const def = schema.COLUMN_TYPE;
  switch (column.type) {
    case T.TINY:
    case T.SHORT:
    case T.INT24:
    case T.LONG:
    case T.LONGLONG: {
      if (spec.kind !== 'int') break;
      const size = ({ 1: 1, 2: 2, 9: 3, 3: 4, 8: 8 } as const)[column.type];
      // Signedness exactly as zongji decides it (binlog metadata first, else the type text).
      const unsigned = schema.UNSIGNED !== undefined ? schema.UNSIGNED : def.includes('unsigned');
      return { k: 'int', size, unsigned };
    }
    case T.FLOAT:
      if (spec.kind === 'float') return { k: 'float' };
      break;
    case T.DOUBLE:
      if (spec.kind === 'double') return { k: 'double' };
      break;
    case T.NEWDECIMAL: {
      const precision = num(meta, 'precision');
      const scale = num(meta, 'decimals');
      if (spec.kind === 'decimal' && precision !== null && scale !== null && precision <= 65 && scale <= precision) {
        return { k: 'decimal', precision, scale, size: decimalBytes(precision, scale) };
      }
      break;
    }
    case T.DATE:
      if (spec.kind === 'date') return { k: 'date' };
      break;
    case T.DATETIME2:
    case T.TIMESTAMP2: {
      const dec = num(meta, 'decimals') ?? -1;
      if (spec.kind === 'datetime' && dec >= 0 && dec <= 6) {
        return { k: column.type === T.DATETIME2 ? 'datetime' : 'timestamp', dec };
      }
      break;
    }
    case T.VARCHAR:
    case T.STRING: {
      const max = num(meta, 'max_length');
      if (max === null) break;
      const prefix = max > 255 ? 2 : 1;
      const head = def.slice(0, 6);
      if (
        spec.kind === 'text' &&
        column.charset &&
        UTF8.has(column.charset) &&
        !/^(binary|varbin|uuid|inet|vector)/.test(def)
      ) {
        return { k: 'text', prefix };
      }
      if (spec.kind === 'binary' && head === 'varbin') return { k: 'bytes', prefix, pad: 0 };
      const m = /^binary\((\d+)\)$/.exec(def);
      if (spec.kind === 'binary' && m) return { k: 'bytes', prefix, pad: Number(m[1]) };
      break;
    }
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.BLOB: {
      const prefix = num(meta, 'length_size');
      if (prefix === null || prefix < 1 || prefix > 4) break;
      if (column.charset === null && spec.kind === 'binary') return { k: 'bytes', prefix, pad: 0 };
      if (column.charset && UTF8.has(column.charset) && spec.kind === 'text') return { k: 'text', prefix };
      break;
    }
  }
  return { k: 'zongji' };
}

/** The cell readers of one table map, in column order. */
export function cellReaders(
  specs: readonly ColumnSpec[],
  columns: readonly ColumnInfo[],
  schemas: readonly ColumnSchema[],
): CellReader[] {
  return specs.map((spec, i) => {
    const column = columns[i]!;
    const schema = schemas[i]!;
    return { spec, column, schema, fast: fastOf(spec, column, schema) };
  });
}
