/**
 * mysql2 result values → record Values (pure). Assumes the session options of mysql/session.ts: big numbers and
 * DECIMAL as strings, dates as strings, JSON as strings. Used by verify to carry primary-key values from one
 * query into the next as exact literals. Type families: mysql/types.ts (an ENUM stays its label string).
 */
import type { Column, Value } from '../../record/record.ts';
import { ValueError } from '../../mysql/sql.ts';
import { typeFamily } from '../../mysql/types.ts';

export function fromDriver(v: unknown, col: Column): Value {
  if (v === null || v === undefined) return null;
  const family = typeFamily(col.type);
  if (family === 'bit') {
    if (v instanceof Uint8Array) {
      let n = 0n;
      for (const b of v) n = (n << 8n) | BigInt(b);
      return n;
    }
    return BigInt(String(v));
  }
  if (family === 'int' || family === 'year') {
    const s = String(v);
    if (!/^-?\d+$/.test(s)) throw new ValueError(`column ${col.name}: "${s}" is not an integer`, { column: col.name });
    return BigInt(s);
  }
  if (family === 'float' || family === 'double') return typeof v === 'number' ? v : Number(v);
  if (v instanceof Uint8Array) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw new ValueError(`column ${col.name}: unexpected driver value of type ${typeof v}`, { column: col.name });
}
