import { describe, expect, it } from 'vitest';
import { ByTable, sameItems } from './collections.ts';

describe('sameItems', () => {
  it('compares element by element', () => {
    expect(sameItems(['a', 'b'], ['a', 'b'])).toBe(true);
    expect(sameItems([1, 2], [1, 3])).toBe(false);
    expect(sameItems([1], [1, 2])).toBe(false);
    expect(sameItems([], [])).toBe(true);
  });
});

describe('ByTable', () => {
  it('keeps a value per schema and table, each level starting over at its bound', () => {
    const c = new ByTable<number>(2, 2);
    c.set('s', 't1', 1);
    c.set('s', 't2', 2);
    expect(c.get('s', 't1')).toBe(1);
    expect(c.get('other', 't1')).toBeUndefined();
    c.set('s', 't3', 3); // a third table of schema s: that schema's tables start over
    expect(c.get('s', 't1')).toBeUndefined();
    expect(c.get('s', 't3')).toBe(3);
    c.set('u', 't', 4);
    c.set('v', 't', 5); // a third schema: all schemas start over
    expect(c.get('s', 't3')).toBeUndefined();
    expect(c.get('v', 't')).toBe(5);
    c.clear();
    expect(c.get('v', 't')).toBeUndefined();
  });
});
