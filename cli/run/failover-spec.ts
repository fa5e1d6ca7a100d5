/**
 * Config → the pieces the takeover monitor needs: the monitor spec (failover/monitor.ts) with the configured
 * probes, the database endpoints seen through the failover account, and the decide policy.
 */
import type { MysqlEndpoint } from '../../apply/mysql/session.ts';
import { compileCalendar } from '../../failover/calendar.ts';
import type { DecidePolicy } from '../../failover/decide.ts';
import type { MonitorSpec, ProbeSpec } from '../../failover/monitor.ts';
import { TidemarkError } from '../../record/errors.ts';
import { type Config, type ResolvedFailover, withPassword } from '../config.ts';

export function failoverOf(config: Config): ResolvedFailover {
  const f = config.failover;
  if (!f) throw new TidemarkError(`${config.file}: no failover section`, { code: 'CONFIG' });
  return f;
}

/** The probes a site runs against the primary: the heartbeat write, the ship link (standbys), TCP checks. */
export function monitorSpec(f: ResolvedFailover, opts: { link: boolean }): MonitorSpec {
  const m = f.monitor;
  const probes: ProbeSpec[] = [{ name: 'heartbeat', kind: 'heartbeat', critical: m.heartbeat.critical }];
  if (opts.link && m.link.enabled) probes.push({ name: 'link', kind: 'link', critical: m.link.critical });
  for (const t of m.tcp) probes.push({ name: `tcp:${t.name}`, kind: 'tcp', critical: t.critical });
  return {
    probes,
    thresholds: {
      suspect_after: m.suspect_after,
      fail_after_count: m.fail_after_count,
      fail_after_ms: m.fail_after_ms,
      recover_after: m.recover_after,
    },
    overall: m.overall,
    suspect_interval_ms: m.suspect_interval_ms,
    calendar: compileCalendar(f.calendar, 'failover.calendar'),
  };
}

/** A server's address with the failover account (its password non-enumerable). */
export function asFailoverAccount(f: ResolvedFailover, ep: MysqlEndpoint): MysqlEndpoint {
  const { password: _p, ...rest } = ep as MysqlEndpoint & { password?: string };
  return withPassword({ ...rest, user: f.account.user }, f.account.password);
}

export function decidePolicy(f: ResolvedFailover): DecidePolicy {
  return {
    mode: f.mode,
    min_interval_ms: f.min_interval_ms,
    witness_max_age_ms: f.witness?.max_age_ms ?? 5000,
    agree_for_ms: f.election.agree_for_ms,
    unknown_standbys: f.election.unknown_standbys,
  };
}

/** The target a standby promotes: the (first) target applied at that standby's site. */
export function promotableTarget(config: Config, standby: string): Config['targets'][number] | undefined {
  return config.targets.find((t) => t.site === standby);
}
