import { describe, expect, it } from 'vitest';
import { failoverSchema } from './config.ts';

/** "path: message" per issue, the way the config loader reports them. */
const ACCOUNT = { account: { user: 'tidemark_failover', password_env: 'TM_FAILOVER_PW' } };

function issues(input: unknown): string[] {
  const r = failoverSchema.safeParse(input && typeof input === 'object' ? { ...ACCOUNT, ...input } : input);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`);
}

describe('failoverSchema', () => {
  it('requires the account, and at most one password key', () => {
    expect(failoverSchema.safeParse({}).success).toBe(false);
    expect(issues({ account: { user: 'u', password: 'a', password_env: 'B' } })).toEqual([
      'account: give at most one of password, password_env, password_file',
    ]);
  });

  it('fills every default from a section with only its account (manual mode, no witness needed)', () => {
    const c = failoverSchema.parse(ACCOUNT);
    expect(c.mode).toBe('manual');
    expect(c.monitor).toMatchObject({
      suspect_after: 2,
      fail_after_count: 3,
      fail_after_ms: 1500,
      recover_after: 3,
      suspect_interval_ms: 100,
      overall: 'all',
      heartbeat: { table: 'tidemark.heartbeat', critical: true },
      link: { enabled: true, critical: false },
      tcp: [],
    });
    expect(c.calendar).toEqual({ time_zone: 'UTC', default_interval_ms: 300, windows: [] });
    expect(c.election).toEqual({ unknown_standbys: 'wait', priority: {}, agree_for_ms: 0 });
    expect(c.min_interval_ms).toBe(3_600_000);
    expect(c.fence).toEqual({ read_only: true, kill_sessions: true, timeout_ms: 30_000, confirm_for_ms: 5000 });
    // Attempts that stopped before promotion are retried (issue #17): 1 s doubling up to 15 s.
    expect(c.takeover_retry).toEqual({ initial_ms: 1000, max_ms: 15_000 });
    expect(c.vip).toBeUndefined();
    expect(c.witness).toBeUndefined();
  });

  it('accepts a full automatic section', () => {
    const c = failoverSchema.parse({
      ...ACCOUNT,
      mode: 'automatic',
      monitor: { tcp: [{ name: 'app', address: '10.0.0.5:8080', critical: true }] },
      calendar: {
        time_zone: 'Europe/Paris',
        windows: [{ days: 'mon-fri', from: '08:00', to: '20:00', interval_ms: 500 }],
      },
      witness: { address: 'witness:7410' },
      election: { priority: { dr1: 10 } },
      vip: { address: '10.231.0.100/24', interface: 'eth0' },
      fence: { command: ['/usr/local/bin/stonith', 'primary'] },
      hooks: { webhook: { url: 'https://alerts.example/hook' }, command: ['logger', '-t', 'tidemark'] },
    });
    expect(c.vip).toEqual({ address: '10.231.0.100/24', interface: 'eth0', garp_count: 3 });
    expect(c.witness?.max_age_ms).toBe(5000);
    expect(c.hooks.webhook?.timeout_ms).toBe(5000);
  });

  it('names the key and the expected value', () => {
    expect(issues({ mode: 'automatic' })).toEqual([
      'witness: automatic mode needs a witness (witness.address): a standby never takes over on its own view alone',
    ]);
    expect(issues({ vip: { address: '10.0.0.300/24', interface: 'eth0' } })).toEqual([
      'vip.address: an IPv4 address with its prefix length, e.g. "10.0.0.50/24"',
    ]);
    expect(issues({ vip: { address: '10.0.0.3', interface: 'an-interface-name-too-long' } })).toHaveLength(2);
    expect(issues({ witness: { address: 'nohost' } })).toEqual([
      'witness.address: a "host:port" address with a port of 1-65535',
    ]);
    expect(issues({ monitor: { suspect_after: 5, fail_after_count: 2 } })).toEqual([
      'monitor.suspect_after: suspect_after must not exceed fail_after_count (a probe is suspect before it is failed)',
    ]);
    expect(issues({ hooks: { webhook: { url: 'ftp://x/y' } } })[0]).toMatch(
      /^hooks\.webhook\.url: an http:\/\/ or https:\/\/ URL/,
    );
    expect(issues({ hooks: { webhook: {} } })).toEqual(['hooks.webhook: give exactly one of url, url_env']);
    expect(issues({ fence: { command: [] } })).toEqual(['fence.command: a command as a list: [program, arg, …]']);
    expect(issues({ monitor: { colour: 'red' } })[0]).toMatch(/^monitor: Unrecognized key/);
  });

  it('reports calendar errors at the window key', () => {
    expect(
      issues({
        calendar: {
          windows: [
            { days: 'mon', from: '08:00', to: '09:00', interval_ms: 100 },
            { days: 'xyz', from: '08:00', to: '09:00', interval_ms: 100 },
          ],
        },
      }),
    ).toEqual([
      'calendar.windows.1.days: "xyz" is not a day (expected mon, tue, wed, thu, fri, sat, sun, a range or "daily")',
    ]);
    expect(issues({ calendar: { time_zone: 'Nowhere/City' } })).toEqual([
      'calendar.time_zone: "Nowhere/City" is not a time zone (expected "UTC" or an IANA name such as "Europe/Paris")',
    ]);
  });
});
