import { describe, expect, it } from 'vitest';
import { backupSchema } from './config.ts';

const base = { encryption: { key_env: 'K' } };
const issues = (v: unknown): string[] => {
  const r = backupSchema.safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('backup config: site stores and serve', () => {
  it('accepts a site store, and a serve entry of a dir store of that site', () => {
    const b = backupSchema.parse({
      ...base,
      stores: [
        { name: 'vault', kind: 'dir', path: '/srv/b', site: 'dr1' },
        { name: 'offsite', kind: 'site', site: 'dr1', address: '10.0.0.2:7410' },
      ],
      serve: [{ site: 'dr1', listen: '0.0.0.0:7410', store: 'vault', allow: ['primary'] }],
    });
    expect(b.stores[1]).toEqual({ name: 'offsite', kind: 'site', site: 'dr1', address: '10.0.0.2:7410' });
    expect(b.serve[0]?.allow).toEqual(['primary']);
  });

  it('names the key and what is expected', () => {
    expect(issues({ ...base, stores: [{ name: 'o', kind: 'site', site: 'dr1', address: 'nohost' }] })).toEqual([
      'stores.0.address: host:port, e.g. 10.0.0.2:7410',
    ]);
    const stores = [
      { name: 'vault', kind: 'dir', path: '/srv/b', site: 'dr1' },
      { name: 'offsite', kind: 'site', site: 'dr1', address: '10.0.0.2:7410' },
    ];
    expect(issues({ ...base, stores, serve: [{ site: 'dr1', listen: ':7410', store: 'offsite' }] })).toEqual([
      'serve.0.listen: host:port, e.g. 10.0.0.2:7410',
      'serve.0.store: "offsite" must be a dir or s3 store of backup.stores (a site serves its own stores)',
    ]);
    expect(issues({ ...base, stores, serve: [{ site: 'dr2', listen: '[::]:7410', store: 'vault' }] })).toEqual([
      'serve.0.store: store "vault" belongs to site dr1; site dr2 cannot serve it',
    ]);
  });
});
