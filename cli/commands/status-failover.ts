/**
 * The takeover part of `tidemark status` (with a failover section): per site whose files are on this machine,
 * its role, the monitor's state per probe as the running process last wrote it (node/failover-state.ts), and
 * the last takeover with its timeline. A state older than STALE_MS says that no monitor is running there.
 */
import { formatStoredPosition } from '../../failover/db-steps.ts';
import { existsSync } from 'node:fs';
import { formatTimeline } from '../../failover/plan.ts';
import type { Config } from '../../config/config.ts';
import type { TakeoverHistory } from '../../failover/decide.ts';
import {
  type MonitorFile,
  type PromotionRecord,
  readHistory,
  readMonitorFile,
  readPromotion,
} from '../../node/failover-state.ts';

const STALE_MS = 10_000;

export interface SiteFailoverStatus {
  readonly site: string;
  /** primary | standby | promoted (this standby took over) */
  readonly role: string;
  readonly running: boolean;
  readonly updated_at: string | null;
  readonly overall: string | null;
  readonly since: string | null;
  readonly probes: readonly {
    name: string;
    state: string;
    since: string;
    last_error: string | null;
    latency_ms: number | null;
  }[];
  readonly decision: string | null;
  /**
   * Plainly, when the service has no writable primary as this site sees it, and why (issue #17); null when it
   * has one (or this site's process is not running: then nothing current is known here).
   */
  readonly service: string | null;
  /** Automatic attempts that stopped before promotion (they do not count for anti-flapping), at a standby. */
  readonly takeover_attempts: { stopped: number; last_at: string | null; missing: string | null } | null;
  readonly last_takeover: PromotionRecord | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

function fromFile(
  site: string,
  role: string,
  m: MonitorFile | null,
  p: PromotionRecord | null,
  h: TakeoverHistory | null = null,
): SiteFailoverStatus {
  const st = m?.monitor ?? null;
  const running = m !== null && Date.now() - Date.parse(m.updatedAt) < STALE_MS;
  return {
    site,
    role: p ? 'promoted' : role,
    running,
    updated_at: m?.updatedAt ?? null,
    overall: st?.overall ?? null,
    since: st ? iso(st.since) : null,
    probes: (st?.probes ?? []).map((x) => ({
      name: x.name,
      state: x.state,
      since: iso(x.since),
      last_error: x.lastError,
      latency_ms: x.lastLatencyMs,
    })),
    decision: m?.decision ?? null,
    service: p || !running ? null : (m?.service ?? null),
    takeover_attempts: h?.stopped
      ? { stopped: h.stopped.count, last_at: iso(h.stopped.lastAt), missing: h.stopped.missing }
      : null,
    last_takeover: p,
  };
}

export async function readFailoverStatus(config: Config): Promise<SiteFailoverStatus[] | null> {
  if (!config.failover) return null;
  const out: SiteFailoverStatus[] = [];
  if (existsSync(config.journal.dir)) {
    out.push(fromFile(config.site, 'primary', await readMonitorFile(config.journal.dir, 'guard.json'), null));
  }
  for (const s of config.standbys) {
    if (!existsSync(s.journal_dir)) continue;
    const [m, p, h] = await Promise.all([
      readMonitorFile(s.journal_dir, 'monitor.json'),
      readPromotion(s.journal_dir),
      readHistory(s.journal_dir).catch(() => null),
    ]);
    out.push(fromFile(s.name, 'standby', m, p, h));
  }
  return out;
}

export function failoverLines(sites: readonly SiteFailoverStatus[] | null): string[] {
  if (sites === null) return [];
  const lines: string[] = [];
  for (const s of sites) {
    lines.push(`failover ${s.site}: ${s.role}${s.running ? '' : ' (no monitor running here)'}`);
    if (s.service) lines.push(`  SERVICE   ${s.service}`);
    if (s.overall) lines.push(`  primary   ${s.overall} since ${s.since}`);
    for (const p of s.probes) {
      const extra = p.last_error ? `: ${p.last_error}` : p.latency_ms !== null ? ` (${p.latency_ms} ms)` : '';
      lines.push(`  probe     ${p.name} ${p.state} since ${p.since}${extra}`);
    }
    if (s.decision) lines.push(`  decision  ${s.decision}`);
    const a = s.takeover_attempts;
    if (a)
      lines.push(
        `  attempts  ${a.stopped} stopped before promotion (not counted for anti-flapping); last at ${a.last_at}: ${a.missing}`,
      );
    const t = s.last_takeover;
    if (t) {
      const pos = t.position ? ` at ${formatStoredPosition(t.position)}` : '';
      lines.push(`  takeover  ${t.mode} at ${t.at} from ${t.oldPrimary}: ${t.status}${pos}`);
      const j = t.journal;
      lines.push(
        j
          ? `  journal   ${j.id}: continues ${j.branchOf} after LSN ${j.branchLsn}; captured from the promotion on (LSN ${j.markerLsn})`
          : "  journal   not promoted yet (the site's tidemark run does it: it captures and ships from then on)",
      );
      const origin = t.timeline.find((e) => e.startedAt !== null)?.startedAt ?? Date.parse(t.at);
      for (const l of formatTimeline(t.timeline, origin)) lines.push(`    ${l}`);
    }
  }
  return lines;
}
