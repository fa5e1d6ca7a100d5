import { describe, expect, it } from 'vitest';
import { Condition } from './condition.ts';

describe('Condition', () => {
  it('wakes every waiter on notify; each resolves only once its own predicate holds', async () => {
    const c = new Condition();
    let n = 0;
    const order: string[] = [];
    const a = c.until(() => n >= 1).then(() => order.push('a'));
    const b = c.until(() => n >= 2).then(() => order.push('b'));
    n = 1;
    c.notify();
    await a;
    expect(order).toEqual(['a']);
    n = 2;
    c.notify();
    await b;
    expect(order).toEqual(['a', 'b']);
  });

  it('resolves at once when the predicate already holds', async () => {
    await new Condition().until(() => true);
  });
});
