/**
 * One plain line for `tidemark status` (issue #17): whether the service has a writable primary as this site
 * sees it, and if not, why — written by the running monitor (monitor.json `service`) and the primary's guard
 * (guard.json `service`), shown by `tidemark status`. null: nothing wrong seen from here.
 */
import type { Decision, TakeoverHistory } from '../failover/decide.ts';
import { lastContactOf } from '../failover/timeline.ts';
import type { FetchedWitnessView } from '../failover/witness-client.ts';

export const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * The witness's last contact with the primary, on this standby's clock: the view carries its probes' last
 * successes and its own `now`, both on the witness's clock; only their difference (an age) is used.
 */
export function witnessContactAt(view: FetchedWitnessView): number | null {
  const at = lastContactOf(view.report.probes);
  return at === null ? null : view.receivedAt - (view.report.now - at);
}

/** A standby whose monitor sees the primary failed: the service line for status (null: the witness sees it up). */
export function serviceLine(
  primary: string,
  localSince: number,
  view: FetchedWitnessView | null,
  d: Decision,
  h: TakeoverHistory,
  progress?: string,
): string | null {
  if (d.action === 'none' && d.code === 'witness-sees-primary') return null;
  if (d.action === 'none' && d.code === 'already-promoted') return null;
  const here = `the primary ${primary} is lost for this standby since ${iso(localSince)}`;
  const why =
    progress ??
    (d.action === 'takeover'
      ? `${d.winner} is taking over`
      : d.action === 'defer'
        ? `${d.winner} takes over`
        : d.reason.replace(/^no takeover: /, 'no takeover yet: '));
  const stopped =
    h.stopped && !(d.action === 'none' && d.code === 'retry-backoff')
      ? `; ${h.stopped.count} attempt(s) stopped before promotion, the last: ${h.stopped.missing}`
      : '';
  if (view?.state === 'failed') {
    return `no writable primary: ${here} and for the witness since ${iso(view.since)}; ${why}${stopped}`;
  }
  return `no writable primary reachable from here: ${here}; the witness: ${view ? `sees it ${view.state}` : 'no view'}; ${why}${stopped}`;
}
