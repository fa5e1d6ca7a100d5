/**
 * The takeover procedure as an ordered plan, run by `runTakeover` with injected step executors (the SQL, `ip`,
 * hook and alert code lives with the caller; tests inject fakes). Every step lands in the timeline with its
 * start, end, outcome and error, also the steps a stop left unrun.
 *
 *   fence-db    old primary reachable: read_only=ON, kill its sessions  ┐ fenced = either one confirmed;
 *   fence-hook  the configured fence hook (always run when configured)  ┘ both at once; the first to confirm
 *                                                                        ends the wait for the other (skipped)
 *   ── gate: not fenced → stop (unless force): never two writable primaries
 *   drain       apply everything this standby already received
 *   ── gate: drain failed → stop (unless force): promoting would drop received transactions
 *   promote     stop applying, make the standby writable, record the promotion position
 *   ── gate: promote failed → stop (never forced)
 *   move-vip    ip addr del on the old host (if reachable), add on the new one, gratuitous ARP   ┐ best effort:
 *   repoint     the other standbys capture from the new primary at the promotion position       ┘ all run
 *   alert       always, last, with the timeline so far (after a stop too)
 *
 * A step that throws or exceeds its timeout has failed; its signal is aborted on timeout. A timed-out promote
 * may still complete later: the old primary is fenced by then, so that still leaves one writable primary.
 */
import { describeChain } from '../core/errors.ts';

export const TAKEOVER_STEPS = ['fence-db', 'fence-hook', 'drain', 'promote', 'move-vip', 'repoint', 'alert'] as const;
export type StepName = (typeof TAKEOVER_STEPS)[number];

export type Outcome = 'ok' | 'failed' | 'skipped' | 'not-run';

export interface TimelineEntry {
  readonly step: StepName;
  readonly outcome: Outcome;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly detail?: string;
  readonly error?: string;
  /** The step failed and the plan went on because of --force. */
  readonly forced?: boolean;
}

export interface StepContext {
  readonly oldPrimary: string;
  readonly winner: string;
  readonly force: boolean;
  readonly signal: AbortSignal;
}

export interface StepReport {
  readonly detail: string;
}

export interface FenceReport extends StepReport {
  /** The old primary is known not to accept writes (read_only set and sessions killed, or the hook succeeded). */
  readonly confirmed: boolean;
}

export interface StepExecutors<P> {
  fenceDb(ctx: StepContext): Promise<FenceReport>;
  /** Absent when no fence hook is configured. */
  fenceHook?: ((ctx: StepContext) => Promise<FenceReport>) | undefined;
  drain(ctx: StepContext): Promise<StepReport>;
  promote(ctx: StepContext): Promise<StepReport & { readonly position: P }>;
  /** Absent when no VIP is configured. */
  moveVip?: ((ctx: StepContext) => Promise<StepReport>) | undefined;
  repoint(ctx: StepContext, position: P): Promise<StepReport>;
  alert(result: TakeoverResult<P>, ctx: StepContext): Promise<StepReport>;
}

export interface TakeoverOptions {
  readonly oldPrimary: string;
  readonly winner: string;
  readonly force: boolean;
  readonly timeoutsMs?: Partial<Record<StepName, number>>;
  readonly now?: () => number;
}

export type TakeoverStatus = 'completed' | 'completed-with-errors' | 'stopped';

export interface TakeoverResult<P> {
  readonly status: TakeoverStatus;
  readonly reason: string;
  readonly oldPrimary: string;
  readonly winner: string;
  readonly force: boolean;
  readonly startedAt: number;
  readonly endedAt: number;
  /** Set once promote succeeded. */
  readonly position: P | null;
  readonly timeline: readonly TimelineEntry[];
  /**
   * Whether the promote step ran (succeeded or not): from then on the standby may be writable, so the attempt
   * counts as a takeover for anti-flapping. false: it stopped before (fence or drain gate) and can be retried.
   */
  readonly reachedPromotion: boolean;
  /** For a stop before promotion, what was missing: "fence not confirmed: …", "drain failed: …"; else null. */
  readonly missing: string | null;
}

class StepTimeout extends Error {}

const CANCELLED = Symbol('cancelled');

async function withTimeout<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  ms: number | undefined,
  step: string,
  /** Aborts the step's signal too (the step is no longer waited for). */
  cancel?: AbortSignal,
): Promise<T> {
  const ac = new AbortController();
  cancel?.addEventListener('abort', () => ac.abort(), { once: true });
  if (ms === undefined) return fn(ac.signal);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Reject first: the aborted step may reject at once with its own error, which must not win the race.
      reject(new StepTimeout(`${step} timed out after ${ms} ms`));
      ac.abort();
    }, ms);
  });
  try {
    return await Promise.race([fn(ac.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

export async function runTakeover<P>(exec: StepExecutors<P>, opts: TakeoverOptions): Promise<TakeoverResult<P>> {
  const now = opts.now ?? Date.now;
  const startedAt = now();
  const timeline: TimelineEntry[] = [];
  const base = { oldPrimary: opts.oldPrimary, winner: opts.winner, force: opts.force };

  /** Runs one step; returns its report, or null when it failed (recorded). */
  const step = async <R extends StepReport>(
    name: StepName,
    fn: ((ctx: StepContext) => Promise<R>) | undefined,
    opt: { forced?: boolean; cancel?: AbortSignal } = {},
  ): Promise<R | null> => {
    if (!fn) {
      timeline.push({ step: name, outcome: 'skipped', startedAt: null, endedAt: null, detail: 'not configured' });
      return null;
    }
    const t0 = now();
    const cancel = opt.cancel;
    let onCancel: (() => void) | null = null;
    const cancelled = new Promise<typeof CANCELLED>((res) => {
      onCancel = () => res(CANCELLED);
      cancel?.addEventListener('abort', onCancel, { once: true });
    });
    try {
      const run = withTimeout((signal) => fn({ ...base, signal }), opts.timeoutsMs?.[name], name, cancel);
      const r = cancel ? await Promise.race([run, cancelled]) : await run;
      if (r === CANCELLED) {
        run.catch(() => undefined); // it ends by itself; its result no longer matters
        const detail = 'not waited for: the other fence step confirmed the fence';
        timeline.push({ step: name, outcome: 'skipped', startedAt: t0, endedAt: now(), detail });
        return null;
      }
      timeline.push({ step: name, outcome: 'ok', startedAt: t0, endedAt: now(), detail: r.detail });
      return r;
    } catch (err) {
      const e: TimelineEntry = {
        step: name,
        outcome: 'failed',
        startedAt: t0,
        endedAt: now(),
        error: describeChain(err),
      };
      timeline.push(opt.forced ? { ...e, forced: true } : e);
      return null;
    } finally {
      if (onCancel) cancel?.removeEventListener('abort', onCancel);
    }
  };

  let missing: string | null = null;
  const finish = async (status: TakeoverStatus, reason: string, position: P | null): Promise<TakeoverResult<P>> => {
    for (const s of TAKEOVER_STEPS) {
      if (s !== 'alert' && !timeline.some((e) => e.step === s)) {
        timeline.push({ step: s, outcome: 'not-run', startedAt: null, endedAt: null });
      }
    }
    const draft = (): TakeoverResult<P> => ({
      ...base,
      status,
      reason,
      startedAt,
      endedAt: now(),
      position,
      timeline: [...timeline],
      reachedPromotion: timeline.some((e) => e.step === 'promote' && e.outcome !== 'not-run'),
      missing,
    });
    await step('alert', (ctx) => exec.alert(draft(), ctx));
    return draft();
  };

  // Fence: the database fence when reachable, the hook always; either one confirmed is enough. Both at once: an
  // unreachable primary's connect timeout must not delay the hook (the timeline lists fence-db first).
  // The first to confirm ends the wait for the other (an unreachable primary's connect timeout, a hook retrying).
  const enough = new AbortController();
  const fence = (name: 'fence-db' | 'fence-hook', fn: StepExecutors<P>['fenceDb'] | undefined) =>
    step(name, fn, { forced: opts.force, cancel: enough.signal }).then((r) => {
      if (r?.confirmed) enough.abort();
      return r;
    });
  const [db, hook] = await Promise.all([fence('fence-db', exec.fenceDb), fence('fence-hook', exec.fenceHook)]);
  const di = timeline.findIndex((e) => e.step === 'fence-db');
  const hi = timeline.findIndex((e) => e.step === 'fence-hook');
  if (hi >= 0 && di > hi) timeline.splice(hi, 2, timeline[di] as TimelineEntry, timeline[hi] as TimelineEntry);
  const dbOk = db?.confirmed === true;
  const hookOk = hook?.confirmed === true;
  if (db && !dbOk) relabel(timeline, 'fence-db', db.detail, opts.force);
  if (hook && !hookOk) relabel(timeline, 'fence-hook', hook.detail, opts.force);
  if (!dbOk && !hookOk && !opts.force) {
    const why = (step: StepName) => timeline.find((e) => e.step === step && e.outcome === 'failed')?.error;
    const parts = [why('fence-hook'), why('fence-db')].filter((x) => x !== undefined);
    missing = `fence not confirmed: ${parts.length > 0 ? parts.join('; ') : 'no fence hook and the database fence is off'}`;
    return finish(
      'stopped',
      `not promoted: fencing of ${opts.oldPrimary} was not confirmed (database fence and fence hook both failed or absent); ` +
        'never two writable primaries — fence it by hand, then run with --force',
      null,
    );
  }

  if (!(await step('drain', exec.drain, { forced: opts.force })) && !opts.force) {
    missing = `drain failed: ${timeline.find((e) => e.step === 'drain')?.error ?? '?'}`;
    return finish(
      'stopped',
      `not promoted: ${opts.winner} could not apply everything it received (--force promotes anyway)`,
      null,
    );
  }

  const promoted = await step('promote', exec.promote);
  if (!promoted) return finish('stopped', `promotion of ${opts.winner} failed; nothing after it was run`, null);
  const position = promoted.position;

  await step('move-vip', exec.moveVip);
  await step('repoint', (ctx) => exec.repoint(ctx, position));
  // A fence step that failed while the other one confirmed the fence is not an error of the takeover.
  const fenceStep = (e: TimelineEntry) => (e.step === 'fence-db' || e.step === 'fence-hook') && (dbOk || hookOk);
  const failed = timeline.filter((e) => e.outcome === 'failed' && !fenceStep(e)).map((e) => e.step);
  return failed.length === 0
    ? finish('completed', `${opts.winner} promoted`, position)
    : finish('completed-with-errors', `${opts.winner} promoted; failed: ${failed.join(', ')}`, position);
}

/** A fence step that ran but could not confirm is recorded as failed, with its own explanation. */
function relabel(timeline: TimelineEntry[], step: StepName, detail: string, forced: boolean): void {
  const i = timeline.findIndex((e) => e.step === step);
  const e = timeline[i];
  if (!e) return;
  const { detail: _d, ...rest } = e;
  timeline[i] = { ...rest, outcome: 'failed', error: `not confirmed: ${detail}`, ...(forced ? { forced: true } : {}) };
}

/** One line per timeline entry, for logs and `status`. */
export function formatTimeline(entries: readonly TimelineEntry[], origin: number): string[] {
  return entries.map((e) => {
    const when = e.startedAt === null ? '       ' : `+${String(e.startedAt - origin).padStart(5)}ms`;
    const took = e.startedAt !== null && e.endedAt !== null ? ` (${e.endedAt - e.startedAt} ms)` : '';
    const what = e.error ?? e.detail ?? '';
    return `${when} ${e.step.padEnd(10)} ${e.outcome}${e.forced ? ' (forced)' : ''}${took}${what ? `: ${what}` : ''}`;
  });
}
