import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { keyHash, keyText, parseKeyArg } from './key.ts';

describe('keyText', () => {
  it('renders each value kind as JSON text', () => {
    expect(keyText([42n])).toBe('["42"]');
    expect(keyText([-7n, 'a"b', 1.5, new Uint8Array([0, 15, 255]), null])).toBe('["-7","a\\"b","1.5","0x000fff",null]');
    expect(keyText([null])).toBe('[null]');
    expect(keyText(['x,y'])).toBe('["x,y"]');
    expect(keyText([])).toBe('[]');
    expect(JSON.parse(keyText([18446744073709551615n, 'é']))).toEqual(['18446744073709551615', 'é']);
  });

  it('a bigint and the same decimal string give the same text', () => {
    expect(keyText([5n, 'x'])).toBe(keyText(['5', 'x']));
  });
});

describe('keyHash', () => {
  it('is a deterministic safe integer that separates close keys', () => {
    const seen = new Set<number>();
    let bad = 0;
    for (let i = 0; i < 100_000; i++) {
      const h = keyHash(keyText([BigInt(i)]));
      if (!Number.isSafeInteger(h) || h < 0) bad++;
      seen.add(h);
    }
    expect(bad).toBe(0);
    expect(seen.size).toBe(100_000);
    expect(keyHash('["1"]')).toBe(keyHash('["1"]'));
    expect(keyHash('["1"]')).not.toBe(keyHash('["2"]'));
    expect(keyHash('')).toBeGreaterThan(0);
  });
});

describe('parseKeyArg', () => {
  it('orders the values by the key columns', () => {
    expect(parseKeyArg('id=42', ['id'])).toBe(keyText([42n]));
    expect(parseKeyArg('line=3,order_id=7', ['order_id', 'line'])).toBe(keyText([7n, 3n]));
    expect(parseKeyArg('ID=9', ['id'])).toBe('["9"]');
    expect(parseKeyArg(' id =5', ['id'])).toBe('["5"]');
  });

  it('keeps "=" after the first inside the value, and unescapes \\, and \\\\', () => {
    expect(parseKeyArg('k=a=b', ['k'])).toBe('["a=b"]');
    expect(parseKeyArg('k=a\\,b,n=1', ['k', 'n'])).toBe(keyText(['a,b', '1']));
    expect(parseKeyArg('k=a\\\\', ['k'])).toBe(keyText(['a\\']));
    expect(parseKeyArg('k=', ['k'])).toBe('[""]');
  });

  it('accepts a bare value for a single-column key', () => {
    expect(parseKeyArg('42', ['id'])).toBe('["42"]');
    expect(parseKeyArg('a\\,b', ['id'])).toBe('["a,b"]');
  });

  it('names the key columns when columns are missing, extra, unknown or repeated', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(TidemarkError);
        expect((e as TidemarkError).code).toBe('USAGE');
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(err(() => parseKeyArg('order_id=7', ['order_id', 'line']))).toMatch(
      /missing line \(the key is order_id, line; expected order_id=…,line=…\)/,
    );
    expect(err(() => parseKeyArg('id=1,x=2', ['id']))).toMatch(/"x" is not a primary-key column \(the key is id\)/);
    expect(err(() => parseKeyArg('id=1,id=2', ['id']))).toMatch(/column id is given twice/);
    expect(err(() => parseKeyArg('7', ['a', 'b']))).toMatch(/"7" is not column=value \(expected a=…,b=…\)/);
    expect(err(() => parseKeyArg('id=1', []))).toMatch(/no primary key/);
  });
});
