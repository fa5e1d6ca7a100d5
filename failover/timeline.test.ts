import { describe, expect, it } from 'vitest';
import { defaultMarginMs, fenceDeadline, lastContactOf, nextConfirmAt, retryDelayMs } from './timeline.ts';

describe('the fence timeline (issue #17)', () => {
  it('margin: the longest probe interval + probe timeout + the guard allowance (2.5 s at the defaults)', () => {
    expect(defaultMarginMs({ maxProbeIntervalMs: 1000, probeTimeoutMs: 1000 })).toBe(2500);
  });

  it("the last contact: probes' last success + its latency; the link probe does not count", () => {
    expect(
      lastContactOf([
        { kind: 'heartbeat', lastSuccessAt: 1000, lastLatencyMs: 20 },
        { kind: 'link', lastSuccessAt: 5000, lastLatencyMs: null },
        { kind: 'tcp', lastSuccessAt: 900, lastLatencyMs: 1 },
      ]),
    ).toBe(1020);
    expect(lastContactOf([{ kind: 'heartbeat', lastSuccessAt: null, lastLatencyMs: null }])).toBeNull();
  });

  it("the standby's deadline counts from the latest contact, its own or the witness's, else from the decision", () => {
    const o = { now: 10_000, failAfterMs: 3000, marginMs: 2500 };
    expect(fenceDeadline({ ...o, standbyContactAt: 4000, witnessContactAt: 4600 })).toEqual({
      at: 10_100,
      lastContactAt: 4600,
      from: 'witness',
    });
    expect(fenceDeadline({ ...o, standbyContactAt: 4700, witnessContactAt: null })).toMatchObject({
      at: 10_200,
      from: 'standby',
    });
    expect(fenceDeadline({ ...o, standbyContactAt: null, witnessContactAt: null })).toEqual({
      at: 15_500,
      lastContactAt: 10_000,
      from: 'decision',
    });
  });

  it('confirmation retries: at the deadline, then 250 ms doubling up to 2 s apart, for confirm_for_ms', () => {
    const base = { startedAt: 0, deadlineAt: 3000, confirmForMs: 5000 };
    expect(nextConfirmAt({ ...base, now: 100, triesAfterDeadline: 0 })).toBe(3000);
    const times: number[] = [];
    let now = 3000;
    for (let k = 1; ; k++) {
      const next = nextConfirmAt({ ...base, now, triesAfterDeadline: k });
      if (next === null) break;
      times.push(next);
      now = next;
    }
    // 3000 + 500, +1000, +2000, +2000 (capped), then the window's end at 8000.
    expect(times).toEqual([3500, 4500, 6500, 8000]);
    // Deadline already past when the attempt starts: the window counts from the start.
    expect(
      nextConfirmAt({ startedAt: 10_000, deadlineAt: 3000, confirmForMs: 1000, now: 10_000, triesAfterDeadline: 1 }),
    ).toBe(10_500);
    expect(
      nextConfirmAt({ startedAt: 10_000, deadlineAt: 3000, confirmForMs: 1000, now: 11_000, triesAfterDeadline: 3 }),
    ).toBeNull();
  });

  it('attempt retries: initial, doubling, capped', () => {
    const p = { initial_ms: 1000, max_ms: 15_000 };
    expect([0, 1, 2, 3, 4, 5, 60].map((n) => retryDelayMs(n, p))).toEqual([0, 1000, 2000, 4000, 8000, 15_000, 15_000]);
  });
});
