import { describe, expect, it } from 'vitest';
import { compileCalendar, constantCalendar } from './calendar.ts';
import {
  failedForMs,
  formatTransition,
  initialMonitorState,
  Monitor,
  type MonitorEvent,
  type MonitorSpec,
  nextIntervalMs,
  stepMonitor,
  type Transition,
} from './monitor.ts';

const T0 = Date.parse('2026-03-02T10:00:00Z'); // a Monday

function spec(over: Partial<MonitorSpec> = {}): MonitorSpec {
  return {
    probes: [
      { name: 'heartbeat', kind: 'heartbeat', critical: true },
      { name: 'link', kind: 'link', critical: true },
      { name: 'tcp:app', kind: 'tcp', critical: false },
    ],
    thresholds: { suspect_after: 2, fail_after_ms: 3000, fail_after_count: 3, recover_after: 2 },
    overall: 'all',
    suspect_interval_ms: 200,
    calendar: constantCalendar(1000),
    ...over,
  };
}

const ok = (probe: string, t: number, extra: { latencyMs?: number; lagMs?: number } = {}): MonitorEvent => ({
  type: 'success',
  probe,
  at: T0 + t,
  ...extra,
});
const ko = (probe: string, t: number, error = 'ECONNREFUSED'): MonitorEvent => ({
  type: 'failure',
  probe,
  at: T0 + t,
  error,
});

/** Runs events through a fresh monitor, returning every transition as "probe:from>to@t". */
function run(s: MonitorSpec, events: MonitorEvent[]): { m: Monitor; log: string[]; all: Transition[] } {
  const m = new Monitor(s, T0);
  const all: Transition[] = [];
  for (const e of events) all.push(...m.apply(e));
  return { m, all, log: all.map((t) => `${t.probe}:${t.from}>${t.to}@${t.at - T0}`) };
}

describe('a probe', () => {
  it('goes healthy → suspect after suspect_after failures, failed after count AND time, back after recover_after', () => {
    const { log, m } = run(spec({ overall: 'any' }), [
      ko('heartbeat', 0),
      ko('heartbeat', 200), // 2 failures: suspect
      ko('heartbeat', 400), // 3 failures but only 0.4 s: still suspect
      ko('heartbeat', 2999),
      ko('heartbeat', 3000), // ≥ 3 failures over 3.0 s: failed
      ok('heartbeat', 3200), // 1 success: still failed
      ok('heartbeat', 3400), // 2 successes: healthy
    ]);
    expect(log).toEqual([
      'heartbeat:healthy>suspect@200',
      'overall:healthy>suspect@200',
      'heartbeat:suspect>failed@3000',
      'overall:suspect>failed@3000',
      'heartbeat:failed>healthy@3400',
      'overall:failed>healthy@3400',
    ]);
    const hb = m.state.probes[0];
    expect(hb?.state).toBe('healthy');
    expect(hb?.successes).toBe(2);
    expect(hb?.lastError).toBe('ECONNREFUSED');
  });

  it('needs the count too: two failures spanning a long time are not enough', () => {
    const { m } = run(spec({ overall: 'any' }), [ko('heartbeat', 0), ko('heartbeat', 10_000)]);
    expect(m.state.probes[0]?.state).toBe('suspect');
  });

  it('restarts the failure run on one success, so an intermittent primary never fails', () => {
    const events: MonitorEvent[] = [];
    for (let t = 0; t < 20_000; t += 600)
      events.push(ko('heartbeat', t), ko('heartbeat', t + 200), ok('heartbeat', t + 400));
    const { m, all } = run(spec({ overall: 'any' }), events);
    expect(all.some((t) => t.to === 'failed')).toBe(false);
    expect(m.state.probes[0]?.state).toBe('suspect'); // recover_after 2 is never met either
  });

  it('reaches failed on a tick once time passes, without a new result', () => {
    const s = spec({ overall: 'any' });
    const { m } = run(s, [ko('heartbeat', 0), ko('heartbeat', 100), ko('heartbeat', 200)]);
    expect(m.apply({ type: 'tick', at: T0 + 2999 })).toEqual([]);
    const t = m.apply({ type: 'tick', at: T0 + 3000 });
    expect(t.map((x) => `${x.probe}:${x.to}`)).toEqual(['heartbeat:failed', 'overall:failed']);
    expect(t[0]?.reason).toMatch(
      /^3 consecutive failures over 3\.0 s \(thresholds: 3 and 3\.0 s\) \(last: ECONNREFUSED\)$/,
    );
  });

  it('takes per-probe threshold overrides', () => {
    const s = spec({
      overall: 'any',
      probes: [
        {
          name: 'heartbeat',
          kind: 'heartbeat',
          critical: true,
          thresholds: { suspect_after: 1, fail_after_ms: 0, fail_after_count: 1 },
        },
      ],
    });
    const { log } = run(s, [ko('heartbeat', 0)]);
    expect(log).toEqual(['heartbeat:healthy>failed@0', 'overall:healthy>failed@0']);
  });

  it('keeps latency and heartbeat lag of the last success', () => {
    const { m } = run(spec(), [
      ok('heartbeat', 0, { latencyMs: 3, lagMs: 120 }),
      ok('heartbeat', 100, { latencyMs: 4 }),
    ]);
    expect(m.state.probes[0]).toMatchObject({ lastLatencyMs: 4, lastLagMs: 120, lastSuccessAt: T0 + 100 });
  });

  it('refuses an unknown probe and duplicate names', () => {
    const m = new Monitor(spec(), T0);
    expect(() => m.apply(ko('nope', 0))).toThrow(/unknown probe "nope" \(known: heartbeat, link, tcp:app\)/);
    const dup = spec({
      probes: [
        { name: 'a', kind: 'tcp', critical: true },
        { name: 'a', kind: 'tcp', critical: true },
      ],
    });
    expect(() => initialMonitorState(dup, T0)).toThrow(/"a" is reserved or repeated/);
  });
});

describe('overall', () => {
  const failAll = (probe: string): MonitorEvent[] => [ko(probe, 0), ko(probe, 1500), ko(probe, 3000)];

  it('"all": one critical probe failed leaves the primary suspect; all of them make it failed', () => {
    const s = spec();
    const { m, all } = run(s, failAll('heartbeat'));
    expect(m.state.overall).toBe('suspect');
    expect(all.at(-1)?.probe).toBe('heartbeat');
    const t = failAll('link').flatMap((e) => m.apply(e));
    expect(m.state.overall).toBe('failed');
    expect(t.at(-1)).toMatchObject({
      probe: 'overall',
      from: 'suspect',
      to: 'failed',
      reason: 'every critical probe failed: heartbeat, link',
    });
    expect(m.state.since).toBe(T0 + 3000);
    expect(failedForMs(m.state, T0 + 4000)).toBe(1000);
  });

  it('"any": one critical probe failed is enough', () => {
    const { m, all } = run(spec({ overall: 'any' }), failAll('link'));
    expect(m.state.overall).toBe('failed');
    expect(all.at(-1)?.reason).toBe('critical probe failed: link');
  });

  it('a failed non-critical probe only makes the primary suspect', () => {
    const { m, all } = run(spec({ overall: 'any' }), failAll('tcp:app'));
    expect(m.state.probes[2]?.state).toBe('failed');
    expect(m.state.overall).toBe('suspect');
    const overall = all.filter((t) => t.probe === 'overall');
    expect(overall.map((t) => `${t.to}: ${t.reason}`)).toEqual(['suspect: not healthy: tcp:app suspect']);
  });

  it('never reports failed with no critical probe at all', () => {
    const s = spec({ overall: 'all', probes: [{ name: 'tcp:x', kind: 'tcp', critical: false }] });
    const { m } = run(s, failAll('tcp:x'));
    expect(m.state.overall).toBe('suspect');
  });

  it('is pure: stepping never changes the state passed in', () => {
    const s = spec();
    const st = initialMonitorState(s, T0);
    const copy = structuredClone(st);
    const r = stepMonitor(s, st, ko('heartbeat', 0));
    stepMonitor(s, r.state, ko('heartbeat', 100));
    expect(st).toEqual(copy);
    expect(r.state.probes[0]?.failures).toBe(1);
  });
});

describe('next probe interval', () => {
  it('follows the calendar while healthy and shortens while suspect or failed', () => {
    const calendar = compileCalendar({
      time_zone: 'UTC',
      default_interval_ms: 5000,
      windows: [{ days: 'mon-fri', from: '08:00', to: '20:00', interval_ms: 500 }],
    });
    const s = spec({ calendar, overall: 'any' });
    const m = new Monitor(s, T0);
    expect(m.nextIntervalMs(T0)).toBe(500); // Monday 10:00: busy
    expect(m.nextIntervalMs(T0 + 11 * 3600_000)).toBe(5000); // Monday 21:00: idle
    m.apply(ko('heartbeat', 0));
    m.apply(ko('heartbeat', 100));
    expect(m.state.overall).toBe('suspect');
    expect(m.nextIntervalMs(T0 + 11 * 3600_000)).toBe(200);
    m.apply(ko('heartbeat', 3100));
    expect(m.state.overall).toBe('failed');
    expect(nextIntervalMs(s, m.state, T0)).toBe(200);
  });

  it('probes at the suspect interval from the first failure on, back to the calendar after a success', () => {
    const s = spec({ suspect_interval_ms: 200 });
    const m = new Monitor(s, T0);
    expect(m.nextIntervalMs(T0)).toBe(1000);
    m.apply(ko('heartbeat', 0));
    // One failure: not suspect yet (suspect_after 2), but the failure run it starts is timed: probe sooner.
    expect(m.state.overall).toBe('healthy');
    expect(m.nextIntervalMs(T0)).toBe(200);
    m.apply(ok('heartbeat', 200));
    expect(m.nextIntervalMs(T0)).toBe(1000);
  });
});

describe('formatTransition', () => {
  it('gives one line with time, probe, states and reason', () => {
    expect(formatTransition({ probe: 'link', from: 'healthy', to: 'suspect', at: T0, reason: 'x' })).toBe(
      '2026-03-02T10:00:00.000Z link healthy → suspect: x',
    );
  });
});
