/**
 * How rewind commands show transactions and row images: human lines and JSON-safe objects. Pure.
 * JSON values: integers as numbers when they fit a double exactly, else as strings; binary as "0x…" hex.
 * DDL text is shown redacted (mysql/accounts.ts redactSecrets: no password or hash of a user statement).
 */
import type { Column, Value } from '../record/record.ts';
import type { TxInfo } from './index/index.ts';
import { formatTimeUs } from './time.ts';
import { redactSecrets } from '../mysql/accounts.ts';

export type JsonValue = null | number | string;

export function jsonValue(v: Value): JsonValue {
  if (v === null) return null;
  if (typeof v === 'bigint') return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return `0x${Buffer.from(v).toString('hex')}`;
  return v;
}

/** A row image as { column: value } in column order (null when there is no image). */
export function rowObject(cols: readonly Column[], img: readonly Value[] | null): Record<string, JsonValue> | null {
  if (!img) return null;
  const o: Record<string, JsonValue> = {};
  cols.forEach((c, i) => {
    o[c.name] = jsonValue(img[i] ?? null);
  });
  return o;
}

export function txJson(t: TxInfo): Record<string, unknown> {
  return {
    tx_id: t.txId,
    commit_time: formatTimeUs(t.commitTimeUs),
    commit_time_us: t.commitTimeUs.toString(),
    seq: t.commitSeq.toString(),
    first_seq: t.firstSeq.toString(),
    phase: t.phase,
    tables: t.tables,
    rows: t.rows,
    ddl: t.ddl.map((d) => redactSecrets(d.sql)),
  };
}

export function txLine(t: TxInfo): string {
  const r = t.rows;
  const what = t.ddl.length
    ? `DDL: ${t.ddl.map((d) => redactSecrets(d.sql).replace(/\s+/g, ' ').slice(0, 120)).join('; ')}`
    : `+${r.insert} ~${r.update} -${r.delete}`;
  return `${formatTimeUs(t.commitTimeUs)}  seq ${t.commitSeq}  ${t.txId}  ${what}  ${t.tables.join(', ')}${t.phase === 'stream' ? '' : `  (${t.phase})`}`;
}
