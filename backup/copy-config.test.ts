import { describe, expect, it } from 'vitest';
import { backupSchema } from './config.ts';
import { checkCopies, copyOf } from './copy-config.ts';

const base = {
  stores: [
    { name: 'local', kind: 'dir', path: '/b' },
    { name: 'far', kind: 'dir', path: '/f' },
  ],
  encryption: { key_env: 'K' },
};

describe('backup schedules and copies config', () => {
  it('takes a cron or a one-off at, never both nor neither', () => {
    const job = (schedule: unknown) => ({ ...base, jobs: [{ name: 'n', store: 'local', type: 'full', schedule }] });
    expect(backupSchema.parse(job({ cron: '*/5 * * * * *' })).jobs[0]?.schedule?.time_zone).toBe('UTC');
    const at = backupSchema.parse(job({ at: '2027-01-01T03:00:00', time_zone: 'Europe/Paris' }));
    expect(at.jobs[0]?.schedule?.at).toBe('2027-01-01T03:00:00');
    for (const bad of [{ cron: '0 2 * * *', at: '2027-01-01T03:00:00' }, {}, { at: 'tomorrow' }, { cron: 'nope' }])
      expect(backupSchema.safeParse(job(bad)).success, JSON.stringify(bad)).toBe(false);
  });

  it('parses copies with defaults and checks their stores against backup.stores', () => {
    const b = backupSchema.parse({
      ...base,
      copies: [{ name: 'off', from: 'local', to: 'far', schedule: { cron: '@daily' }, retention: { chains: 2 } }],
    });
    expect(b.copies[0]).toMatchObject({ name: 'off', from: 'local', to: 'far', retention: { chains: 2 } });
    expect(() => checkCopies(b)).not.toThrow();
    expect(copyOf(b.copies, 'off').to).toBe('far');
    expect(() => copyOf(b.copies, 'nope')).toThrow(/backup.copies has: off/);
    expect(backupSchema.parse(base).copies).toEqual([]);
    const wrong = backupSchema.parse({ ...base, copies: [{ name: 'x', from: 'local', to: 'mars' }] });
    expect(() => checkCopies(wrong)).toThrow(/backup.copies.0.to: no store "mars"/);
    expect(backupSchema.safeParse({ ...base, copies: [{ name: 'x', from: 'far', to: 'far' }] }).success).toBe(false);
  });
});
