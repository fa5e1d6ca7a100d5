/**
 * A standby's exchange with the witness for the election among several standbys (failover/decide.ts):
 *   - every monitor round it reports itself (positions, priority, eligibility; promoted: null) — `reportSelf`;
 *   - once promoted it keeps reporting, with the promotion time — `reportPromoted` (the guard loop);
 *   - before acting on a takeover decision it claims the promotion — `claimTakeover`: the witness grants the
 *     claim to one standby only, so two standbys that both decided to take over cannot both act;
 *   - it decides with itself plus every other standby that has a promotable target, taken from the witness's
 *     view when that standby's report is fresh (≤ witness.max_age_ms), else of unknown position —
 *     `electionInput`.
 * Reporting never fails the caller: errors are logged at warn (each distinct error once, then at debug).
 */
import type { Logger } from 'pino';
import type { Candidate, DecideInput } from '../failover/decide.ts';
import { type FetchedWitnessView, fetchWitnessView, reportCandidate } from '../failover/witness-client.ts';
import { describeChain } from '../core/errors.ts';
import { readDurableLsn } from '../journal/index.ts';
import type { LinkSecurity } from '../ship/tcp/index.ts';
import type { StandbyConfig } from '../config/config-sites.ts';
import { mirrorDir } from '../journal/index.ts';
import type { Config, ResolvedFailover } from '../config/config.ts';
import { targetAdapter } from '../config/engines.ts';
import { promotableTarget } from './failover-spec.ts';

/** This standby as a candidate: its mirror's last complete unit and its target's applied LSN. */
export async function selfCandidate(config: Config, s: StandbyConfig, f: ResolvedFailover): Promise<Candidate> {
  const target = promotableTarget(config, s.name);
  const received = await readDurableLsn(mirrorDir(config.source.name, s)).catch(() => null);
  const t = target ? await targetAdapter(target).readStored(target, config.source.name) : null;
  const applied = t?.stored?.state?.lsn ?? null;
  return {
    name: s.name,
    priority: f.election.priority[s.name] ?? 0,
    position: received === null || applied === null ? null : { received, applied },
    eligible: target !== undefined && !t?.error && (t?.stored?.hold ?? null) === null,
  };
}

/** The last report error logged per standby (so that a witness that is down is not logged every round). */
const lastFailure = new Map<string, string>();

/**
 * Sends `candidate` with `promoted` to the witness; true once stored. False without a witness, or on an error
 * (logged).
 */
export async function reportSelf(
  f: ResolvedFailover,
  tls: LinkSecurity,
  candidate: Candidate,
  promoted: string | null,
  log: Logger,
): Promise<boolean> {
  if (!f.witness) return false;
  const name = candidate.name;
  try {
    await reportCandidate(
      f.witness.address,
      { ...candidate, promoted },
      { tls, timeoutMs: f.monitor.probe_timeout_ms },
    );
  } catch (err) {
    const why = describeChain(err);
    if (lastFailure.get(name) !== why) log.warn({ err: why }, 'witness: reporting this standby failed');
    else log.debug({ err: why }, 'witness: reporting this standby failed (again)');
    lastFailure.set(name, why);
    return false;
  }
  if (lastFailure.delete(name)) log.info('witness: reporting this standby again');
  return true;
}

/**
 * A promoted standby's report (call it every round of the guard loop, with the site's TLS material read once):
 * its candidate with `promoted` = the promotion time (promotion.json `at`), so that no other standby takes over.
 * Never throws.
 */
export async function reportPromoted(
  config: Config,
  standby: StandbyConfig,
  promotedAt: string,
  tls: LinkSecurity,
  log: Logger,
): Promise<void> {
  const f = config.failover;
  if (!f?.witness) return;
  try {
    const self = await selfCandidate(config, standby, f);
    await reportSelf(f, tls, self, promotedAt, log);
  } catch (err) {
    log.warn({ err: describeChain(err) }, 'witness: reporting the promotion failed');
  }
}

/** The witness's view, or null without a witness or when it does not answer (logged). */
export async function witnessView(
  f: ResolvedFailover,
  tls: LinkSecurity,
  log: Logger,
): Promise<FetchedWitnessView | null> {
  if (!f.witness) return null;
  try {
    return await fetchWitnessView(f.witness.address, { tls, timeoutMs: f.monitor.probe_timeout_ms });
  } catch (err) {
    log.warn({ err: describeChain(err) }, 'witness: no view');
    return null;
  }
}

/**
 * Claims the promotion at the witness before acting on a takeover decision. Null when granted; otherwise why
 * not (another standby claimed it first, or the witness did not answer: then this standby does not act).
 */
export async function claimTakeover(
  f: ResolvedFailover,
  tls: LinkSecurity,
  self: Candidate,
  log: Logger,
): Promise<string | null> {
  if (!f.witness) return 'no witness to claim the promotion at';
  try {
    await reportCandidate(
      f.witness.address,
      { ...self, promoted: new Date().toISOString() },
      { tls, timeoutMs: f.monitor.probe_timeout_ms },
    );
    log.warn(`witness: ${self.name} claimed the promotion`);
    return null;
  } catch (err) {
    return `the witness did not grant the promotion: ${describeChain(err)}`;
  }
}

/**
 * The candidates to decide with: `self` and every other configured standby with a promotable target — as the
 * witness lists it when its report is at most witness.max_age_ms old, else with an unknown position (then
 * `unknown_standbys` decides: wait, or leave it out) — and another configured standby that reports a
 * promotion, however old its report.
 */
export function electionInput(
  config: Config,
  f: ResolvedFailover,
  self: Candidate,
  view: FetchedWitnessView | null,
): Pick<DecideInput, 'candidates' | 'promoted'> {
  const maxAge = f.witness?.max_age_ms ?? 5000;
  const listed = new Map((view?.candidates ?? []).map((c) => [c.name, c]));
  const candidates: Candidate[] = [self];
  let promoted: DecideInput['promoted'] = null;
  for (const { name } of config.standbys) {
    if (name === self.name) continue;
    const e = listed.get(name);
    if (e?.promoted && !promoted) promoted = { name, at: e.promoted };
    if (!promotableTarget(config, name)) continue;
    candidates.push(
      e && e.ageMs <= maxAge
        ? { name, priority: e.priority, position: e.position, eligible: e.eligible }
        : { name, priority: f.election.priority[name] ?? 0, position: null, eligible: true },
    );
  }
  return { candidates, promoted };
}

/** One monitor round's report: this standby's candidate, sent to the witness when there is one. Never rejects. */
export async function reportRound(
  config: Config,
  s: StandbyConfig,
  f: ResolvedFailover,
  tls: LinkSecurity,
  log: Logger,
): Promise<Candidate | null> {
  try {
    const self = await selfCandidate(config, s, f);
    await reportSelf(f, tls, self, null, log);
    return self;
  } catch (err) {
    log.warn({ err: describeChain(err) }, 'witness: reading this standby position failed');
    return null;
  }
}
