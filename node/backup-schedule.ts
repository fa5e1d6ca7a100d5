/**
 * What the backup scheduler (backup-loop.ts) does at a trigger and when a run ends, given the running state of
 * one scheduled item (a job or a copy). Pure — the clock is an argument, croner stays in the loop — so the
 * decisions are tested with a fake clock (backup-schedule.test.ts).
 *
 * Rules:
 *   - a trigger while the item's previous run is still going is SKIPPED (never queued, never run twice at
 *     once): the run goes on, the skip is counted and said, naming since when the item runs;
 *   - a run refused because another process holds the job's lock (`tidemark backup run|expire` by hand:
 *     BACKUP_BUSY) counts as a skip too, with reason `busy`; any other failure counts as a failure, and the next
 *     trigger runs again;
 *   - (in the loop, from croner) a one-off (`at:`) whose moment passed before the loop started is not run, and
 *     it says so: a restart must not take a backup the operator scheduled for another moment.
 */

export type SkipReason = 'overrun' | 'busy';

export interface LastRun {
  readonly trigger: Date;
  readonly ended: Date;
  readonly ok: boolean;
  /** The backup id (or copy summary), or the error message. */
  readonly detail: string;
}

export interface SlotState {
  /** The run in progress: the trigger that started it. */
  readonly running: Date | null;
  readonly runs: number;
  readonly failures: number;
  readonly skipped: number;
  readonly last: LastRun | null;
}

export const IDLE: SlotState = { running: null, runs: 0, failures: 0, skipped: 0, last: null };

export type TriggerDecision =
  | { readonly start: true }
  | { readonly start: false; readonly reason: 'overrun'; readonly runningSince: Date; readonly message: string };

/** A trigger fired at `at`: start a run, or skip it (the previous run is still going). */
export function onTrigger(s: SlotState, at: Date, what: string): { state: SlotState; decision: TriggerDecision } {
  if (s.running !== null) {
    const mins = ((at.getTime() - s.running.getTime()) / 60_000).toFixed(1);
    return {
      state: { ...s, skipped: s.skipped + 1 },
      decision: {
        start: false,
        reason: 'overrun',
        runningSince: s.running,
        message:
          `${what}: the run started at ${s.running.toISOString()} is still going (${mins} min): ` +
          `skipping the trigger of ${at.toISOString()}`,
      },
    };
  }
  return { state: { ...s, running: at }, decision: { start: true } };
}

export type Outcome =
  | { readonly ok: true; readonly detail: string }
  | { readonly ok: false; readonly busy: boolean; readonly detail: string };

/** The run started by the current trigger ended at `at`. */
export function onFinish(s: SlotState, at: Date, outcome: Outcome): SlotState {
  const trigger = s.running ?? at;
  const last: LastRun = { trigger, ended: at, ok: outcome.ok, detail: outcome.detail };
  if (outcome.ok) return { ...s, running: null, runs: s.runs + 1, last };
  if (outcome.busy) return { ...s, running: null, skipped: s.skipped + 1, last };
  return { ...s, running: null, failures: s.failures + 1, last };
}
