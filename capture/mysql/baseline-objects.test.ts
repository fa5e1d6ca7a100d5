import { describe, expect, it } from 'vitest';
import { viewOrder } from './baseline-objects.ts';

const v = (name: string, text: string, schema = 's') => ({ schema, name, text });

describe('viewOrder', () => {
  it('puts a view after the views it reads, qualified or not, whatever the names', () => {
    const views = [
      v('a_top', 'CREATE VIEW `a_top` AS select `m`.`x` AS `x` from `s`.`m_mid` `m`'),
      v('m_mid', 'CREATE VIEW `m_mid` AS select `z_base`.`x` AS `x` from `z_base`'),
      v('z_base', 'CREATE VIEW `z_base` AS select `t`.`x` AS `x` from `s`.`t`'),
      v('z_base', 'CREATE VIEW `o`.`z_base` AS select 1 AS `x`', 'o'),
    ];
    expect(viewOrder(views).map((x) => `${x.schema}.${x.name}`)).toEqual([
      's.z_base',
      's.m_mid',
      's.a_top',
      'o.z_base',
    ]);
  });

  it('keeps going on a cycle (a name that only looks like a reference)', () => {
    const views = [v('a', 'select `b` from `t`'), v('b', 'select `a` from `t`')];
    expect(viewOrder(views).map((x) => x.name)).toEqual(['a', 'b']);
  });
});
