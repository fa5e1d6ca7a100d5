/**
 * The takeover decision, pure: given this standby's monitor, the witness's view, the standbys' positions and
 * the persisted takeover history, decide whether to take over now, let another standby do it, or not.
 *
 * Automatic takeover requires, in this order (the first one missing is the reason given):
 *   1. this standby's monitor says the primary failed;
 *   2. no other standby reports that it was promoted (through the witness): it is the primary now;
 *   3. the mode is automatic;
 *   4. a witness view fresher than `witness_max_age_ms` — a standby that cannot hear the witness may be the
 *      isolated one, so it never acts alone;
 *   5. the witness's monitor says failed too, both views failed for at least `agree_for_ms`;
 *   6. no automatic takeover that promoted within `min_interval_ms` (anti-flapping; the history is persisted by
 *      the caller). An attempt that stopped before promotion (fence not confirmed, drain failed) does not count:
 *      it is retried, `takeover_retry.initial_ms` after it stopped, doubling up to `max_ms` (`retry-backoff`).
 *      An attempt whose end was never recorded (the process died during it) counts, as it may have promoted;
 *   7. the election: the most advanced standby wins — received position, then applied position, then the
 *      higher configured priority, then the smaller name. Standbys whose position is unknown (not reported to
 *      the witness lately) make every standby wait (`unknown_standbys: wait`, default: two standbys that
 *      cannot see each other must not both win) or are left out (`ignore`).
 * Only the winner acts (`takeover`); the others get `defer` naming it.
 */
import { CorruptionError } from '../core/errors.ts';
import type { Health } from './monitor.ts';
import { retryDelayMs } from './timeline.ts';

/** Positions at the source's sequence (journal LSN or GTID seq): bigint, compared exactly. */
export interface StandbyPosition {
  /** Highest position durably received in this standby's mirror journal. */
  readonly received: bigint;
  /** Highest position applied to its target. */
  readonly applied: bigint;
}

export interface Candidate {
  readonly name: string;
  /** Higher is preferred, only between standbys at the same positions. */
  readonly priority: number;
  /** null when this standby's position is unknown (unreachable, not reporting). */
  readonly position: StandbyPosition | null;
  /** false when it must not be promoted (its applier stopped on an error, it needs a rebaseline…). */
  readonly eligible: boolean;
}

export interface WitnessView {
  readonly state: Health;
  /** When the witness's monitor entered `state`, on this standby's clock (witness-client.ts converts it). */
  readonly since: number;
  /** When this standby received the view (its own clock). */
  readonly receivedAt: number;
}

export interface TakeoverRecord {
  readonly at: number;
  readonly winner: string;
  readonly mode: 'automatic' | 'manual';
}

/** Automatic attempts that stopped before promotion, since the last promotion or the primary's recovery. */
export interface StoppedAttempts {
  readonly count: number;
  /** When the last one ended. */
  readonly lastAt: number;
  /** What it lacked, e.g. "fence not confirmed: …". */
  readonly missing: string;
}

/** Persisted by the caller across restarts (write it before acting on a takeover decision). */
export interface TakeoverHistory {
  /** The last automatic takeover that promoted (or may have: see pendingSince). Anti-flapping counts these. */
  readonly lastAutomaticAt: number | null;
  readonly last: TakeoverRecord | null;
  readonly stopped?: StoppedAttempts | null;
  /** Set durably before an automatic attempt acts, cleared with its result (historyAfterAttempt). */
  readonly pendingSince?: number | null;
}

export const EMPTY_HISTORY: TakeoverHistory = { lastAutomaticAt: null, last: null };

export interface DecidePolicy {
  readonly mode: 'automatic' | 'manual';
  readonly min_interval_ms: number;
  readonly witness_max_age_ms: number;
  readonly agree_for_ms: number;
  readonly unknown_standbys: 'wait' | 'ignore';
  /** Between attempts that stopped before promotion. Absent: 1 s doubling up to 15 s. */
  readonly retry?: { readonly initial_ms: number; readonly max_ms: number };
}

export interface DecideInput {
  readonly now: number;
  readonly self: string;
  /** This standby's monitor, overall. */
  readonly local: { readonly state: Health; readonly since: number };
  /** null when no view arrived from the witness. */
  readonly witness: WitnessView | null;
  /** Every configured standby, this one included. */
  readonly candidates: readonly Candidate[];
  /** Another standby that reports it was promoted (or is taking over), at an ISO time; absent/null: none. */
  readonly promoted?: { readonly name: string; readonly at: string } | null;
  readonly history: TakeoverHistory;
  readonly policy: DecidePolicy;
}

export type NoTakeoverCode =
  | 'primary-not-failed'
  | 'already-promoted'
  | 'manual-mode'
  | 'no-witness'
  | 'witness-stale'
  | 'witness-sees-primary'
  | 'not-long-enough'
  | 'anti-flapping'
  | 'retry-backoff'
  | 'unknown-standby'
  | 'no-candidate';

export type Decision =
  | {
      readonly action: 'takeover';
      readonly winner: string;
      readonly reason: string;
      readonly ranking: readonly Candidate[];
      /** The history to persist before acting. */
      readonly history: TakeoverHistory;
    }
  | {
      readonly action: 'defer';
      readonly winner: string;
      readonly reason: string;
      readonly ranking: readonly Candidate[];
    }
  | { readonly action: 'none'; readonly code: NoTakeoverCode; readonly reason: string };

const iso = (ms: number): string => new Date(ms).toISOString();
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Orders two candidates, most advanced first (negative when `a` wins). */
export function compareCandidates(a: Candidate, b: Candidate): number {
  const pa = a.position;
  const pb = b.position;
  if (pa && pb) {
    if (pa.received !== pb.received) return pa.received > pb.received ? -1 : 1;
    if (pa.applied !== pb.applied) return pa.applied > pb.applied ? -1 : 1;
  } else if (pa || pb) {
    return pa ? -1 : 1;
  }
  if (a.priority !== b.priority) return b.priority - a.priority;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The eligible candidates with a known position, most advanced first. Refuses repeated names. */
export function rank(candidates: readonly Candidate[]): Candidate[] {
  const seen = new Set<string>();
  for (const c of candidates) {
    if (seen.has(c.name)) throw new Error(`standby "${c.name}" appears twice among the candidates`);
    seen.add(c.name);
  }
  return candidates.filter((c) => c.eligible && c.position !== null).sort(compareCandidates);
}

function describeWin(ranking: readonly Candidate[]): string {
  const [w, second] = ranking;
  if (!w?.position) return '';
  const at = `received ${w.position.received}, applied ${w.position.applied}`;
  if (!second?.position) return `${w.name} is the only eligible standby (${at})`;
  const by =
    w.position.received !== second.position.received
      ? 'received position'
      : w.position.applied !== second.position.applied
        ? 'applied position'
        : w.priority !== second.priority
          ? `priority (${w.priority} > ${second.priority})`
          : 'name';
  return `${w.name} is the most advanced standby (${at}; ahead of ${second.name} by ${by})`;
}

const none = (code: NoTakeoverCode, reason: string): Decision => ({
  action: 'none',
  code,
  reason: `no takeover: ${reason}`,
});

export function decideAutomatic(input: DecideInput): Decision {
  const { now, local, witness, policy, history } = input;
  if (local.state !== 'failed') return none('primary-not-failed', `this standby sees the primary ${local.state}`);
  const promoted = input.promoted;
  if (promoted && promoted.name !== input.self) {
    return none('already-promoted', `${promoted.name} was promoted at ${promoted.at}: it is the primary`);
  }
  if (policy.mode !== 'automatic') {
    return none('manual-mode', 'the primary failed but takeover is manual (run tidemark failover --to NAME)');
  }
  if (!witness) return none('no-witness', 'no view from the witness (this standby may be the isolated one)');
  const age = now - witness.receivedAt;
  if (age > policy.witness_max_age_ms) {
    return none(
      'witness-stale',
      `the witness's last view is ${secs(age)} old (limit ${secs(policy.witness_max_age_ms)})`,
    );
  }
  if (witness.state !== 'failed') {
    return none(
      'witness-sees-primary',
      `witness still sees the primary (${witness.state} since ${iso(witness.since)})`,
    );
  }
  const agreed = Math.min(now - local.since, now - witness.since);
  if (agreed < policy.agree_for_ms) {
    return none('not-long-enough', `both lost the primary for ${secs(agreed)}, less than ${secs(policy.agree_for_ms)}`);
  }
  if (history.lastAutomaticAt !== null && now - history.lastAutomaticAt < policy.min_interval_ms) {
    const next = history.lastAutomaticAt + policy.min_interval_ms;
    return none(
      'anti-flapping',
      `the last automatic takeover was at ${iso(history.lastAutomaticAt)}; the next is allowed from ${iso(next)}`,
    );
  }
  const pending = history.pendingSince ?? null;
  if (pending !== null && now - pending < policy.min_interval_ms) {
    return none(
      'anti-flapping',
      `an automatic takeover started at ${iso(pending)} and its end was never recorded (it may have promoted); ` +
        `the next is allowed from ${iso(pending + policy.min_interval_ms)}`,
    );
  }
  const stopped = history.stopped ?? null;
  if (stopped && stopped.count > 0) {
    const next = stopped.lastAt + retryDelayMs(stopped.count, policy.retry ?? DEFAULT_RETRY);
    if (now < next) {
      return none(
        'retry-backoff',
        `attempt ${stopped.count} stopped before promotion at ${iso(stopped.lastAt)} (${stopped.missing}); ` +
          `attempt ${stopped.count + 1} from ${iso(next)}`,
      );
    }
  }
  const unknown = input.candidates.filter((c) => c.position === null).map((c) => c.name);
  if (unknown.length > 0 && policy.unknown_standbys === 'wait') {
    return none('unknown-standby', `position unknown for ${unknown.join(', ')} (unknown_standbys: wait)`);
  }
  const ranking = rank(input.candidates);
  const winner = ranking[0];
  if (!winner) return none('no-candidate', 'no eligible standby with a known position');
  const why = `primary failed for this standby since ${iso(local.since)} and for the witness since ${iso(witness.since)}; ${describeWin(ranking)}`;
  if (winner.name !== input.self)
    return { action: 'defer', winner: winner.name, reason: `${winner.name} takes over: ${why}`, ranking };
  return {
    action: 'takeover',
    winner: winner.name,
    reason: `takeover by ${winner.name}: ${why}`,
    ranking,
    history: { ...history, pendingSince: now },
  };
}

export const DEFAULT_RETRY = { initial_ms: 1000, max_ms: 15_000 } as const;

/** How an automatic attempt ended, for the history (plan.ts TakeoverResult, summed up by the caller). */
export interface AttemptOutcome {
  readonly winner: string;
  /** When it started (the decision's `now`). */
  readonly startedAt: number;
  readonly endedAt: number;
  /** The promote step ran (completed or not): the standby may be writable, so it counts as a takeover. */
  readonly reachedPromotion: boolean;
  /** For an attempt that stopped before promotion: what it lacked. */
  readonly missing: string;
}

/**
 * The history to persist once an automatic attempt ended: a promotion (or an attempt that reached the promote
 * step) is the takeover anti-flapping counts; an attempt that stopped before is one more stopped attempt, and
 * the budget is left as it was.
 */
export function historyAfterAttempt(h: TakeoverHistory, o: AttemptOutcome): TakeoverHistory {
  if (o.reachedPromotion) {
    return {
      lastAutomaticAt: o.startedAt,
      last: { at: o.startedAt, winner: o.winner, mode: 'automatic' },
      stopped: null,
      pendingSince: null,
    };
  }
  return {
    lastAutomaticAt: h.lastAutomaticAt,
    last: h.last,
    stopped: { count: (h.stopped?.count ?? 0) + 1, lastAt: o.endedAt, missing: o.missing },
    pendingSince: null,
  };
}

/** The primary recovered (or a decision was made elsewhere): the stopped attempts are over. */
export function historyRecovered(h: TakeoverHistory): TakeoverHistory {
  return { ...h, stopped: null };
}

export interface ManualInput {
  readonly now: number;
  readonly to: string;
  readonly force: boolean;
  readonly local: { readonly state: Health };
  readonly candidates: readonly Candidate[];
  readonly history: TakeoverHistory;
}

export type ManualDecision =
  | { readonly action: 'takeover'; readonly winner: string; readonly reason: string; readonly history: TakeoverHistory }
  | { readonly action: 'refuse'; readonly reason: string };

/**
 * `tidemark failover --to NAME [--force]`. Without --force it refuses when the primary still looks healthy
 * (that is a switchover), when NAME is unknown, not eligible or of unknown position, or when another standby
 * is further ahead (promoting NAME would lose transactions that one has). Manual takeovers do not count for
 * anti-flapping, which limits automatic ones only.
 */
export function decideManual(input: ManualInput): ManualDecision {
  const target = input.candidates.find((c) => c.name === input.to);
  const known = input.candidates.map((c) => c.name).join(', ');
  if (!target) return { action: 'refuse', reason: `no standby named "${input.to}" (standbys: ${known})` };
  const problems: string[] = [];
  if (input.local.state === 'healthy') {
    problems.push('the primary is healthy: use tidemark switchover for a planned move');
  }
  if (!target.eligible) problems.push(`${target.name} is not eligible for promotion`);
  if (target.position === null) problems.push(`the position of ${target.name} is unknown`);
  const best = rank(input.candidates)[0];
  if (best && target.position && best.name !== target.name && best.position) {
    if (best.position.received > target.position.received) {
      problems.push(
        `${best.name} has received more (${best.position.received} > ${target.position.received}): promoting ${target.name} would lose transactions`,
      );
    }
  }
  if (problems.length > 0 && !input.force) {
    return {
      action: 'refuse',
      reason: `refusing failover to ${target.name}: ${problems.join('; ')} (--force overrides)`,
    };
  }
  const forced = problems.length > 0 ? ` (forced despite: ${problems.join('; ')})` : '';
  return {
    action: 'takeover',
    winner: target.name,
    reason: `manual failover to ${target.name}${forced}`,
    history: {
      ...input.history,
      last: { at: input.now, winner: target.name, mode: 'manual' },
    },
  };
}

/** Loads a persisted history strictly: a damaged file is refused, never read as "no takeover yet". */
export function historyFromJson(j: unknown, where: string): TakeoverHistory {
  const bad = (what: string): never => {
    throw new CorruptionError(`${where}: takeover history ${what}`, { where });
  };
  const o = j as { lastAutomaticAt?: unknown; last?: unknown; stopped?: unknown; pendingSince?: unknown } | null;
  if (typeof o !== 'object' || o === null) return bad('is not an object');
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  const at = o.lastAutomaticAt;
  if (at !== null && !num(at)) bad('lastAutomaticAt must be a number or null');
  const pending = o.pendingSince ?? null;
  if (pending !== null && !num(pending)) bad('pendingSince must be a number or null');
  const st = (o.stopped ?? null) as Partial<StoppedAttempts> | null;
  if (st !== null) {
    if (typeof st !== 'object' || !num(st.count) || !num(st.lastAt) || typeof st.missing !== 'string') {
      bad('stopped must be null or {count, lastAt, missing}');
    }
  }
  const extra = {
    ...(st
      ? { stopped: { count: st.count as number, lastAt: st.lastAt as number, missing: st.missing as string } }
      : {}),
    ...(pending !== null ? { pendingSince: pending as number } : {}),
  };
  if (o.last === null) return { lastAutomaticAt: at as number | null, last: null, ...extra };
  const l = o.last as Partial<TakeoverRecord> | undefined;
  if (typeof l !== 'object' || typeof l.at !== 'number' || typeof l.winner !== 'string') {
    return bad('last must be null or {at, winner, mode}');
  }
  if (l.mode !== 'automatic' && l.mode !== 'manual') return bad('last.mode must be "automatic" or "manual"');
  return { lastAutomaticAt: at as number | null, last: { at: l.at, winner: l.winner, mode: l.mode }, ...extra };
}
