import { describe, expect, it } from 'vitest';
import { backupSchema } from './config.ts';

const base = {
  stores: [{ name: 'primary', kind: 'dir', path: '/srv/backups' }],
  encryption: { key_env: 'TIDEMARK_BACKUP_KEY' },
};

describe('backup.logs (log jobs) in the backup section', () => {
  it('defaults: segment_seconds 3, server_id 4242, start oldest; a physical job names its log job', () => {
    const b = backupSchema.parse({
      ...base,
      jobs: [{ name: 'nightly', store: 'primary', type: 'full', logs: 'binlogs' }],
      logs: [{ name: 'binlogs', store: 'primary' }],
    });
    expect(b.logs).toEqual([
      {
        name: 'binlogs',
        store: 'primary',
        segment_seconds: 3,
        server_id: 4242,
        start: 'oldest',
        heartbeat_seconds: 2,
        max_segment_bytes: 16 << 20,
      },
    ]);
    expect(b.jobs[0]?.logs).toBe('binlogs');
    expect(backupSchema.parse(base).logs).toEqual([]);
  });

  it('refuses unknown keys and out-of-range values, naming the key', () => {
    const bad = (logs: unknown) => backupSchema.safeParse({ ...base, logs }).error?.issues.map((i) => i.path.join('.'));
    expect(bad([{ name: 'l', store: 'primary', segment_secs: 5 }])).toEqual(['logs.0']);
    expect(bad([{ name: 'l', store: 'primary', segment_seconds: 0 }])).toEqual(['logs.0.segment_seconds']);
    expect(bad([{ name: 'l', store: 'primary', server_id: 0 }])).toEqual(['logs.0.server_id']);
    expect(bad([{ name: '-l', store: 'primary' }])).toEqual(['logs.0.name']);
  });
});
