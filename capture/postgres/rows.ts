/**
 * pgoutput row changes → record/ row images (pure). Values keep PostgreSQL's exact text (string), NULL is null,
 * bytea is bytes (its `\x…` hex text decoded; record/record.ts holds binary as Uint8Array). An unchanged TOAST value
 * in an UPDATE's new tuple is filled from the old image (REPLICA IDENTITY FULL sends the whole old row, detoasted);
 * when the old image does not hold it, PG_TOAST_UNRESOLVED — never NULL.
 *
 * Before images: FULL identity gives the whole old row. A table opted out of FULL (identity_full_opt_out) gives
 * only its key: a delete's before image has the key columns and null elsewhere; an update that did not change the
 * key carries no old tuple, and its before image is then the new row (its key finds the row; rewind is disabled
 * for such tables).
 */
import { TidemarkError } from '../../core/errors.ts';
import type { RowImage, RowOp, Value } from '../../record/record.ts';
import type { PgValue } from './pgoutput-messages.ts';
import type { TableShape } from './relations.ts';

/** bytea's hex output (`\x0aff`) → bytes. */
export function byteaFromHex(text: string, where: string): Uint8Array {
  if (!/^\\x([0-9a-fA-F]{2})*$/.test(text)) {
    throw new TidemarkError(`${where}: bytea text is not hex output (bytea_output=hex)`, {
      code: 'PG_PROTOCOL',
      context: { where },
    });
  }
  return new Uint8Array(Buffer.from(text.slice(2), 'hex'));
}

/** One cell of the stream or of a baseline row (text or null) as a record Value. */
export function cellValue(text: string | null, bytea: boolean, where: string): Value {
  if (text === null) return null;
  return bytea ? byteaFromHex(text, where) : text;
}

/** Where a change is, for errors: text, or made only when an error needs it (capture's per-row path). */
export type Where = string | (() => string);
const whereText = (w: Where): string => (typeof w === 'string' ? w : w());

function tupleValues(shape: TableShape, tuple: readonly PgValue[], where: Where): (Value | undefined)[] {
  const out: (Value | undefined)[] = new Array(tuple.length);
  for (let i = 0; i < tuple.length; i++) {
    const c = tuple[i] as PgValue;
    if (c.kind === 'unchanged') out[i] = undefined;
    else if (c.kind === 'null') out[i] = null;
    else if (shape.bytea[i] !== true) out[i] = c.text;
    else out[i] = byteaFromHex(c.text, `${whereText(where)} column ${shape.columns[i]?.name ?? String(i)}`);
  }
  return out;
}

function unresolved(shape: TableShape, column: string, where: Where): never {
  throw new TidemarkError(
    `${whereText(where)}: ${shape.schema}.${shape.table} column ${column} is an unchanged TOAST value that the old image does ` +
      `not carry; capture stops rather than write NULL: ALTER TABLE ${shape.schema}.${shape.table} REPLICA ` +
      'IDENTITY FULL, then re-baseline',
    { code: 'PG_TOAST_UNRESOLVED', retriable: false, context: { schema: shape.schema, table: shape.table, column } },
  );
}

function complete(shape: TableShape, v: (Value | undefined)[], where: Where): Value[] {
  for (let i = 0; i < v.length; i++) {
    if (v[i] === undefined) unresolved(shape, shape.columns[i]?.name ?? String(i), where);
  }
  return v as Value[];
}

export type PgChange =
  | { readonly tag: 'insert'; readonly newTuple: readonly PgValue[] }
  | {
      readonly tag: 'update';
      readonly old?: { readonly kind: 'key' | 'old'; readonly tuple: readonly PgValue[] };
      readonly newTuple: readonly PgValue[];
    }
  | { readonly tag: 'delete'; readonly old: { readonly kind: 'key' | 'old'; readonly tuple: readonly PgValue[] } };

/** The record operation and row image of one change. `where` names it in errors (e.g. "xid 734 at 0/16B3748"). */
export function rowImage(shape: TableShape, m: PgChange, where: Where): { op: RowOp; image: RowImage } {
  switch (m.tag) {
    case 'insert':
      return {
        op: 'insert',
        image: { before: null, after: complete(shape, tupleValues(shape, m.newTuple, where), where) },
      };
    case 'delete':
      return {
        op: 'delete',
        image: { before: complete(shape, tupleValues(shape, m.old.tuple, where), where), after: null },
      };
    case 'update': {
      const old = m.old ? tupleValues(shape, m.old.tuple, where) : undefined;
      const fresh = tupleValues(shape, m.newTuple, where);
      const oldFull = m.old?.kind === 'old';
      const after = complete(
        shape,
        fresh.map((v, i) => (v === undefined && oldFull ? old?.[i] : v)),
        where,
      );
      const before = old ? complete(shape, old, where) : after;
      return { op: 'update', image: { before, after } };
    }
  }
}
