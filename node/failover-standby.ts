/**
 * The takeover monitor of one standby site (`tidemark run --site <standby>` with a `failover` section).
 *
 * Every round (the monitor's interval: the calendar's, or suspect_interval_ms while anything is not healthy):
 * probe the primary (a heartbeat write through the failover account, the ship link's liveness, TCP checks),
 * feed the results to the monitor (failover/monitor.ts), log and alert every transition. In automatic mode,
 * once the primary is failed here, ask the witness for its view and let failover/decide.ts decide; a takeover
 * persists the history first (anti-flapping survives a crash), then runs the plan (failover-takeover.ts).
 * With a witness, every round also reports this standby's position to it, and the decision ranks every
 * standby by what the witness lists (failover-report.ts); a takeover first claims the promotion there.
 *
 * Once promoted (promotion.json), the loop keeps guarding: whenever the old primary is reachable and writable
 * again, it is fenced again (read_only, sessions killed) and an alert says so.
 */
import type { Logger } from 'pino';
import { decideAutomatic, EMPTY_HISTORY, historyAfterAttempt, historyRecovered } from '../failover/decide.ts';
import { sendAlert } from '../failover/hooks.ts';
import { formatTransition, Monitor, type MonitorEvent } from '../failover/monitor.ts';
import { formatTimeline } from '../failover/plan.ts';
import { tcpProbe } from '../failover/probes.ts';
import type { PrimaryProbe } from '../failover/db-steps.ts';
import { HEARTBEAT_PROBE, LINK_PROBE, tcpProbeName } from '../failover/spec.ts';
import { fenceDeadline, lastContactOf, retryDelayMs } from '../failover/timeline.ts';
import { collapseOverall } from '../failover/monitor.ts';
import { describeChain, isRetriable, sleep } from '../core/errors.ts';
import type { StandbyConfig } from '../config/config-sites.ts';
import type { Config, ResolvedFailover } from '../config/config.ts';
import {
  claimTakeover,
  electionInput,
  reportPromoted,
  reportRound,
  selfCandidate,
  witnessView,
} from './failover-report.ts';
import {
  asFailoverAccount,
  decidePolicy,
  failoverOf,
  fenceMarginMs,
  monitorSpec,
  primaryDbSteps,
} from './failover-spec.ts';
import { iso, serviceLine, witnessContactAt } from './failover-service.ts';
import { readHistory, readPromotion, switchoverRunning, writeHistory, writeMonitorFile } from './failover-state.ts';
import { alertHooks, takeOver } from './failover-takeover.ts';
import { LINEAGE_TABLE } from '../failover/lineage.ts';
import { promotedRoles, promoteJournal, writePromotedLineage } from './promoted.ts';
import type { ReceiverWatch } from './receive-loop.ts';
import { linkSecurity } from './ship-transports.ts';

export interface StandbyMonitorOptions {
  config: Config;
  standby: StandbyConfig;
  receiver: ReceiverWatch;
  stopReceiver(): Promise<void>;
  resumeReceiver?(): void;
  log: Logger;
  signal: AbortSignal;
}

async function probeRound(
  f: ResolvedFailover,
  o: StandbyMonitorOptions,
  names: readonly string[],
  heartbeat: PrimaryProbe,
) {
  const at = Date.now();
  const timeoutMs = f.monitor.probe_timeout_ms;
  const results = await Promise.all(
    names.map(async (name): Promise<MonitorEvent> => {
      if (name === HEARTBEAT_PROBE) {
        const r = await heartbeat.probe(o.signal);
        return r.ok
          ? { type: 'success', probe: name, at, latencyMs: r.latencyMs }
          : { type: 'failure', probe: name, at, error: r.error };
      }
      if (name === LINK_PROBE) {
        const up = o.receiver.linkUp();
        return up
          ? { type: 'success', probe: name, at }
          : { type: 'failure', probe: name, at, error: up === null ? 'no receiver running' : 'no live session' };
      }
      const tcp = f.monitor.tcp.find((t) => tcpProbeName(t.name) === name);
      const r = await tcpProbe(tcp?.address ?? '', timeoutMs);
      return r.ok
        ? { type: 'success', probe: name, at, latencyMs: r.latencyMs }
        : { type: 'failure', probe: name, at, error: r.error };
    }),
  );
  return results;
}

export async function standbyMonitorLoop(o: StandbyMonitorOptions): Promise<void> {
  const { config, standby: s, signal } = o;
  const f = failoverOf(config);
  const log = o.log.child({ component: 'failover', standby: s.name });
  const hooks = alertHooks(f);
  const base = s.journal_dir;
  if (await readPromotion(base)) return promotedLoop(o, f, log);
  const spec = monitorSpec(f, { link: true });
  const monitor = new Monitor(spec, Date.now());
  const names = spec.probes.map((p) => p.name);
  let lastDecision: string | null = null;
  let alerts: Promise<void> = Promise.resolve();
  // Attempts that stopped before promotion are on record (history.json): cleared once the primary is healthy.
  let stoppedPending = (await readHistory(base).catch(() => EMPTY_HISTORY)).stopped != null;
  // Read once: the site's certificate and key do not change while this runs.
  const tls = f.witness ? await linkSecurity(config, s.name, log) : 'plaintext';
  const heartbeat = primaryDbSteps(config).heartbeat(asFailoverAccount(f, config.source), {
    table: f.monitor.heartbeat.table,
    writer: s.name,
    timeoutMs: f.monitor.probe_timeout_ms,
  });
  log.info({ mode: f.mode, probes: names }, `takeover monitor of ${s.name} started (${f.mode})`);
  try {
    while (!signal.aborted) {
      // A manual `tidemark failover` may have promoted this standby meanwhile.
      if (await readPromotion(base)) return await promotedLoop(o, f, log);
      // Reported while the probes run: the other standbys' monitors rank this one by it.
      const reporting = f.witness ? reportRound(config, s, f, tls, log) : Promise.resolve(null);
      // Once the primary is not healthy here, the witness's view is asked for while the probes run too: when it
      // already says failed, the decision takes no further round trip once this standby's own probes fail.
      const early = f.mode === 'automatic' && monitor.state.overall !== 'healthy' ? witnessView(f, tls, log) : null;
      const events = await probeRound(f, o, names, heartbeat);
      const reported = await reporting;
      for (const t of collapseOverall(events.flatMap((ev) => monitor.apply(ev)))) {
        const line = formatTransition(t);
        (t.to === 'healthy' ? log.info : log.warn).call(log, { transition: t }, `primary ${line}`);
        // In order, in the background: an alert command must not delay the next probe or the decision.
        alerts = alerts
          .then(() => sendAlert(hooks, { kind: 'transition', site: s.name, ...t }, log))
          .then(
            () => undefined,
            () => undefined,
          );
      }
      const now = Date.now();
      monitor.apply({ type: 'tick', at: now });
      let decision: string | null = null;
      let service: string | null = null;
      if (monitor.state.overall === 'healthy' && stoppedPending) {
        // The primary is back: the stopped attempts are over (a later loss starts counting again).
        const h = await readHistory(base);
        if (h.stopped) await writeHistory(base, historyRecovered(h));
        stoppedPending = false;
      }
      const switching = await switchoverRunning(base, f.timeouts.drain_ms + f.timeouts.promote_ms);
      if (switching) decision = 'a switchover is running here: no automatic decision';
      if (monitor.state.overall === 'failed' && !switching) {
        let history = await readHistory(base);
        const ahead = await early;
        const view = ahead?.state === 'failed' ? ahead : await witnessView(f, tls, log);
        const self = reported ?? (await selfCandidate(config, s, f));
        const d = decideAutomatic({
          now,
          self: s.name,
          local: { state: monitor.state.overall, since: monitor.state.since },
          witness: view,
          ...electionInput(config, f, self, view),
          history,
          policy: decidePolicy(f),
        });
        decision = d.reason;
        service = serviceLine(config.site, monitor.state.since, view, d, history);
        // Only one standby gets the witness's grant: two that both decided to take over do not both act.
        const refused = d.action === 'takeover' ? await claimTakeover(f, tls, self, log) : null;
        if (refused) decision = `${d.reason}; not acting: ${refused}`;
        if (decision !== lastDecision) log.warn({ action: d.action }, decision);
        if (d.action === 'takeover' && !refused) {
          await writeHistory(base, d.history);
          const deadline = fenceDeadline({
            now,
            failAfterMs: f.monitor.fail_after_ms,
            marginMs: fenceMarginMs(f),
            standbyContactAt: lastContactOf(monitor.state.probes),
            witnessContactAt: view ? witnessContactAt(view) : null,
          });
          const timeline =
            `last contact with the primary ${iso(deadline.lastContactAt)} (${deadline.from}); its guard fences it ` +
            `by ${iso(deadline.lastContactAt + f.monitor.fail_after_ms)}; fence confirmation expected from ${iso(deadline.at)}`;
          log.warn({ fenceDeadline: iso(deadline.at) }, `fence timeline: ${timeline}`);
          const attempt = (history.stopped?.count ?? 0) + 1;
          const progress = (line: string) =>
            writeMonitorFile(base, 'monitor.json', {
              site: s.name,
              role: 'standby',
              updatedAt: new Date().toISOString(),
              monitor: monitor.state,
              decision: `${d.reason}; attempt ${attempt}: ${line}`,
              service: serviceLine(config.site, monitor.state.since, view, d, history, `attempt ${attempt}: ${line}`),
              pid: process.pid,
            }).catch(() => undefined);
          await progress(`fencing (${timeline})`);
          const r = await takeOver({
            ...o,
            mode: 'automatic',
            reason: d.reason,
            force: false,
            log,
            fenceDeadline: deadline,
            onFenceTry: (n, detail) => void progress(`fence not confirmed yet (try ${n}): ${detail}`),
          });
          history = historyAfterAttempt(history, {
            winner: s.name,
            startedAt: now,
            endedAt: r.endedAt,
            reachedPromotion: r.reachedPromotion,
            missing: r.missing ?? r.reason,
          });
          await writeHistory(base, history);
          const lines = formatTimeline(r.timeline, r.startedAt).join('\n');
          const level = r.position ? log.warn : log.error;
          level.call(log, { status: r.status }, `takeover ${r.status}: ${r.reason}\n${lines}`);
          if (r.position) return await promotedLoop(o, f, log);
          if (!r.reachedPromotion && history.stopped) {
            stoppedPending = true;
            const next = history.stopped.lastAt + retryDelayMs(history.stopped.count, f.takeover_retry);
            const summary =
              `takeover attempt ${history.stopped.count} by ${s.name} stopped before promotion: ${history.stopped.missing}; ` +
              `retried from ${iso(next)} while the primary stays lost and the witness agrees (the anti-flapping budget is untouched)`;
            log.error({ attempt: history.stopped.count }, summary);
            await sendAlert(
              hooks,
              {
                kind: 'takeover-retry',
                site: s.name,
                at: r.endedAt,
                summary,
                attempt: history.stopped.count,
                missing: history.stopped.missing,
                retryAt: iso(next),
              },
              log,
            );
            decision = summary;
          }
          service = serviceLine(config.site, monitor.state.since, view, d, history);
        }
      }
      lastDecision = decision;
      await writeMonitorFile(base, 'monitor.json', {
        site: s.name,
        role: 'standby',
        updatedAt: new Date().toISOString(),
        monitor: monitor.state,
        decision,
        service,
        pid: process.pid,
      }).catch(() => undefined);
      await sleep(monitor.nextIntervalMs(Date.now()), signal);
    }
  } finally {
    await alerts;
    await heartbeat.close();
  }
}

/**
 * After promotion: nothing more is received from the old primary; the mirror becomes the new primary's journal
 * and this site runs the primary's roles (node/promoted.ts); and the old primary is fenced again whenever it
 * shows up writable.
 */
async function promotedLoop(o: StandbyMonitorOptions, f: ResolvedFailover, log: Logger): Promise<void> {
  await o.stopReceiver();
  // Guarding against the old primary comes first and never stops: the side tasks (the journal, the lineage
  // row, capture and shipping, reports) log, alert and retry on failure; none of them ends this process.
  await Promise.all([guardOldPrimary(o, f, log), promotedSideTasks(o, f, log)]);
}

const SIDE_RETRY_MS = 10_000;

async function sideFailure(o: StandbyMonitorOptions, f: ResolvedFailover, log: Logger, what: string, err: unknown) {
  const summary = `${o.standby.name} (promoted): ${what} failed: ${describeChain(err)}; retrying in ${SIDE_RETRY_MS / 1000} s (guarding against the old primary goes on)`;
  log.error({ err: describeChain(err) }, summary);
  await sendAlert(alertHooks(f), { kind: 'notice', site: o.standby.name, at: new Date().toISOString(), summary }, log);
}

async function promotedSideTasks(o: StandbyMonitorOptions, f: ResolvedFailover, log: Logger): Promise<void> {
  const { config, standby: s, signal } = o;
  let promoted: Awaited<ReturnType<typeof promoteJournal>> | null = null;
  for (let attempt = 1; !signal.aborted && !promoted; attempt++) {
    try {
      promoted = await promoteJournal(config, s, log);
    } catch (err) {
      if (isRetriable(err) && attempt < 5) {
        log.warn({ err: describeChain(err), attempt }, 'promoting the journal failed: retrying in 2 s');
        await sleep(2000, signal);
      } else {
        await sideFailure(o, f, log, 'promoting the journal', err);
        await sleep(SIDE_RETRY_MS, signal);
      }
    }
  }
  if (!promoted || signal.aborted) return;
  const lineage = promoted.lineage;
  const lineageTask = (async () => {
    for (let err = promoted.lineageError; err && !signal.aborted; ) {
      await sideFailure(o, f, log, `writing ${LINEAGE_TABLE} on the new primary`, err);
      await sleep(SIDE_RETRY_MS, signal);
      if (signal.aborted) return;
      err = await writePromotedLineage(config, s, lineage).then(
        () => null,
        (e: unknown) => e ?? new Error('lineage write failed'),
      );
      if (!err) log.warn(`${LINEAGE_TABLE} written on the new primary`);
    }
  })();
  const roles = (async () => {
    while (!signal.aborted) {
      try {
        await promotedRoles(config, s, o.log, signal);
        return;
      } catch (err) {
        if (signal.aborted) return;
        await sideFailure(o, f, log, 'capture or shipping from the new primary', err);
        await sleep(SIDE_RETRY_MS, signal);
      }
    }
  })();
  await Promise.all([lineageTask, roles]);
}

async function guardOldPrimary(o: StandbyMonitorOptions, f: ResolvedFailover, log: Logger): Promise<void> {
  const { config, standby: s, signal } = o;
  const old = asFailoverAccount(f, config.source);
  const p = await readPromotion(s.journal_dir);
  log.warn(`${s.name} is the primary since ${p?.at} (promotion.json): guarding against the old primary`);
  const every = f.monitor.suspect_interval_ms;
  // Read once: the site's certificate and key do not change while this runs (without them: no reports).
  const tls = f.witness
    ? await linkSecurity(config, s.name, log).catch((err: unknown) => {
        log.warn({ err: describeChain(err) }, 'witness: cannot report the promotion (TLS material)');
        return null;
      })
    : null;
  while (!signal.aborted) {
    try {
      await guardRound();
    } catch (err) {
      log.error({ err: describeChain(err) }, 'guarding against the old primary: a round failed; next round as usual');
    }
    await sleep(every, signal);
  }

  async function guardRound(): Promise<void> {
    // The other standbys learn from the witness that this one is the primary (they never take over again).
    if (p && tls) await reportPromoted(config, s, p.at, tls, log);
    const writable = await primaryDbSteps(config)
      .isWritable(old, f.monitor.probe_timeout_ms)
      .catch(() => null);
    if (writable) {
      log.error(`the old primary ${config.source.host}:${config.source.port} is back and writable: fencing it`);
      const r = await primaryDbSteps(config).fence(old, { killSessions: true, timeoutMs: f.fence.timeout_ms, log });
      await sendAlert(alertHooks(f), { kind: 'fence', site: s.name, at: new Date().toISOString(), ...r }, log);
      (r.confirmed ? log.warn : log.error).call(log, { confirmed: r.confirmed }, `old primary fenced: ${r.detail}`);
    }
    await writeMonitorFile(s.journal_dir, 'monitor.json', {
      site: s.name,
      role: 'promoted',
      updatedAt: new Date().toISOString(),
      monitor: null,
      decision: `promoted at ${p?.at}; old primary ${writable === null ? 'unreachable' : writable ? 'was writable: fenced' : 'read-only'}`,
      pid: process.pid,
    }).catch(() => undefined);
  }
}
