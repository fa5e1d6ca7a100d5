import { describe, expect, it } from 'vitest';
import { withRefSystemIds } from './spatial-ddl.ts';

const CREATE = [
  'CREATE TABLE `t` (',
  '  `id` int(11) NOT NULL,',
  '  `p` point NOT NULL,',
  '  `pp` point DEFAULT NULL,',
  '  `we``ird` geometrycollection DEFAULT NULL,',
  '  `g` geometry DEFAULT NULL,',
  '  PRIMARY KEY (`id`),',
  '  SPATIAL KEY `p` (`p`)',
  ') ENGINE=InnoDB',
].join('\n');

describe('withRefSystemIds', () => {
  it('puts each declared SRID after its column type, and touches nothing else', () => {
    const out = withRefSystemIds(
      CREATE,
      new Map([
        ['p', 4326],
        ['we`ird', 3857],
      ]),
    );
    expect(out.split('\n')).toEqual([
      'CREATE TABLE `t` (',
      '  `id` int(11) NOT NULL,',
      '  `p` point REF_SYSTEM_ID=4326 NOT NULL,',
      '  `pp` point DEFAULT NULL,',
      '  `we``ird` geometrycollection REF_SYSTEM_ID=3857 DEFAULT NULL,',
      '  `g` geometry DEFAULT NULL,',
      '  PRIMARY KEY (`id`),',
      '  SPATIAL KEY `p` (`p`)',
      ') ENGINE=InnoDB',
    ]);
  });

  it('leaves a column that is not spatial, missing, or already carries the attribute', () => {
    expect(withRefSystemIds(CREATE, new Map([['id', 4326]]))).toBe(CREATE);
    expect(withRefSystemIds(CREATE, new Map([['nope', 4326]]))).toBe(CREATE);
    const once = withRefSystemIds(CREATE, new Map([['g', 2154]]));
    expect(once).toContain('`g` geometry REF_SYSTEM_ID=2154 DEFAULT NULL');
    expect(withRefSystemIds(once, new Map([['g', 2154]]))).toBe(once);
  });
});
