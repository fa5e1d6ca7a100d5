import { describe, expect, it } from 'vitest';
import type { Decision } from '../failover/decide.ts';
import type { FetchedWitnessView } from '../failover/witness-client.ts';
import { serviceLine, witnessContactAt } from './failover-service.ts';

const T = Date.parse('2026-03-02T10:00:00Z');

function view(state: 'healthy' | 'failed', lastSuccessAt: number | null): FetchedWitnessView {
  const report = {
    version: 1 as const,
    state,
    since: 1_000,
    // The witness's clock is 1 h behind this standby's: only differences on its own clock are used.
    now: 9_000,
    probes: [
      {
        name: 'heartbeat',
        kind: 'heartbeat' as const,
        critical: true,
        state,
        since: 1_000,
        failures: 0,
        successes: 1,
        failingSince: null,
        lastResultAt: 8_000,
        lastSuccessAt,
        lastError: null,
        lastLatencyMs: 10,
      },
    ],
    candidates: [],
  };
  return { state, since: T - 8000, receivedAt: T, report, candidates: [] } as unknown as FetchedWitnessView;
}

describe('the service line of status (issue #17)', () => {
  it("takes the witness's last contact as an age on its own clock, moved onto this standby's", () => {
    expect(witnessContactAt(view('failed', 5_000))).toBe(T - 3990);
    expect(witnessContactAt(view('failed', null))).toBeNull();
  });

  it('says plainly that there is no writable primary, and why', () => {
    const stopped = { count: 2, lastAt: T - 500, missing: 'fence not confirmed: fence hook … exited with 1' };
    const d: Decision = {
      action: 'none',
      code: 'retry-backoff',
      reason: 'no takeover: attempt 2 stopped before promotion at … (fence not confirmed: …); attempt 3 from …',
    };
    const line = serviceLine('primary', T - 6000, view('failed', 1000), d, {
      lastAutomaticAt: null,
      last: null,
      stopped,
    });
    expect(line).toBe(
      'no writable primary: the primary primary is lost for this standby since 2026-03-02T09:59:54.000Z and for the ' +
        'witness since 2026-03-02T09:59:52.000Z; no takeover yet: attempt 2 stopped before promotion at … (fence not ' +
        'confirmed: …); attempt 3 from …',
    );
    const during = serviceLine(
      'primary',
      T - 6000,
      view('failed', 1000),
      { ...d, code: 'not-long-enough' },
      {
        lastAutomaticAt: null,
        last: null,
        stopped,
      },
      'attempt 3: fence not confirmed yet (try 2): …',
    );
    expect(during).toMatch(
      /; attempt 3: fence not confirmed yet \(try 2\): …; 2 attempt\(s\) stopped before promotion, the last: fence not confirmed: /,
    );
  });

  it('nothing to say while the witness still sees the primary', () => {
    const d: Decision = { action: 'none', code: 'witness-sees-primary', reason: 'no takeover: witness still sees …' };
    expect(serviceLine('primary', T, view('healthy', 8000), d, { lastAutomaticAt: null, last: null })).toBeNull();
  });
});
