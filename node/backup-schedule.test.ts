import { describe, expect, it } from 'vitest';
import { IDLE, onFinish, onTrigger, type SlotState } from './backup-schedule.ts';

/** A fake clock: minutes after a fixed start. */
const T0 = Date.UTC(2026, 11, 6, 2, 0, 0);
const at = (min: number) => new Date(T0 + min * 60_000);

describe('backup schedule decisions', () => {
  it('starts at a trigger when idle, and records the run when it ends', () => {
    const t = onTrigger(IDLE, at(0), 'job nightly');
    expect(t.decision.start).toBe(true);
    expect(t.state.running).toEqual(at(0));
    const done = onFinish(t.state, at(3), { ok: true, detail: 'id-1' });
    expect(done).toEqual({
      running: null,
      runs: 1,
      failures: 0,
      skipped: 0,
      last: { trigger: at(0), ended: at(3), ok: true, detail: 'id-1' },
    });
  });

  it('skips every trigger while a run overruns, then runs at the next trigger after it ended', () => {
    // Triggers every 10 min; the first run takes 25 min: the triggers at 10 and 20 are skipped, 30 runs.
    let s: SlotState = IDLE;
    const started: number[] = [];
    const skips: string[] = [];
    const runEnds = new Map<number, number>([[0, 25]]);
    let endAt: number | null = null;
    for (let m = 0; m <= 40; m += 5) {
      if (endAt !== null && m >= endAt) {
        s = onFinish(s, at(endAt), { ok: true, detail: `run-${m}` });
        endAt = null;
      }
      if (m % 10 !== 0) continue;
      const r = onTrigger(s, at(m), 'job nightly');
      s = r.state;
      if (r.decision.start) {
        started.push(m);
        endAt = m + (runEnds.get(m) ?? 2);
      } else {
        expect(r.decision.reason).toBe('overrun');
        expect(r.decision.runningSince).toEqual(at(0));
        skips.push(r.decision.message);
      }
    }
    expect(started).toEqual([0, 30, 40]);
    expect(s.skipped).toBe(2);
    expect(skips[0]).toContain(`started at ${at(0).toISOString()} is still going (10.0 min)`);
    expect(skips[1]).toContain(`skipping the trigger of ${at(20).toISOString()}`);
  });

  it('counts a lock held elsewhere as a skip and a failure as a failure; both free the slot', () => {
    let s = onTrigger(IDLE, at(0), 'j').state;
    s = onFinish(s, at(0), { ok: false, busy: true, detail: 'BACKUP_BUSY' });
    expect([s.running, s.skipped, s.failures, s.runs]).toEqual([null, 1, 0, 0]);
    const r = onTrigger(s, at(10), 'j');
    expect(r.decision.start).toBe(true);
    s = onFinish(r.state, at(11), { ok: false, busy: false, detail: 'stream failed' });
    expect([s.running, s.skipped, s.failures, s.last?.ok, s.last?.trigger]).toEqual([null, 1, 1, false, at(10)]);
  });
});
