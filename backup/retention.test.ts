import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StarKind } from './manifest.ts';
import {
  logsCover,
  planRetention,
  type RetentionBackup,
  type RetentionLog,
  type RetentionPlan,
  type RetentionPolicy,
  restorable,
} from './retention.ts';

const H = 3_600_000;
const D = 24 * H;
const T0 = Date.UTC(2026, 0, 1);

// ── readable examples ────────────────────────────────────────────────────────────────────────────────────────────

/** Builds a history from a line like "F1 i2 i3 d4 F5": F full, i incremental, d differential, L logical; digit = day. */
function history(spec: string, stars: Record<string, StarKind> = {}): RetentionBackup[] {
  const out: RetentionBackup[] = [];
  let full: RetentionBackup | null = null;
  for (const tok of spec.split(/\s+/)) {
    const kind = tok[0];
    const day = Number(tok.slice(1));
    const start = T0 + day * D;
    const types: Record<string, RetentionBackup['type']> = {
      F: 'full',
      i: 'incremental',
      d: 'differential',
      L: 'logical',
    };
    const type = types[kind as string] as RetentionBackup['type'];
    const parent =
      type === 'incremental' ? (out.at(-1)?.id ?? null) : type === 'differential' ? (full?.id ?? null) : null;
    const b: RetentionBackup = { id: tok, type, parent, start, end: start + H, star: stars[tok] ?? null };
    if (type === 'full') full = b;
    out.push(b);
  }
  return out;
}

/** Hourly log segments from day `fromDay` to day `toDay`, seq consecutive; `holes` are seq numbers left out. */
function hourlyLogs(fromDay: number, toDay: number, holes: number[] = []): RetentionLog[] {
  const out: RetentionLog[] = [];
  for (let h = fromDay * 24, seq = 1; h < toDay * 24; h++, seq++) {
    if (!holes.includes(seq))
      out.push({ id: `log${seq}`, seq: BigInt(seq), start: T0 + h * H, end: T0 + (h + 1) * H - 1 });
  }
  return out;
}

const ids = (ds: RetentionPlan['keep']): string[] => ds.map((d) => d.id);
const reasonOf = (plan: RetentionPlan, id: string): string =>
  [...plan.keep, ...plan.expire].find((d) => d.id === id)?.reasons.join('; ') ?? 'absent';

describe('retention examples', () => {
  //   F1 ─ i2 ─ i3        F5 ─ i6 ─ d7        F9 ─ i10       now = day 11
  const backups = history('F1 i2 i3 F5 i6 d7 F9 i10');
  const logs = hourlyLogs(0, 11);
  const now = T0 + 11 * D;

  it('days: 3 keeps the window and the chain that restores its first moment, logs from that chain', () => {
    const plan = planRetention({ backups, logs, policy: { days: 3 }, now });
    // window = day 8 … 11; newest backup ending before day 8 is d7 (chain F5 ─ d7)
    expect(ids(plan.keep)).toEqual(['F5', 'd7', 'F9', 'i10']);
    expect(reasonOf(plan, 'd7')).toContain('newest backup before the 3-day window');
    expect(reasonOf(plan, 'F5')).toContain('parent of d7');
    expect(reasonOf(plan, 'i6')).toBe('not needed to restore the last 3 days');
    const firstLog = plan.keepLogs[0];
    expect(firstLog?.id).toBe(`log${5 * 24 + 1}`); // the segment that contains F5's start
    expect(plan.keepLogs.length + plan.expireLogs.length).toBe(logs.length);
  });

  it('chains: 2 keeps the two newest chains whole', () => {
    const plan = planRetention({ backups, logs, policy: { chains: 2 }, now });
    expect(ids(plan.keep)).toEqual(['F5', 'i6', 'd7', 'F9', 'i10']);
    expect(reasonOf(plan, 'i3')).toBe('not in the newest 2 chain(s)');
  });

  it('a starred incremental pins its parents, and a standalone star keeps no logs', () => {
    const starred = history('F1 i2 i3 F5 i6 d7 F9 i10', { i2: 'standalone' });
    const plan = planRetention({ backups: starred, logs, policy: { chains: 1 }, now });
    expect(ids(plan.keep)).toEqual(['F1', 'i2', 'F9', 'i10']);
    expect(reasonOf(plan, 'F1')).toBe('parent of i2 (starred (standalone))');
    expect(plan.keepLogs.every((l) => l.reasons.every((r) => r.startsWith('from the oldest')))).toBe(true);
  });

  it('a pitr star also keeps the logs from its start to the next full backup, contiguous', () => {
    const starred = history('F1 i2 i3 F5 i6 d7 F9 i10', { i2: 'pitr' });
    const plan = planRetention({ backups: starred, logs, policy: { chains: 1 }, now });
    const pitr = plan.keepLogs.filter((l) => l.reasons.some((r) => r.startsWith('pitr star i2')));
    expect(pitr[0]?.id).toBe(`log${2 * 24 + 1}`);
    expect(pitr.at(-1)?.id).toBe(`log${5 * 24 + 1}`); // the segment holding F5's start
    const kept = logs.filter((l) => ids(plan.keepLogs).includes(l.id));
    for (let t = T0 + 2 * D + H; t <= T0 + 5 * D; t += 7 * H) {
      expect(
        restorable(
          plan.keep.map((k) => starred.find((b) => b.id === k.id) as RetentionBackup),
          kept,
          t,
        ),
      ).toBe(true);
    }
  });

  it('a broken chain is expired (cannot be restored) unless starred; a log hole is not bridged', () => {
    const broken = history('F1 i2 i3 F5').filter((b) => b.id !== 'i2');
    const plan = planRetention({ backups: broken, logs, policy: { days: 30 }, now });
    expect(reasonOf(plan, 'i3')).toContain('broken chain');
    expect(logsCover(hourlyLogs(0, 3, [30]), T0, T0 + 2 * D)).toBe(false);
    expect(logsCover(hourlyLogs(0, 3), T0, T0 + 2 * D)).toBe(true);
  });

  it('refuses a policy it cannot honour, naming the key', () => {
    expect(() => planRetention({ backups, logs, policy: { chains: 0 }, now })).toThrow(
      "'chains' must be an integer >= 1",
    );
    expect(() => planRetention({ backups, logs, policy: { days: -1 }, now })).toThrow("'days' must be a positive");
  });
});

// ── properties over random histories ─────────────────────────────────────────────────────────────────────────────

interface Hist {
  backups: RetentionBackup[];
  logs: RetentionLog[];
  policy: RetentionPolicy;
  now: number;
}

const histArb: fc.Arbitrary<Hist> = fc
  .record({
    events: fc.array(
      fc.record({
        kind: fc.constantFrom('full', 'incremental', 'incremental', 'differential', 'logical'),
        gapH: fc.integer({ min: 1, max: 60 }),
        durMin: fc.integer({ min: 1, max: 180 }),
        star: fc.option(fc.constantFrom<StarKind>('standalone', 'pitr'), { freq: 8 }),
      }),
      { minLength: 0, maxLength: 30 },
    ),
    segLens: fc.array(fc.integer({ min: 5, max: 600 }), { minLength: 1, maxLength: 20 }),
    /** Where the gaps in the log archive are, as fractions of the number of segments. */
    holes: fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { maxLength: 2 }),
    logLead: fc.integer({ min: 0, max: 48 }),
    tail: fc.integer({ min: 0, max: 72 }),
    days: fc.option(fc.integer({ min: 1, max: 20 })),
    chains: fc.option(fc.integer({ min: 1, max: 6 })),
  })
  .map((r) => {
    const backups: RetentionBackup[] = [];
    let t = T0 + r.logLead * H;
    let full: RetentionBackup | null = null;
    let last: RetentionBackup | null = null;
    r.events.forEach((e, i) => {
      t += e.gapH * H;
      let type = e.kind as RetentionBackup['type'];
      if ((type === 'incremental' || type === 'differential') && full === null) type = 'full';
      const parent =
        type === 'incremental'
          ? (last as RetentionBackup).id
          : type === 'differential'
            ? (full as RetentionBackup).id
            : null;
      const b: RetentionBackup = { id: `b${i}`, type, parent, start: t, end: t + e.durMin * 60_000, star: e.star };
      if (type === 'full') full = b;
      if (type === 'logical') {
        // a logical backup is its own chain; the physical chain continues after it
      } else last = b;
      t = b.end;
      backups.push(b);
    });
    const now = t + r.tail * H;
    // log segments from T0 to `now` (lengths cycling through segLens), consecutive seq except the holes
    const all: RetentionLog[] = [];
    for (let lt = T0, seq = 1n; lt <= now; seq++) {
      const end = lt + (r.segLens[Number(seq) % r.segLens.length] as number) * 60_000;
      all.push({ id: `l${seq}`, seq, start: lt, end });
      lt = end + 1;
    }
    const holes = new Set(r.holes.map((f) => Math.floor(f * all.length)));
    const logs = all.filter((_, i) => !holes.has(i));
    const policy: RetentionPolicy = {
      ...(r.days === null ? {} : { days: r.days }),
      ...(r.chains === null ? {} : { chains: r.chains }),
    };
    return { backups, logs, policy, now };
  });

function keptOf(h: Hist, plan: RetentionPlan): { backups: RetentionBackup[]; logs: RetentionLog[] } {
  const kb = new Set(ids(plan.keep));
  const kl = new Set(ids(plan.keepLogs));
  return { backups: h.backups.filter((b) => kb.has(b.id)), logs: h.logs.filter((l) => kl.has(l.id)) };
}

const RUNS = { seed: 20261206, numRuns: 500 };

describe('retention properties (fast-check, seeded)', () => {
  it('partitions the input; never expires a star; never expires a parent of a kept backup', () => {
    fc.assert(
      fc.property(histArb, (h) => {
        const plan = planRetention(h);
        expect(plan.keep.length + plan.expire.length).toBe(h.backups.length);
        expect(plan.keepLogs.length + plan.expireLogs.length).toBe(h.logs.length);
        const kept = new Set(ids(plan.keep));
        for (const b of h.backups) {
          if (b.star !== null) expect(kept.has(b.id), `star ${b.id}`).toBe(true);
          if (kept.has(b.id) && b.parent !== null) expect(kept.has(b.parent), `parent of ${b.id}`).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('days: every moment of the window restorable before expire is restorable after', () => {
    fc.assert(
      fc.property(
        histArb.filter((h) => h.policy.days !== undefined),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 5, maxLength: 5 }),
        (h, fractions) => {
          const plan = planRetention(h);
          const k = keptOf(h, plan);
          const ws = plan.windowStart as number;
          const moments = [
            ws,
            h.now,
            ...h.backups.map((b) => b.end),
            ...h.logs.map((l) => l.end),
            ...fractions.map((f) => ws + f * (h.now - ws)),
          ];
          for (const t of moments.filter((m) => m >= ws && m <= h.now)) {
            if (restorable(h.backups, h.logs, t))
              expect(restorable(k.backups, k.logs, t), `moment ${new Date(t).toISOString()}`).toBe(true);
          }
        },
      ),
      RUNS,
    );
  });

  it('logs: each kept run is contiguous in the input, and the policy run starts at or before the oldest kept backup', () => {
    fc.assert(
      fc.property(histArb, (h) => {
        const plan = planRetention(h);
        const groups = new Map<string, bigint[]>();
        for (const d of plan.keepLogs) {
          const seq = (h.logs.find((l) => l.id === d.id) as RetentionLog).seq;
          for (const r of d.reasons) groups.set(r, [...(groups.get(r) ?? []), seq]);
        }
        const keptSeqs = new Set(h.logs.filter((l) => ids(plan.keepLogs).includes(l.id)).map((l) => l.seq));
        for (const [reason, seqs] of groups) {
          const lo = seqs.reduce((a, b) => (b < a ? b : a));
          const hi = seqs.reduce((a, b) => (b > a ? b : a));
          for (const l of h.logs)
            if (l.seq >= lo && l.seq <= hi) expect(keptSeqs.has(l.seq), `${reason}: seq ${l.seq}`).toBe(true);
          if (reason.startsWith('from the oldest')) {
            for (const l of h.logs) if (l.seq > hi) expect(keptSeqs.has(l.seq), `suffix: seq ${l.seq}`).toBe(true);
          }
        }
        // pitr stars: the span after the star stays restorable from it
        const k = keptOf(h, plan);
        for (const b of h.backups.filter((x) => x.star === 'pitr')) {
          const next = h.backups.filter((o) => o.type === 'full' && o.start > b.end).map((o) => o.start);
          const until = next.length === 0 ? h.now : Math.min(...next);
          for (const t of [b.end, (b.end + until) / 2, until]) {
            if (t >= b.end && logsCover(h.logs, b.start, t))
              expect(logsCover(k.logs, b.start, t), `pitr ${b.id} at ${t}`).toBe(true);
          }
        }
      }),
      RUNS,
    );
  });

  it('chains: N keeps exactly the newest N chains plus what stars pin', () => {
    fc.assert(
      fc.property(
        histArb.map((h) => ({ ...h, policy: { chains: h.policy.chains ?? 2 } })),
        (h) => {
          const plan = planRetention(h);
          const byId = new Map(h.backups.map((b) => [b.id, b]));
          const rootOf = (b: RetentionBackup): RetentionBackup =>
            b.parent === null ? b : rootOf(byId.get(b.parent) as RetentionBackup);
          const roots = h.backups.filter((b) => b.parent === null).sort((a, b) => b.start - a.start);
          const newest = new Set(roots.slice(0, h.policy.chains).map((r) => r.id));
          const expected = new Set(h.backups.filter((b) => newest.has(rootOf(b).id)).map((b) => b.id));
          for (const s of h.backups.filter((b) => b.star !== null)) {
            for (
              let c: RetentionBackup | undefined = s;
              c !== undefined;
              c = c.parent === null ? undefined : byId.get(c.parent)
            )
              expected.add(c.id);
          }
          expect(new Set(ids(plan.keep))).toEqual(expected);
          const wholeChains = roots.filter((r) => h.backups.every((b) => rootOf(b).id !== r.id || expected.has(b.id)));
          expect(wholeChains.length).toBeGreaterThanOrEqual(Math.min(h.policy.chains as number, roots.length));
        },
      ),
      RUNS,
    );
  });
});
