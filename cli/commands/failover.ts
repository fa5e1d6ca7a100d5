/**
 * `tidemark failover -c FILE --to STANDBY [--force]`: a manual takeover by one standby, run at that standby's
 * site (it needs the standby's mirror journal and, with a VIP, its network interface). Refused without --force
 * when the primary still answers (that is a switchover), when the standby cannot be promoted or another standby
 * received more (failover/decide.ts decideManual; the other standbys' positions come from the witness, when one is
 * configured), or when the witness says another standby was promoted already. Then the takeover plan runs here (failover-takeover.ts):
 * fence, drain (the standby's `tidemark run --site` process applies what it received), promote, VIP, alert;
 * the timeline is printed. A running standby monitor sees promotion.json and switches to guarding.
 */
import { failoverDbSteps, formatStoredPosition, storePromotionPosition } from '../../failover/db-steps.ts';
import { decideManual } from '../../failover/decide.ts';
import { formatTimeline } from '../../failover/plan.ts';
import { heartbeatProbe } from '../../failover/probes.ts';
import { TidemarkError } from '../../core/errors.ts';
import { asFailoverAccount, failoverOf, promotableTarget } from '../../node/failover-spec.ts';
import { electionInput, selfCandidate, witnessView } from '../../node/failover-report.ts';
import { linkSecurity } from '../../node/ship-transports.ts';
import { readHistory, writeHistory } from '../../node/failover-state.ts';
import { standbyToPromote, takeOver } from '../../node/failover-takeover.ts';
import type { CommandContext } from './context.ts';

export interface FailoverOptions extends CommandContext {
  /** A configured standby (checked by cli/main.ts). */
  readonly to: string;
  readonly force: boolean;
}

export async function failoverCommand(o: FailoverOptions): Promise<number> {
  const { config, log } = o;
  const f = failoverOf(config);
  const s = await standbyToPromote(config, o.to);
  const db = failoverDbSteps((config.source as { kind?: string }).kind, promotableTarget(config, s.name)?.kind);
  // MySQL: the monitor's heartbeat write; PostgreSQL (no heartbeat table yet): the primary takes writes by default.
  const probe =
    db.engine === 'mysql'
      ? await heartbeatProbe(asFailoverAccount(f, config.source), {
          table: f.monitor.heartbeat.table,
          writer: s.name,
          timeoutMs: f.monitor.probe_timeout_ms,
        })
      : {
          ok:
            (await db.isWritable(asFailoverAccount(f, config.source), f.monitor.probe_timeout_ms).catch(() => null)) ===
            true,
        };
  const history = await readHistory(s.journal_dir);
  const self = await selfCandidate(config, s, f);
  // With a witness, the other standbys as they last reported there (a more advanced one refuses this without
  // --force; one that reports a promotion already is the primary).
  let election: ReturnType<typeof electionInput> = { candidates: [self], promoted: null };
  if (f.witness) {
    const tls = await linkSecurity(config, s.name, log);
    election = electionInput(config, f, self, await witnessView(f, tls, log));
  }
  if (election.promoted && !o.force) {
    throw new TidemarkError(
      `${election.promoted.name} was promoted at ${election.promoted.at} (the witness says): it is the primary; ` +
        '--force to promote this standby anyway',
      { code: 'FAILOVER_REFUSED' },
    );
  }
  const d = decideManual({
    now: Date.now(),
    to: s.name,
    force: o.force,
    local: { state: probe.ok ? 'healthy' : 'failed' },
    candidates: election.candidates,
    history,
  });
  if (d.action === 'refuse') throw new TidemarkError(d.reason, { code: 'FAILOVER_REFUSED' });
  await writeHistory(s.journal_dir, d.history);
  o.stdout.write(`${d.reason}\n`);
  const r = await takeOver({
    config,
    standby: s,
    mode: 'manual',
    reason: d.reason,
    force: o.force,
    log,
    stopReceiver: async () => undefined,
  });
  o.stdout.write(`takeover ${r.status}: ${r.reason}\n${formatTimeline(r.timeline, r.startedAt).join('\n')}\n`);
  if (r.position) {
    o.stdout.write(`${s.name} is the primary now, at ${formatStoredPosition(storePromotionPosition(r.position))}\n`);
  }
  return r.position ? 0 : 1;
}
