/**
 * The monitor spec (monitor.ts) of the configured probes, shared by the witness (witness.ts) and the standbys'
 * monitors (the standby's failover loop of `tidemark run`): the heartbeat, the ship link where there is one, one per TCP check.
 */
import { type CalendarConfig, compileCalendar } from './calendar.ts';
import type { MonitorSpec, ProbeSpec, ProbeThresholds } from './monitor.ts';

export const HEARTBEAT_PROBE = 'heartbeat';
export const LINK_PROBE = 'link';
export const tcpProbeName = (name: string): string => `tcp:${name}`;

/** failover.monitor (FailoverConfig) fits; the witness has no ship link and ignores `link`. */
export interface MonitorSettings extends ProbeThresholds {
  readonly suspect_interval_ms: number;
  readonly probe_timeout_ms: number;
  readonly overall: 'all' | 'any';
  readonly heartbeat: { readonly table: string; readonly critical: boolean };
  readonly link?: { readonly enabled: boolean; readonly critical: boolean };
  readonly tcp: readonly { readonly name: string; readonly address: string; readonly critical: boolean }[];
}

/** The spec; `opts.link`: this site watches the ship link too (a standby), when failover.monitor.link enables it. */
export function monitorSpecOf(m: MonitorSettings, calendar: CalendarConfig, opts: { link: boolean }): MonitorSpec {
  const probes: ProbeSpec[] = [{ name: HEARTBEAT_PROBE, kind: 'heartbeat', critical: m.heartbeat.critical }];
  if (opts.link && m.link?.enabled) probes.push({ name: LINK_PROBE, kind: 'link', critical: m.link.critical });
  for (const t of m.tcp) probes.push({ name: tcpProbeName(t.name), kind: 'tcp', critical: t.critical });
  return {
    probes,
    thresholds: {
      suspect_after: m.suspect_after,
      fail_after_ms: m.fail_after_ms,
      fail_after_count: m.fail_after_count,
      recover_after: m.recover_after,
    },
    overall: m.overall,
    suspect_interval_ms: m.suspect_interval_ms,
    calendar: compileCalendar(calendar, 'failover.calendar'),
  };
}
