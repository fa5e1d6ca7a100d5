/**
 * Config → the pieces the takeover monitor needs: the monitor spec (failover/monitor.ts) with the configured
 * probes, the database endpoints seen through the failover account, and the decide policy.
 */
import type { DecidePolicy } from '../failover/decide.ts';
import type { MonitorSpec } from '../failover/monitor.ts';
import { type FailoverDbSteps, failoverDbSteps } from '../failover/db-steps.ts';
import { monitorSpecOf } from '../failover/spec.ts';
import { defaultMarginMs } from '../failover/timeline.ts';
import { TidemarkError } from '../core/errors.ts';
import { withPassword } from '../core/secret.ts';
import type { Config, ResolvedFailover } from '../config/config.ts';

export function failoverOf(config: Config): ResolvedFailover {
  const f = config.failover;
  if (!f) throw new TidemarkError(`${config.file}: no failover section`, { code: 'CONFIG' });
  return f;
}

/** The probes a standby runs against the primary: the heartbeat write, the ship link, TCP checks. */
export function monitorSpec(f: ResolvedFailover, opts: { link: boolean }): MonitorSpec {
  return monitorSpecOf(f.monitor, f.calendar, opts);
}

/** A server's address with the failover account (its password non-enumerable). */
export function asFailoverAccount<E extends { readonly user: string }>(f: ResolvedFailover, ep: E): E {
  const { password: _p, ...rest } = ep as E & { password?: string };
  return withPassword({ ...rest, user: f.account.user } as unknown as E, f.account.password);
}

export function decidePolicy(f: ResolvedFailover): DecidePolicy {
  return {
    mode: f.mode,
    min_interval_ms: f.min_interval_ms,
    witness_max_age_ms: f.witness?.max_age_ms ?? 5000,
    agree_for_ms: f.election.agree_for_ms,
    unknown_standbys: f.election.unknown_standbys,
    retry: f.takeover_retry,
  };
}

/** failover.fence.margin_ms, or its default (failover/timeline.ts): the longest probe interval + timeout + 500 ms. */
export function fenceMarginMs(f: ResolvedFailover): number {
  if (f.fence.margin_ms !== undefined) return f.fence.margin_ms;
  const intervals = [f.calendar.default_interval_ms, ...f.calendar.windows.map((w) => w.interval_ms)];
  return defaultMarginMs({ maxProbeIntervalMs: Math.max(...intervals), probeTimeoutMs: f.monitor.probe_timeout_ms });
}

/** The target a standby promotes: the (first) target applied at that standby's site. */
export function promotableTarget(config: Config, standby: string): Config['targets'][number] | undefined {
  return config.targets.find((t) => t.site === standby);
}

/** The database steps (fence, read-only check, …) for the primary's engine, e.g. for its guard. */
export function primaryDbSteps(config: Config): FailoverDbSteps {
  const kind = (config.source as { kind?: string }).kind;
  return failoverDbSteps(kind, kind);
}
