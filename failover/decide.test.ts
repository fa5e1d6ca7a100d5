import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../core/errors.ts';
import {
  type Candidate,
  type DecideInput,
  decideAutomatic,
  decideManual,
  EMPTY_HISTORY,
  historyAfterAttempt,
  historyFromJson,
  historyRecovered,
  rank,
  type TakeoverHistory,
} from './decide.ts';

const NOW = Date.parse('2026-03-02T10:00:00Z');
const pos = (received: bigint, applied = received) => ({ received, applied });
const cand = (name: string, received: bigint | null, over: Partial<Candidate> = {}): Candidate => ({
  name,
  priority: 0,
  position: received === null ? null : pos(received),
  eligible: true,
  ...over,
});

function input(over: Partial<DecideInput> = {}): DecideInput {
  return {
    now: NOW,
    self: 'b',
    local: { state: 'failed', since: NOW - 5000 },
    witness: { state: 'failed', since: NOW - 4000, receivedAt: NOW - 300 },
    candidates: [cand('a', 100n), cand('b', 120n)],
    history: EMPTY_HISTORY,
    policy: {
      mode: 'automatic',
      min_interval_ms: 3600_000,
      witness_max_age_ms: 2000,
      agree_for_ms: 0,
      unknown_standbys: 'wait',
    },
    ...over,
  };
}

describe('decideAutomatic', () => {
  it('takes over when this standby and the witness both lost the primary and it is the most advanced', () => {
    const d = decideAutomatic(input());
    expect(d.action).toBe('takeover');
    if (d.action !== 'takeover') return;
    expect(d.winner).toBe('b');
    expect(d.reason).toBe(
      'takeover by b: primary failed for this standby since 2026-03-02T09:59:55.000Z and for the witness since ' +
        '2026-03-02T09:59:56.000Z; b is the most advanced standby (received 120, applied 120; ahead of a by received position)',
    );
    // Persisted before acting: an attempt in flight, not yet a takeover (historyAfterAttempt records the end).
    expect(d.history).toEqual({ lastAutomaticAt: null, last: null, pendingSince: NOW });
  });

  it('defers to a more advanced standby, naming it', () => {
    const d = decideAutomatic(input({ self: 'a' }));
    expect(d).toMatchObject({ action: 'defer', winner: 'b' });
    expect(d.reason).toMatch(/^b takes over: /);
  });

  const noTakeover: [string, Partial<DecideInput>, string, RegExp][] = [
    [
      'primary healthy here',
      { local: { state: 'healthy', since: NOW } },
      'primary-not-failed',
      /this standby sees the primary healthy/,
    ],
    ['primary suspect here', { local: { state: 'suspect', since: NOW } }, 'primary-not-failed', /suspect/],
    ['no witness view', { witness: null }, 'no-witness', /may be the isolated one/],
    [
      'stale witness view',
      { witness: { state: 'failed', since: NOW - 9000, receivedAt: NOW - 2500 } },
      'witness-stale',
      /2\.5 s old \(limit 2\.0 s\)/,
    ],
    [
      'witness sees the primary',
      { witness: { state: 'healthy', since: NOW - 60_000, receivedAt: NOW - 100 } },
      'witness-sees-primary',
      /^no takeover: witness still sees the primary \(healthy since 2026-03-02T09:59:00\.000Z\)$/,
    ],
    [
      'witness only suspects',
      { witness: { state: 'suspect', since: NOW - 1000, receivedAt: NOW } },
      'witness-sees-primary',
      /suspect/,
    ],
    [
      'unknown standby',
      { candidates: [cand('a', null), cand('b', 120n)] },
      'unknown-standby',
      /position unknown for a/,
    ],
    [
      'no eligible standby',
      { candidates: [cand('a', 100n, { eligible: false }), cand('b', 120n, { eligible: false })] },
      'no-candidate',
      /no eligible/,
    ],
  ];
  it.each(noTakeover)('no takeover: %s', (_name, over, code, reason) => {
    const d = decideAutomatic(input(over));
    expect(d.action).toBe('none');
    if (d.action === 'none') {
      expect(d.code).toBe(code);
      expect(d.reason).toMatch(reason);
    }
  });

  it('manual mode: alerts-only, never acts', () => {
    const base = input();
    const d = decideAutomatic({ ...base, policy: { ...base.policy, mode: 'manual' } });
    expect(d).toMatchObject({ action: 'none', code: 'manual-mode' });
  });

  it('requires both views failed for agree_for_ms', () => {
    const base = input();
    const policy = { ...base.policy, agree_for_ms: 4500 };
    expect(decideAutomatic({ ...base, policy })).toMatchObject({ code: 'not-long-enough' });
    expect(
      decideAutomatic({ ...base, policy, now: NOW + 500, witness: { ...base.witness!, receivedAt: NOW + 400 } }).action,
    ).toBe('takeover');
  });

  it('anti-flapping: at most one automatic takeover per min_interval_ms, from the persisted history', () => {
    const first = decideAutomatic(input());
    if (first.action !== 'takeover') throw new Error('expected a takeover');
    const promoted = historyAfterAttempt(first.history, {
      winner: 'b',
      startedAt: NOW,
      endedAt: NOW + 900,
      reachedPromotion: true,
      missing: '',
    });
    const restored = historyFromJson(JSON.parse(JSON.stringify(promoted)), 'state.json');
    const fresh = (now: number) => ({ now, witness: { state: 'failed' as const, since: NOW, receivedAt: now } });
    const again = decideAutomatic(input({ history: restored, ...fresh(NOW + 3599_999) }));
    expect(again).toMatchObject({ action: 'none', code: 'anti-flapping' });
    expect(again.reason).toMatch(
      /last automatic takeover was at 2026-03-02T10:00:00\.000Z; the next is allowed from 2026-03-02T11:00:00\.000Z/,
    );
    const later = decideAutomatic(input({ history: restored, ...fresh(NOW + 3600_000) }));
    expect(later.action).toBe('takeover');
  });

  it('ignores unknown standbys when told to', () => {
    const base = input({ candidates: [cand('a', null), cand('b', 120n)] });
    const d = decideAutomatic({ ...base, policy: { ...base.policy, unknown_standbys: 'ignore' } });
    expect(d).toMatchObject({ action: 'takeover', winner: 'b' });
    expect(d.reason).toMatch(/b is the only eligible standby/);
  });
});

describe('decideAutomatic with several standbys (positions from the witness)', () => {
  // Two standbys both lost the primary; each decides with itself and the other as the witness lists it.
  const both = [cand('dr1', 500n), cand('dr2', 480n, { priority: 10 })];

  it('the more advanced one wins, the other defers to it', () => {
    const dr1 = decideAutomatic(input({ self: 'dr1', candidates: both }));
    const dr2 = decideAutomatic(input({ self: 'dr2', candidates: [...both].reverse() }));
    expect(dr1).toMatchObject({ action: 'takeover', winner: 'dr1' });
    expect(dr2).toMatchObject({ action: 'defer', winner: 'dr1' });
    expect(dr2.reason).toMatch(
      /^dr1 takes over: .*dr1 is the most advanced standby \(received 500, applied 500; ahead of dr2 by received position\)$/,
    );
  });

  it('another standby of unknown position (no fresh report): wait makes both wait, ignore leaves it out', () => {
    const cs = [cand('dr1', 500n), cand('dr2', null)];
    const d = decideAutomatic(input({ self: 'dr1', candidates: cs }));
    expect(d).toMatchObject({ action: 'none', code: 'unknown-standby' });
    expect(d.reason).toBe('no takeover: position unknown for dr2 (unknown_standbys: wait)');
    const base = input({ self: 'dr1', candidates: cs });
    const ignored = decideAutomatic({ ...base, policy: { ...base.policy, unknown_standbys: 'ignore' } });
    expect(ignored).toMatchObject({ action: 'takeover', winner: 'dr1' });
  });

  it('another standby reports it was promoted: no takeover, before anti-flapping and the election', () => {
    const promoted = { name: 'dr2', at: '2026-03-02T09:59:30.000Z' };
    const d = decideAutomatic(input({ self: 'dr1', candidates: both, promoted }));
    expect(d).toEqual({
      action: 'none',
      code: 'already-promoted',
      reason: 'no takeover: dr2 was promoted at 2026-03-02T09:59:30.000Z: it is the primary',
    });
    const history = { lastAutomaticAt: NOW - 10, last: null };
    expect(decideAutomatic(input({ self: 'dr1', history, promoted }))).toMatchObject({ code: 'already-promoted' });
    const cs = [cand('dr1', 500n), cand('dr2', null)];
    expect(decideAutomatic(input({ self: 'dr1', candidates: cs, promoted }))).toMatchObject({
      code: 'already-promoted',
    });
    // A primary this standby still sees is reported as such first.
    const healthy = input({ self: 'dr1', local: { state: 'healthy', since: NOW }, promoted });
    expect(decideAutomatic(healthy)).toMatchObject({ code: 'primary-not-failed' });
    // Its own promotion is not another's.
    const own = decideAutomatic(input({ self: 'dr1', candidates: both, promoted: { ...promoted, name: 'dr1' } }));
    expect(own.action).toBe('takeover');
  });
});

describe('rank (the election)', () => {
  it('orders by received, then applied, then priority (higher first), then name', () => {
    const r = rank([
      cand('c', 10n),
      { ...cand('d', 10n), position: pos(10n, 9n) },
      cand('b', 10n, { priority: 5 }),
      cand('a', 10n),
      cand('e', 11n),
      cand('z', 99n, { eligible: false }),
      cand('y', null),
    ]);
    expect(r.map((c) => c.name)).toEqual(['e', 'b', 'a', 'c', 'd']);
  });

  it('is deterministic whatever the input order', () => {
    const cs = [cand('a', 5n), cand('b', 5n, { priority: 1 }), cand('c', 7n), cand('d', 5n, { priority: 1 })];
    const expected = rank(cs).map((c) => c.name);
    expect(expected).toEqual(['c', 'b', 'd', 'a']);
    for (let i = 0; i < 10; i++) {
      const shuffled = [...cs].sort(() => (((i * 7919) % 13) & 1 ? 1 : -1));
      expect(rank(shuffled.reverse()).map((c) => c.name)).toEqual(expected);
    }
  });

  it('compares positions beyond 2^53 exactly', () => {
    const big = 2n ** 60n;
    expect(rank([cand('a', big), cand('b', big + 1n)])[0]?.name).toBe('b');
  });

  it('names the tie-break in the reason', () => {
    const d = decideAutomatic(
      input({ candidates: [cand('a', 120n, { priority: 1 }), cand('b', 120n, { priority: 2 })] }),
    );
    expect(d.reason).toMatch(/ahead of a by priority \(2 > 1\)/);
  });

  it('refuses a repeated standby name', () => {
    expect(() => rank([cand('a', 1n), cand('a', 2n)])).toThrow(/"a" appears twice/);
  });
});

describe('decideManual', () => {
  const cs = [cand('a', 100n), cand('b', 120n)];
  const base = { now: NOW, force: false, local: { state: 'failed' as const }, candidates: cs, history: EMPTY_HISTORY };

  it('promotes the named standby and keeps the automatic anti-flapping clock', () => {
    const d = decideManual({ ...base, to: 'b', history: { lastAutomaticAt: NOW - 10, last: null } });
    expect(d).toEqual({
      action: 'takeover',
      winner: 'b',
      reason: 'manual failover to b',
      history: { lastAutomaticAt: NOW - 10, last: { at: NOW, winner: 'b', mode: 'manual' } },
    });
  });

  it('refuses a standby that is behind, a healthy primary, an unknown name — unless forced', () => {
    const behind = decideManual({ ...base, to: 'a' });
    expect(behind.action).toBe('refuse');
    expect(behind.reason).toMatch(
      /b has received more \(120 > 100\): promoting a would lose transactions \(--force overrides\)/,
    );
    const healthy = decideManual({ ...base, to: 'b', local: { state: 'healthy' } });
    expect(healthy.reason).toMatch(/the primary is healthy: use tidemark switchover/);
    expect(decideManual({ ...base, to: 'x' }).reason).toBe('no standby named "x" (standbys: a, b)');
    expect(decideManual({ ...base, to: 'x', force: true }).action).toBe('refuse');
    const forced = decideManual({ ...base, to: 'a', force: true, local: { state: 'healthy' } });
    expect(forced.action).toBe('takeover');
    expect(forced.reason).toMatch(
      /^manual failover to a \(forced despite: the primary is healthy.*b has received more/,
    );
  });
});

describe('attempts that stopped before promotion (issue #17)', () => {
  const fresh = (now: number) => ({ now, witness: { state: 'failed' as const, since: NOW, receivedAt: now } });
  const stop = (h: TakeoverHistory, at: number, missing = 'fence not confirmed: old primary writable') =>
    historyAfterAttempt(h, { winner: 'b', startedAt: at - 2000, endedAt: at, reachedPromotion: false, missing });

  it('do not consume the anti-flapping budget: retried after a backoff that doubles up to a bound', () => {
    const first = decideAutomatic(input());
    if (first.action !== 'takeover') throw new Error('expected a takeover');
    const h1 = stop(first.history, NOW + 2000);
    expect(h1).toEqual({
      lastAutomaticAt: null,
      last: null,
      stopped: { count: 1, lastAt: NOW + 2000, missing: 'fence not confirmed: old primary writable' },
      pendingSince: null,
    });
    const wait = decideAutomatic(input({ history: h1, ...fresh(NOW + 2999) }));
    expect(wait).toMatchObject({ action: 'none', code: 'retry-backoff' });
    expect(wait.reason).toBe(
      'no takeover: attempt 1 stopped before promotion at 2026-03-02T10:00:02.000Z (fence not confirmed: old primary ' +
        'writable); attempt 2 from 2026-03-02T10:00:03.000Z',
    );
    const second = decideAutomatic(input({ history: h1, ...fresh(NOW + 3000) }));
    expect(second.action).toBe('takeover');
    // 1 s, 2 s, 4 s, 8 s, then the bound (15 s by default; takeover_retry.max_ms).
    let h: TakeoverHistory = h1;
    const delays: number[] = [];
    for (let n = 1; n <= 6; n++) {
      const at = NOW + 100_000 * n;
      h = stop({ ...h, stopped: h.stopped ? { ...h.stopped, count: n - 1 } : null }, at);
      let t = at;
      while (decideAutomatic(input({ history: h, ...fresh(t) })).action !== 'takeover') t += 100;
      delays.push(t - at);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 15_000, 15_000]);
    const policy = { ...input().policy, retry: { initial_ms: 500, max_ms: 700 } };
    expect(decideAutomatic(input({ history: stop(h1, NOW), policy, ...fresh(NOW + 699) })).action).toBe('none');
    expect(decideAutomatic(input({ history: stop(h1, NOW), policy, ...fresh(NOW + 700) })).action).toBe('takeover');
  });

  it('only a promotion counts; an attempt whose end was never recorded (a crash) counts too', () => {
    const h = stop(stop(EMPTY_HISTORY, NOW - 60_000), NOW - 30_000);
    expect(h.stopped?.count).toBe(2);
    const promoted = historyAfterAttempt(h, {
      winner: 'b',
      startedAt: NOW - 20_000,
      endedAt: NOW - 19_000,
      reachedPromotion: true,
      missing: '',
    });
    expect(promoted).toEqual({
      lastAutomaticAt: NOW - 20_000,
      last: { at: NOW - 20_000, winner: 'b', mode: 'automatic' },
      stopped: null,
      pendingSince: null,
    });
    expect(decideAutomatic(input({ history: promoted }))).toMatchObject({ code: 'anti-flapping' });
    const crashed = decideAutomatic(input({ history: { ...EMPTY_HISTORY, pendingSince: NOW - 5000 } }));
    expect(crashed).toMatchObject({ action: 'none', code: 'anti-flapping' });
    expect(crashed.reason).toMatch(/started at 2026-03-02T09:59:55\.000Z and its end was never recorded/);
    expect(historyRecovered(h).stopped).toBeNull();
    expect(decideAutomatic(input({ history: historyRecovered(h) })).action).toBe('takeover');
  });
});

describe('historyFromJson', () => {
  it('reads back stopped attempts and an attempt in flight', () => {
    const h: TakeoverHistory = {
      lastAutomaticAt: null,
      last: null,
      stopped: { count: 3, lastAt: NOW, missing: 'fence not confirmed: x' },
      pendingSince: NOW + 5,
    };
    expect(historyFromJson(JSON.parse(JSON.stringify(h)), 'f')).toEqual(h);
    expect(() => historyFromJson({ lastAutomaticAt: null, last: null, stopped: { count: 'x' } }, 'f')).toThrow(
      /stopped must be null or/,
    );
    expect(() => historyFromJson({ lastAutomaticAt: null, last: null, pendingSince: 'x' }, 'f')).toThrow(
      /pendingSince must be/,
    );
  });

  it('accepts what it wrote and refuses damaged state', () => {
    expect(historyFromJson({ lastAutomaticAt: null, last: null }, 'f')).toEqual(EMPTY_HISTORY);
    const bad = (j: unknown, re: RegExp) => {
      expect(() => historyFromJson(j, 'state.json')).toThrow(CorruptionError);
      expect(() => historyFromJson(j, 'state.json')).toThrow(re);
    };
    bad(null, /state\.json: takeover history is not an object/);
    bad({ last: null }, /lastAutomaticAt must be a number or null/);
    bad({ lastAutomaticAt: 1, last: { at: 1, winner: 'a', mode: 'auto' } }, /last\.mode must be/);
    bad({ lastAutomaticAt: 1, last: 'x' }, /last must be null or/);
  });
});
