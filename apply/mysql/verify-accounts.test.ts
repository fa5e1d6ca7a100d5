import { describe, expect, it } from 'vitest';
import { accountDifference } from './verify-accounts.ts';

const HASH = '*0123456789ABCDEF0123456789ABCDEF01234567';
const create = (h: string) => `CREATE USER \`app\`@\`%\` IDENTIFIED BY PASSWORD '${h}'`;
const usage = (h: string) => `GRANT USAGE ON *.* TO \`app\`@\`%\` IDENTIFIED BY PASSWORD '${h}'`;
const sel = 'GRANT SELECT ON `shop`.* TO `app`@`%`';

describe('accountDifference', () => {
  it('is equal when both sides have the same definition and grants, or neither has the account', () => {
    const a = { create: create(HASH), grants: [sel, usage(HASH)] };
    expect(accountDifference(a, { ...a })).toBeUndefined();
    expect(accountDifference(null, null)).toBeUndefined();
  });

  it('names the side an account is missing on', () => {
    const a = { create: null, grants: [sel] };
    expect(accountDifference(a, null)).toBe('not on the replica');
    expect(accountDifference(null, a)).toMatch(/^not on the source/);
  });

  it('reports a changed password without showing either hash', () => {
    const other = '*FEDCBA9876543210FEDCBA9876543210FEDCBA98';
    const why = accountDifference(
      { create: create(HASH), grants: [usage(HASH)] },
      { create: create(other), grants: [usage(other)] },
    );
    expect(why).toMatch(/SHOW CREATE USER differs/);
    expect(why).toMatch(
      /grants on the source only: GRANT USAGE ON \*\.\* TO `app`@`%` IDENTIFIED BY PASSWORD '<redacted>'/,
    );
    expect(why).not.toContain(HASH);
    expect(why).not.toContain(other);
  });

  it('lists the grants on one side only, at most three each', () => {
    const extra = ['a', 'b', 'c', 'd'].map((t) => `GRANT SELECT ON \`shop\`.\`${t}\` TO \`app\`@\`%\``);
    const why = accountDifference({ create: null, grants: [sel] }, { create: null, grants: [sel, ...extra] });
    expect(why).toBe(`grants on the replica only: ${extra.slice(0, 3).join('; ')}; … 1 more`);
  });
});
