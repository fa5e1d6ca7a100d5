import { describe, expect, it } from 'vitest';
import {
  CandidateBoard,
  type CandidateReport,
  candidateOfEntry,
  candidateReportJson,
  parseCandidateEntries,
  parseCandidateReport,
} from './witness-candidates.ts';

const BIG = 2n ** 60n + 7n;
const body = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  priority: 5,
  position: { received: BIG.toString(), applied: '120' },
  eligible: true,
  promoted: null,
  ...over,
});
const report = (over: Partial<CandidateReport> = {}): CandidateReport => ({
  priority: 0,
  position: { received: 10n, applied: 9n },
  eligible: true,
  promoted: null,
  ...over,
});

describe('parseCandidateReport', () => {
  it('reads positions as exact bigints and round-trips through JSON', () => {
    const r = parseCandidateReport(JSON.parse(JSON.stringify(body())));
    expect(r).toEqual({ priority: 5, position: { received: BIG, applied: 120n }, eligible: true, promoted: null });
    expect(candidateReportJson(r)).toEqual(body());
    const unknown = parseCandidateReport(body({ position: null, promoted: '2026-03-02T10:00:00.000Z' }));
    expect(unknown).toMatchObject({ position: null, promoted: '2026-03-02T10:00:00.000Z' });
  });

  const bad: [string, unknown, RegExp][] = [
    ['not an object', [], /the body is not a JSON object/],
    ['a missing field', (({ eligible: _e, ...r }) => r)(body()), /the body lacks eligible/],
    ['an unknown field', body({ name: 'dr1' }), /the body has unknown keys name/],
    ['a fractional priority', body({ priority: 1.5 }), /^bad candidate report: priority is not an integer$/],
    [
      'a position as a number',
      body({ position: { received: 5, applied: '1' } }),
      /position\.received is not a decimal/,
    ],
    ['a negative position', body({ position: { received: '5', applied: '-1' } }), /position\.applied is not a decimal/],
    ['a leading zero', body({ position: { received: '05', applied: '1' } }), /position\.received/],
    ['a position beyond 2^64', body({ position: { received: '18446744073709551616', applied: '1' } }), /2\^64/],
    ['a position with extra keys', body({ position: { received: '1', applied: '1', x: 1 } }), /unknown keys x/],
    ['a position that is a list', body({ position: ['1', '1'] }), /position is not an object or null/],
    ['eligible as text', body({ eligible: 'yes' }), /eligible is not a boolean/],
    ['promoted not a time', body({ promoted: 'yesterday' }), /promoted is not an ISO time or null/],
    ['promoted an impossible date', body({ promoted: '2026-13-45T10:00:00Z' }), /promoted is not an ISO time/],
  ];
  it.each(bad)('refuses %s, naming the field', (_what, value, msg) => {
    expect(() => parseCandidateReport(value)).toThrow(msg);
  });
});

describe('parseCandidateEntries', () => {
  const fail = (what: string): never => {
    throw new Error(what);
  };
  const entry = (over: Record<string, unknown> = {}) => ({ name: 'dr1', ...body(), age_ms: 300, ...over });

  it('absent (an older witness): no entries', () => {
    expect(parseCandidateEntries(undefined, fail)).toEqual([]);
  });

  it('reads entries into candidates with their age', () => {
    const [e] = parseCandidateEntries([entry()], fail);
    expect(e && candidateOfEntry(e)).toEqual({
      name: 'dr1',
      priority: 5,
      position: { received: BIG, applied: 120n },
      eligible: true,
      promoted: null,
      ageMs: 300,
    });
  });

  it.each([
    ['not a list', {}, /candidates is not a list/],
    ['a bad name', [entry({ name: 'dr/1' })], /candidates\[0\]\.name is not a site name/],
    ['a repeated name', [entry(), entry()], /candidates\[1\]\.name "dr1" repeats/],
    ['a negative age', [entry({ age_ms: -1 })], /candidates\[0\]\.age_ms is not a duration/],
    ['a missing age', [(({ age_ms: _a, ...e }) => e)(entry())], /candidates\[0\] lacks age_ms/],
    ['a bad position', [entry({ position: { received: 'x', applied: '1' } })], /candidates\[0\]\.position\.received/],
  ] as [string, unknown, RegExp][])('refuses %s', (_what, value, msg) => {
    expect(() => parseCandidateEntries(value, fail)).toThrow(msg);
  });
});

describe('CandidateBoard', () => {
  it('keeps one entry per name, the latest, aged on the witness clock', () => {
    const b = new CandidateBoard();
    expect(b.put('dr2', report(), 1000)).toMatchObject({ ok: true, added: true });
    expect(b.put('dr1', report(), 1000)).toMatchObject({ ok: true, added: true });
    expect(b.put('dr2', report({ position: { received: 11n, applied: 11n } }), 1500)).toMatchObject({ added: false });
    expect(b.list(2000)).toEqual([
      { name: 'dr1', ...candidateReportJson(report()), age_ms: 1000 },
      {
        name: 'dr2',
        priority: 0,
        position: { received: '11', applied: '11' },
        eligible: true,
        promoted: null,
        age_ms: 500,
      },
    ]);
    expect(b.list(0)[0]?.age_ms).toBe(0); // a clock step back never gives a negative age
  });

  it('is bounded: a new name beyond the cap forgets the least recently heard one', () => {
    const b = new CandidateBoard(2);
    b.put('a', report({ promoted: '2026-03-02T10:00:00Z' }), 1);
    b.put('b', report(), 2);
    expect(b.put('b', report(), 3)).toMatchObject({ ok: true, evicted: null }); // a known name: no eviction
    expect(b.put('c', report(), 4)).toMatchObject({ ok: true, evicted: 'b' }); // 'a' claims a promotion: kept
    expect(b.list(5).map((e) => e.name)).toEqual(['a', 'c']);
  });

  it('grants the promotion to one standby only; it may repeat or release its claim', () => {
    const b = new CandidateBoard();
    const at = '2026-03-02T10:00:00.000Z';
    expect(b.put('dr1', report({ promoted: at }), 1)).toMatchObject({ ok: true, promotedChanged: true });
    expect(b.put('dr2', report({ promoted: at }), 2)).toEqual({
      ok: false,
      conflict: `dr1 was promoted at ${at}: it is the primary`,
    });
    expect(b.put('dr2', report(), 2)).toMatchObject({ ok: true });
    expect(b.put('dr1', report({ promoted: at }), 3)).toMatchObject({ ok: true, promotedChanged: false });
    expect(b.put('dr1', report(), 4)).toMatchObject({ ok: true, promotedChanged: true });
    expect(b.put('dr2', report({ promoted: at }), 5)).toMatchObject({ ok: true });
  });
});
