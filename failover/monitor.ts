/**
 * The health monitor of a primary, as a pure state machine: the caller runs the probes (heartbeat write,
 * tidemark link, TCP checks) and feeds their results in with timestamps; `stepMonitor` returns the new state and
 * the transitions to log and alert. No timers, no I/O: tests drive time by hand.
 *
 * Per probe:
 *   healthy ──(suspect_after consecutive failures)──▶ suspect
 *   healthy|suspect ──(≥ fail_after_count consecutive failures spanning ≥ fail_after_ms)──▶ failed
 *   suspect|failed ──(recover_after consecutive successes)──▶ healthy
 * The failure run is measured from its first failed result; one success ends the run, so a primary that answers
 * now and then never reaches `failed` (it is reachable: taking over would be wrong).
 *
 * Overall (the primary as a whole):
 *   failed   when the critical probes have failed: all of them (`overall: all`, default) or any (`any`)
 *   suspect  otherwise, when any probe is not healthy
 *   healthy  otherwise
 *
 * The next probe interval is `suspect_interval_ms` while overall is not healthy or any probe's last result was a
 * failure (from the first one: the failure run is timed from it, issue #15), else the calendar's.
 */
import type { Calendar } from './calendar.ts';

export type Health = 'healthy' | 'suspect' | 'failed';
export type ProbeKind = 'heartbeat' | 'link' | 'tcp';

export interface ProbeThresholds {
  /** Consecutive failures before a healthy probe becomes suspect (≥ 1). */
  suspect_after: number;
  /** The failure run must last at least this long (first failure to now) to become failed. */
  fail_after_ms: number;
  /** … and hold at least this many consecutive failures. */
  fail_after_count: number;
  /** Consecutive successes that bring a suspect or failed probe back to healthy (≥ 1). */
  recover_after: number;
}

export interface MonitorSpec {
  readonly probes: readonly ProbeSpec[];
  readonly thresholds: ProbeThresholds;
  readonly overall: 'all' | 'any';
  /** The probe interval while anything is not healthy. */
  readonly suspect_interval_ms: number;
  readonly calendar: Calendar;
}

export interface ProbeSpec {
  readonly name: string;
  readonly kind: ProbeKind;
  /** Counts toward the overall `failed` state; a non-critical probe can only make the primary suspect. */
  readonly critical: boolean;
  readonly thresholds?: Partial<ProbeThresholds> | undefined;
}

export interface ProbeState {
  readonly name: string;
  readonly kind: ProbeKind;
  readonly critical: boolean;
  readonly state: Health;
  /** When the probe entered `state`. */
  readonly since: number;
  readonly failures: number;
  readonly successes: number;
  /** First failure of the current failure run, null when the last result was a success (or none yet). */
  readonly failingSince: number | null;
  readonly lastResultAt: number | null;
  readonly lastSuccessAt: number | null;
  readonly lastError: string | null;
  readonly lastLatencyMs: number | null;
  /** Replication lag measured from the heartbeat table's timestamps, when the probe reports it. */
  readonly lastLagMs: number | null;
}

export interface MonitorState {
  readonly overall: Health;
  readonly since: number;
  readonly probes: readonly ProbeState[];
}

export type MonitorEvent =
  | { type: 'success'; probe: string; at: number; latencyMs?: number; lagMs?: number }
  | { type: 'failure'; probe: string; at: number; error: string }
  /** Time passed with no result (e.g. before each scheduling decision): re-evaluates the time-based rule. */
  | { type: 'tick'; at: number };

export interface Transition {
  /** A probe's name, or "overall". */
  readonly probe: string;
  readonly from: Health;
  readonly to: Health;
  readonly at: number;
  readonly reason: string;
}

export interface StepResult {
  readonly state: MonitorState;
  readonly transitions: readonly Transition[];
}

export const OVERALL = 'overall';

export function initialMonitorState(spec: MonitorSpec, at: number): MonitorState {
  const names = new Set<string>();
  for (const p of spec.probes) {
    if (p.name === OVERALL || names.has(p.name)) throw new Error(`probe name "${p.name}" is reserved or repeated`);
    names.add(p.name);
  }
  return {
    overall: 'healthy',
    since: at,
    probes: spec.probes.map((p) => ({
      name: p.name,
      kind: p.kind,
      critical: p.critical,
      state: 'healthy',
      since: at,
      failures: 0,
      successes: 0,
      failingSince: null,
      lastResultAt: null,
      lastSuccessAt: null,
      lastError: null,
      lastLatencyMs: null,
      lastLagMs: null,
    })),
  };
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Escalation by count and time; null when the probe stays where it is. */
function escalate(p: ProbeState, th: ProbeThresholds, at: number): { to: Health; reason: string } | null {
  if (p.failures === 0 || p.failingSince === null || p.state === 'failed') return null;
  const span = at - p.failingSince;
  const last = p.lastError ? ` (last: ${p.lastError})` : '';
  if (p.failures >= th.fail_after_count && span >= th.fail_after_ms) {
    return {
      to: 'failed',
      reason:
        `${p.failures} consecutive failures over ${seconds(span)} ` +
        `(thresholds: ${th.fail_after_count} and ${seconds(th.fail_after_ms)})${last}`,
    };
  }
  if (p.state === 'healthy' && p.failures >= th.suspect_after) {
    return { to: 'suspect', reason: `${p.failures} consecutive failure${p.failures === 1 ? '' : 's'}${last}` };
  }
  return null;
}

function stepProbe(p: ProbeState, th: ProbeThresholds, ev: MonitorEvent): { p: ProbeState; t: Transition | null } {
  let next: ProbeState = p;
  if (ev.type === 'success') {
    next = {
      ...p,
      failures: 0,
      successes: p.successes + 1,
      failingSince: null,
      lastResultAt: ev.at,
      lastSuccessAt: ev.at,
      lastLatencyMs: ev.latencyMs ?? null,
      lastLagMs: ev.lagMs ?? p.lastLagMs,
    };
    if (p.state !== 'healthy' && next.successes >= th.recover_after) {
      const reason = `${next.successes} consecutive success${next.successes === 1 ? '' : 'es'}`;
      return { p: { ...next, state: 'healthy', since: ev.at }, t: tr(p.name, p.state, 'healthy', ev.at, reason) };
    }
    return { p: next, t: null };
  }
  if (ev.type === 'failure') {
    next = {
      ...p,
      failures: p.failures + 1,
      successes: 0,
      failingSince: p.failingSince ?? ev.at,
      lastResultAt: ev.at,
      lastError: ev.error,
    };
  }
  const up = escalate(next, th, ev.at);
  if (!up) return { p: next, t: null };
  return { p: { ...next, state: up.to, since: ev.at }, t: tr(p.name, p.state, up.to, ev.at, up.reason) };
}

function tr(probe: string, from: Health, to: Health, at: number, reason: string): Transition {
  return { probe, from, to, at, reason };
}

function overallOf(spec: MonitorSpec, probes: readonly ProbeState[]): { to: Health; reason: string } {
  const critical = probes.filter((p) => p.critical);
  const failed = critical.filter((p) => p.state === 'failed');
  const allOrAny = spec.overall === 'all' ? failed.length === critical.length : failed.length > 0;
  if (critical.length > 0 && failed.length > 0 && allOrAny) {
    const which = failed.map((p) => p.name).join(', ');
    return {
      to: 'failed',
      reason: spec.overall === 'all' ? `every critical probe failed: ${which}` : `critical probe failed: ${which}`,
    };
  }
  const unwell = probes.filter((p) => p.state !== 'healthy');
  if (unwell.length > 0) {
    return { to: 'suspect', reason: `not healthy: ${unwell.map((p) => `${p.name} ${p.state}`).join(', ')}` };
  }
  return { to: 'healthy', reason: 'every probe healthy' };
}

/** Applies one event. Probe transitions come first, then the overall one if the overall state changed. */
export function stepMonitor(spec: MonitorSpec, state: MonitorState, ev: MonitorEvent): StepResult {
  if (ev.type !== 'tick' && !state.probes.some((p) => p.name === ev.probe)) {
    throw new Error(`unknown probe "${ev.probe}" (known: ${state.probes.map((p) => p.name).join(', ')})`);
  }
  const transitions: Transition[] = [];
  const probes = state.probes.map((p, i) => {
    if (ev.type !== 'tick' && ev.probe !== p.name) return p;
    const ps = spec.probes[i];
    const th = { ...spec.thresholds, ...ps?.thresholds };
    const r = stepProbe(p, th, ev);
    if (r.t) transitions.push(r.t);
    return r.p;
  });
  const o = overallOf(spec, probes);
  let overall = state.overall;
  let since = state.since;
  if (o.to !== overall) {
    transitions.push(tr(OVERALL, overall, o.to, ev.at, o.reason));
    overall = o.to;
    since = ev.at;
  }
  return { state: { overall, since, probes }, transitions };
}

/** When to run the next probes, in ms from `at`. */
export function nextIntervalMs(spec: MonitorSpec, state: MonitorState, at: number): number {
  const failing = state.probes.some((p) => p.failingSince !== null);
  return state.overall === 'healthy' && !failing ? spec.calendar.intervalAt(at) : spec.suspect_interval_ms;
}

/** How long the primary has been failed overall at `at` (0 when it is not failed). */
export function failedForMs(state: MonitorState, at: number): number {
  return state.overall === 'failed' ? Math.max(0, at - state.since) : 0;
}

/** One log/alert line: "2026-03-02T10:00:01.000Z heartbeat healthy → suspect: 1 consecutive failure (…)". */
export function formatTransition(t: Transition): string {
  return `${new Date(t.at).toISOString()} ${t.probe} ${t.from} → ${t.to}: ${t.reason}`;
}

/** A convenience holder for callers that keep one monitor in memory. */
export class Monitor {
  readonly spec: MonitorSpec;
  private current: MonitorState;

  constructor(spec: MonitorSpec, at: number, restored?: MonitorState) {
    this.spec = spec;
    this.current = restored ?? initialMonitorState(spec, at);
  }

  get state(): MonitorState {
    return this.current;
  }

  apply(ev: MonitorEvent): readonly Transition[] {
    const r = stepMonitor(this.spec, this.current, ev);
    this.current = r.state;
    return r.transitions;
  }

  nextIntervalMs(at: number): number {
    return nextIntervalMs(this.spec, this.current, at);
  }
}

/**
 * The overall transitions of one round as one: results applied one by one can pass through an intermediate
 * overall state within the same instant (failed → suspect → healthy when two probes recover together).
 */
export function collapseOverall(ts: readonly Transition[]): Transition[] {
  const overall = ts.filter((t) => t.probe === OVERALL);
  const first = overall[0];
  const last = overall[overall.length - 1];
  const probes = ts.filter((t) => t.probe !== OVERALL);
  if (!first || !last || first.from === last.to) return probes;
  return [...probes, { ...last, from: first.from }];
}
