/**
 * The fence timeline (issue #17), pure: when an isolated primary fences itself, and when a standby can expect
 * the fence command to confirm it. Both sides count from their own last contact, each on its own clock: no
 * clock is ever compared with another host's.
 *
 *   guard (primary site)   fences itself at  last contact with the witness or any standby + fail_after_ms
 *   standby                asks the fence command at once, and again from
 *                          the latest contact it or the witness had with the primary + fail_after_ms + margin
 *                          then every 250 ms, doubling up to 2 s apart, for confirm_for_ms
 *
 * The witness's last contact travels as an age (its `now` minus its probe's last success, both on its clock),
 * turned into a time on the standby's clock at receipt: the view's transit time is left out, which makes that
 * contact look later than it was — the safe direction (the standby asks later, never earlier).
 *
 * Why the margin: the standby's last successful probe can be up to one probe interval plus one probe timeout
 * before the moment the primary lost contact (the probe after it is the one that failed), and the guard needs
 * a moment to notice its deadline and set read_only. margin = the longest probe interval + probe_timeout_ms +
 * GUARD_ALLOWANCE_MS covers both, so at the standby's deadline the guard has fenced (failover/README.md). The
 * margin makes the first confirmation after it succeed; safety itself never rests on it: a check-only fence
 * command confirms only what it sees, and is retried.
 */
import { backoffDelayMs } from '../core/backoff.ts';
import type { ProbeState } from './monitor.ts';

/** What the guard needs after its deadline to see it (its watchdog's tick) and set read_only. */
export const GUARD_ALLOWANCE_MS = 500;
/** The guard's watchdog checks its deadline this often. */
export const GUARD_TICK_MS = 100;
/**
 * Until its first contact after it started, the guard counts from its start + this: a (re)started process needs a
 * moment for the witness's first answer and the standbys' first link bytes. Safe: a standby's check-only fence
 * command confirms only once the primary is read-only, so a later self-fence only delays a takeover.
 */
export const GUARD_STARTUP_GRACE_MS = 5000;

/** margin_ms when not configured: the longest probe interval + probe_timeout_ms + GUARD_ALLOWANCE_MS. */
export function defaultMarginMs(o: { maxProbeIntervalMs: number; probeTimeoutMs: number }): number {
  return o.maxProbeIntervalMs + o.probeTimeoutMs + GUARD_ALLOWANCE_MS;
}

/** The time of the last contact a monitor's probes had with the primary (null: none), on the monitor's clock. */
export function lastContactOf(probes: readonly Pick<ProbeState, 'kind' | 'lastSuccessAt' | 'lastLatencyMs'>[]) {
  let at: number | null = null;
  for (const p of probes) {
    // The link probe reads "up" until the session is declared dead (3 heartbeats later): not a contact time.
    if (p.kind === 'link' || p.lastSuccessAt === null) continue;
    const t = p.lastSuccessAt + (p.lastLatencyMs ?? 0);
    if (at === null || t > at) at = t;
  }
  return at;
}

export interface FenceDeadline {
  /** From when the fence command can be expected to confirm (this standby's clock). */
  readonly at: number;
  /** The latest contact with the primary it counts from, and whose it was. */
  readonly lastContactAt: number;
  readonly from: 'standby' | 'witness' | 'decision';
}

/**
 * The standby's deadline. Without any contact known (a monitor started while the primary was already gone), it
 * counts from `now`: later, never earlier, than the guard's own deadline.
 */
export function fenceDeadline(o: {
  readonly now: number;
  readonly failAfterMs: number;
  readonly marginMs: number;
  readonly standbyContactAt: number | null;
  readonly witnessContactAt: number | null;
}): FenceDeadline {
  const s = o.standbyContactAt;
  const w = o.witnessContactAt;
  let lastContactAt = o.now;
  let from: FenceDeadline['from'] = 'decision';
  if (s !== null || w !== null) {
    from = w !== null && (s === null || w > s) ? 'witness' : 'standby';
    lastContactAt = Math.max(s ?? w ?? 0, w ?? s ?? 0);
  }
  return { at: lastContactAt + o.failAfterMs + o.marginMs, lastContactAt, from };
}

export const CONFIRM_FIRST_RETRY_MS = 250;
export const CONFIRM_MAX_GAP_MS = 2000;

/**
 * When to ask the fence command again, after `tries` tries (≥ 1) that did not confirm, the last one ending at
 * `now`; null when the confirmation window is over. The first retry waits for the deadline; after it, 250 ms
 * doubling up to 2 s apart, until deadline + confirmForMs (or, with the deadline already past when the attempt
 * started, start + confirmForMs).
 */
export function nextConfirmAt(o: {
  readonly now: number;
  readonly startedAt: number;
  readonly deadlineAt: number;
  /** Tries made at or after the deadline so far. */
  readonly triesAfterDeadline: number;
  readonly confirmForMs: number;
}): number | null {
  const windowEnd = Math.max(o.deadlineAt, o.startedAt) + o.confirmForMs;
  if (o.now < o.deadlineAt) return o.deadlineAt;
  if (o.now >= windowEnd) return null;
  const gap = backoffDelayMs(o.triesAfterDeadline, CONFIRM_FIRST_RETRY_MS, CONFIRM_MAX_GAP_MS);
  return Math.min(o.now + gap, windowEnd);
}

/** The wait before automatic attempt n+1 after n attempts stopped before promotion: initial, doubling, capped. */
export function retryDelayMs(stopped: number, policy: { initial_ms: number; max_ms: number }): number {
  if (stopped <= 0) return 0;
  return backoffDelayMs(stopped - 1, policy.initial_ms, policy.max_ms);
}
