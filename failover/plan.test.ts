import { describe, expect, it } from 'vitest';
import { formatTimeline, runTakeover, type StepExecutors, type StepName, type TakeoverResult } from './plan.ts';

/** A fake world: records the order of calls, lets a test make any step fail or hang, and a 10 ms-per-call clock. */
function world(over: Partial<StepExecutors<bigint>> = {}) {
  const calls: string[] = [];
  const alerts: TakeoverResult<bigint>[] = [];
  let t = 1000;
  const ok =
    (name: string, detail = `${name} done`) =>
    async () => {
      calls.push(name);
      return { detail };
    };
  const exec: StepExecutors<bigint> = {
    fenceDb: async () => {
      calls.push('fence-db');
      return { confirmed: true, detail: 'read_only=ON, 3 sessions killed' };
    },
    fenceHook: async () => {
      calls.push('fence-hook');
      return { confirmed: true, detail: 'hook exited 0' };
    },
    drain: ok('drain', 'applied up to 120'),
    promote: async () => {
      calls.push('promote');
      return { detail: 'writable at 120', position: 120n };
    },
    moveVip: ok('move-vip'),
    repoint: async (_ctx, p) => {
      calls.push(`repoint@${p}`);
      return { detail: 'c repointed' };
    },
    alert: async (r) => {
      calls.push('alert');
      alerts.push(r);
      return { detail: 'webhook 200' };
    },
    ...over,
  };
  const now = () => {
    t += 10;
    return t;
  };
  return { calls, alerts, exec, now };
}

const opts = (w: { now: () => number }, force = false) => ({ oldPrimary: 'a', winner: 'b', force, now: w.now });
const outcomes = (r: TakeoverResult<bigint>) =>
  Object.fromEntries(r.timeline.map((e) => [e.step, e.outcome])) as Record<StepName, string>;
const fail = (msg: string) => async (): Promise<never> => {
  throw new Error(msg);
};

describe('runTakeover', () => {
  it('runs every step in order and hands the promotion position to repoint', async () => {
    const w = world();
    const r = await runTakeover(w.exec, opts(w));
    expect(w.calls).toEqual(['fence-db', 'fence-hook', 'drain', 'promote', 'move-vip', 'repoint@120', 'alert']);
    expect(r.status).toBe('completed');
    expect(r.position).toBe(120n);
    expect(r.timeline.map((e) => e.step)).toEqual([
      'fence-db',
      'fence-hook',
      'drain',
      'promote',
      'move-vip',
      'repoint',
      'alert',
    ]);
    expect(r.timeline.every((e) => e.outcome === 'ok' && e.startedAt! < e.endedAt!)).toBe(true);
    // The alert sees the timeline up to itself.
    expect(w.alerts[0]?.timeline.map((e) => e.step).at(-1)).toBe('repoint');
    expect(w.alerts[0]?.status).toBe('completed');
  });

  it('never promotes when fencing is not confirmed and no hook succeeded', async () => {
    const w = world({
      fenceDb: async () => ({ confirmed: false, detail: 'old primary unreachable' }),
      fenceHook: fail('hook exited 1'),
    });
    const r = await runTakeover(w.exec, opts(w));
    expect(w.calls).not.toContain('promote');
    expect(w.calls).toEqual(['alert']);
    expect(r.status).toBe('stopped');
    expect(r.reason).toMatch(/^not promoted: fencing of a was not confirmed.*never two writable primaries/);
    expect(outcomes(r)).toEqual({
      'fence-db': 'failed',
      'fence-hook': 'failed',
      drain: 'not-run',
      promote: 'not-run',
      'move-vip': 'not-run',
      repoint: 'not-run',
      alert: 'ok',
    });
    expect(r.timeline[0]?.error).toBe('not confirmed: old primary unreachable');
    expect(r.timeline[1]?.error).toBe('hook exited 1');
    expect(r.position).toBeNull();
    // Stopped before promotion: retried later, not counted for anti-flapping (decide.ts historyAfterAttempt).
    expect(r.reachedPromotion).toBe(false);
    expect(r.missing).toBe('fence not confirmed: hook exited 1; not confirmed: old primary unreachable');
  });

  it('also stops when the database fence fails and no hook is configured', async () => {
    const w = world({ fenceDb: fail('connect ETIMEDOUT'), fenceHook: undefined });
    const r = await runTakeover(w.exec, opts(w));
    expect(r.status).toBe('stopped');
    expect(outcomes(r)['fence-hook']).toBe('skipped');
    expect(w.calls).toEqual(['alert']);
    expect(r).toMatchObject({ reachedPromotion: false, missing: 'fence not confirmed: connect ETIMEDOUT' });
  });

  it('a successful fence hook is enough when the old primary is unreachable', async () => {
    const w = world({ fenceDb: async () => ({ confirmed: false, detail: 'unreachable' }) });
    const r = await runTakeover(w.exec, opts(w));
    // The unreachable database stays visible in the timeline, but the takeover itself completed normally.
    expect(r.status).toBe('completed');
    expect(outcomes(r)['fence-db']).toBe('failed');
    expect(r.reason).toBe('b promoted');
    expect(w.calls).toContain('promote');
    expect(r).toMatchObject({ reachedPromotion: true, missing: null });
  });

  it('runs both fence steps at once; the first to confirm ends the wait for the other (issue #17)', async () => {
    let dbAborted = false;
    const w = world({
      // An unreachable primary: the connect hangs until its timeout; the hook confirms meanwhile.
      fenceDb: (ctx) =>
        new Promise((res) => {
          const t = setTimeout(() => res({ confirmed: false, detail: 'unreachable' }), 5000);
          ctx.signal.addEventListener('abort', () => {
            dbAborted = true;
            clearTimeout(t);
            res({ confirmed: false, detail: 'aborted' });
          });
        }),
    });
    const t0 = Date.now();
    const r = await runTakeover(w.exec, opts(w));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(dbAborted).toBe(true);
    expect(r.status).toBe('completed');
    expect(r.timeline[0]).toMatchObject({
      step: 'fence-db',
      outcome: 'skipped',
      detail: expect.stringMatching(/^not waited for/),
    });
    expect(r.timeline[1]).toMatchObject({ step: 'fence-hook', outcome: 'ok' });
  });

  it('--force promotes without a confirmed fence and marks the steps forced', async () => {
    const w = world({ fenceDb: fail('unreachable'), fenceHook: undefined });
    const r = await runTakeover(w.exec, opts(w, true));
    expect(w.calls).toContain('promote');
    expect(r.timeline[0]).toMatchObject({ step: 'fence-db', outcome: 'failed', forced: true });
    expect(r.force).toBe(true);
  });

  it('stops before promoting when drain fails (unless forced)', async () => {
    const w = world({ drain: fail('applier: duplicate key') });
    const r = await runTakeover(w.exec, opts(w));
    expect(r.status).toBe('stopped');
    expect(r.reason).toMatch(/could not apply everything it received/);
    expect(w.calls).toEqual(['fence-db', 'fence-hook', 'alert']);
    expect(r).toMatchObject({ reachedPromotion: false, missing: 'drain failed: applier: duplicate key' });
    const w2 = world({ drain: fail('applier: duplicate key') });
    const forced = await runTakeover(w2.exec, opts(w2, true));
    expect(w2.calls).toContain('promote');
    expect(forced.timeline.find((e) => e.step === 'drain')).toMatchObject({ outcome: 'failed', forced: true });
  });

  it('stops after a failed promote, even forced: no VIP move, no repoint', async () => {
    const w = world({ promote: fail('SET GLOBAL read_only=OFF: access denied') });
    const r = await runTakeover(w.exec, opts(w, true));
    expect(r.status).toBe('stopped');
    expect(w.calls).toEqual(['fence-db', 'fence-hook', 'drain', 'alert']);
    expect(outcomes(r)['move-vip']).toBe('not-run');
    // The promote step ran: the standby may be writable, so this counts as a takeover.
    expect(r).toMatchObject({ reachedPromotion: true, missing: null });
  });

  it('runs every step after promote even when one fails', async () => {
    const w = world({ moveVip: fail('ip: RTNETLINK answers: Operation not permitted') });
    const r = await runTakeover(w.exec, opts(w));
    expect(w.calls).toEqual(['fence-db', 'fence-hook', 'drain', 'promote', 'repoint@120', 'alert']);
    expect(r.status).toBe('completed-with-errors');
    expect(r.reason).toBe('b promoted; failed: move-vip');
  });

  it('fails a step that exceeds its timeout and aborts its signal', async () => {
    let aborted = false;
    const w = world({
      fenceDb: (ctx) =>
        new Promise((_, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('aborted'));
          });
        }),
      fenceHook: undefined,
    });
    const r = await runTakeover(w.exec, { ...opts(w), timeoutsMs: { 'fence-db': 20 } });
    expect(aborted).toBe(true);
    expect(r.timeline[0]).toMatchObject({ outcome: 'failed', error: 'fence-db timed out after 20 ms' });
    expect(r.status).toBe('stopped');
  });

  it('records an alert failure without changing the result', async () => {
    const w = world({ alert: fail('webhook: 503') });
    const r = await runTakeover(w.exec, opts(w));
    expect(r.status).toBe('completed');
    expect(r.timeline.at(-1)).toMatchObject({ step: 'alert', outcome: 'failed', error: 'webhook: 503' });
  });
});

describe('formatTimeline', () => {
  it('prints offsets, durations, outcomes and errors', async () => {
    const w = world({ moveVip: undefined, fenceDb: async () => ({ confirmed: false, detail: 'unreachable' }) });
    const r = await runTakeover(w.exec, opts(w));
    const lines = formatTimeline(r.timeline, r.startedAt);
    // fence-db and fence-hook run at once (the fake clock ticks 10 ms per reading: both started before either ended).
    expect(lines[0]).toBe('+   10ms fence-db   failed (20 ms): not confirmed: unreachable');
    expect(lines[4]).toBe('        move-vip   skipped: not configured');
    expect(lines).toHaveLength(7);
  });
});
