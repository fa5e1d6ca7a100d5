import { describe, expect, it } from 'vitest';
import { backupSchema } from './config.ts';
import { checkDrills } from './drill-config.ts';

const base = {
  stores: [{ name: 'local', kind: 'dir', path: '/b' }],
  encryption: { key_env: 'K' },
  logs: [{ name: 'binlogs', store: 'local', server_id: 4242 }],
  jobs: [
    { name: 'nightly', store: 'local', type: 'full', logs: 'binlogs' },
    { name: 'bare', store: 'local', type: 'full' },
  ],
};
const drill = (d: Record<string, unknown>) => ({ job: 'nightly', schedule: { cron: '0 3 * * *' }, ...d });

describe('backup.drills config', () => {
  it('parses drills with defaults; the log job is the job`s logs: unless given', () => {
    const b = backupSchema.parse({
      ...base,
      drills: [drill({ scratch_port: 3399 }), drill({ job: 'bare', scratch_port: 3398, log_job: 'binlogs' })],
    });
    expect(b.drills[0]).toMatchObject({ job: 'nightly', scratch_port: 3399, wait_seconds: 60 });
    expect(b.drills[0]?.schedule.time_zone).toBe('UTC');
    expect([...checkDrills(b).values()]).toEqual(['binlogs', 'binlogs']);
    expect(backupSchema.parse(base).drills).toEqual([]);
  });

  it('refuses bad drills, naming the key path', () => {
    expect(backupSchema.safeParse({ ...base, drills: [drill({})] }).success).toBe(false); // no scratch_port
    expect(backupSchema.safeParse({ ...base, drills: [drill({ scratch_port: 1, extra: 1 })] }).success).toBe(false);
    const check = (drills: unknown[]) => () => checkDrills(backupSchema.parse({ ...base, drills }));
    expect(check([drill({ job: 'nope', scratch_port: 1 })])).toThrow(/backup.drills.0.job: no job "nope"/);
    expect(check([drill({ job: 'bare', scratch_port: 1 })])).toThrow(/backup.drills.0: job "bare" has no 'logs:'/);
    expect(check([drill({ scratch_port: 1, log_job: 'other' })])).toThrow(/no log job "other"/);
    expect(check([drill({ scratch_port: 1 }), drill({ scratch_port: 2 })])).toThrow(/"nightly" has two drills/);
    expect(check([drill({ scratch_port: 1 }), drill({ job: 'bare', log_job: 'binlogs', scratch_port: 1 })])).toThrow(
      /backup.drills.1.scratch_port: 1 is used by another drill/,
    );
  });
});
