import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import type { PgValue } from './pgoutput-messages.ts';
import type { TableShape } from './relations.ts';
import { byteaFromHex, rowImage } from './rows.ts';

const shape: TableShape = {
  schema: 'app',
  table: 't',
  columns: [
    { name: 'id', type: 'int4', columnType: 'integer' },
    { name: 'bin', type: 'bytea', columnType: 'bytea' },
    { name: 'big', type: 'text', columnType: 'text' },
  ],
  pk: ['id'],
  bytea: [false, true, false],
};
const t = (text: string, typeOid = 25): PgValue => ({ kind: 'text', text, typeOid });
const nul: PgValue = { kind: 'null', typeOid: 25 };
const unchanged: PgValue = { kind: 'unchanged', typeOid: 25 };

describe('pgoutput changes as record row images', () => {
  it('keeps text exactly, NULL as null, bytea as bytes', () => {
    const { op, image } = rowImage(shape, { tag: 'insert', newTuple: [t('1'), t('\\x00ff10', 17), nul] }, 'x');
    expect(op).toBe('insert');
    expect(image.before).toBeNull();
    expect(image.after).toEqual(['1', new Uint8Array([0, 255, 16]), null]);
    expect(byteaFromHex('\\x', 'x')).toEqual(new Uint8Array([]));
    expect(() => byteaFromHex('abc', 'x')).toThrow(/not hex output/);
  });

  it('fills an unchanged TOAST value from the FULL old image', () => {
    const old = { kind: 'old' as const, tuple: [t('1'), nul, t('huge text')] };
    const { op, image } = rowImage(shape, { tag: 'update', old, newTuple: [t('1'), t('\\x01', 17), unchanged] }, 'x');
    expect(op).toBe('update');
    expect(image.before).toEqual(['1', null, 'huge text']);
    expect(image.after).toEqual(['1', new Uint8Array([1]), 'huge text']);
  });

  it('refuses (PG_TOAST_UNRESOLVED) an unchanged TOAST value the old image does not carry, never writes NULL', () => {
    const key = { kind: 'key' as const, tuple: [t('1'), nul, nul] };
    for (const m of [
      { tag: 'update' as const, newTuple: [t('1'), nul, unchanged] },
      { tag: 'update' as const, old: key, newTuple: [t('1'), nul, unchanged] },
    ]) {
      let err: unknown;
      try {
        rowImage(shape, m, 'xid 7 (commit 0/10)');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TidemarkError);
      expect((err as TidemarkError).code).toBe('PG_TOAST_UNRESOLVED');
      expect((err as Error).message).toContain('app.t column big is an unchanged TOAST value');
    }
  });

  it('a delete carries the old image; an opted-out update without old tuple uses the new row as before', () => {
    const del = rowImage(shape, { tag: 'delete', old: { kind: 'old', tuple: [t('2'), nul, t('z')] } }, 'x');
    expect(del).toEqual({ op: 'delete', image: { before: ['2', null, 'z'], after: null } });
    const upd = rowImage(shape, { tag: 'update', newTuple: [t('3'), nul, t('y')] }, 'x');
    expect(upd.image.before).toEqual(['3', null, 'y']);
  });
});
