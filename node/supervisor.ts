/**
 * The `tidemark run` process (its supervisor): capture from the source into the journal and apply the journal to the targets until stopped.
 * Capture and apply can also run as separate processes sharing the journal directory (`--only`).
 *
 * Sites (ship/SITES.md): `--site NAME` runs the roles of one site. The primary's site (config `site`): capture,
 * the journal, one shipper per standby, and the targets of that site. A standby's site: its receiver writing the
 * mirror journal, and the targets of that site, applied from the mirror. Without `--site`: every role of every
 * site in this one process (the demo). `--only capture` keeps capture and the shippers; `--only apply` the
 * appliers and the receivers that feed them.
 *
 * Source and targets are reached through the engine adapters their `kind` names (engine/, config/engines.ts).
 * Before the loops start, a preflight connects once to every server this process needs, so a wrong host or
 * password fails at once with one clear line instead of retrying in the background. After that, retriable
 * failures are retried for as long as the process runs (and logged). A target that fails non-retriably does not
 * stop the process: capture, shipping and the other targets go on, the target is marked failed (log, status,
 * metrics) and retried with backoff (node/apply-loop.ts) — even when every target here has failed, the process
 * stays up, so that a fix on the replica or `tidemark skip` lets it continue without a restart. A non-retriable
 * failure of any other part (capture, a shipper, a receiver) stops the process, as before. Scheduled backups
 * (node/backup-loop.ts) run at the primary's site beside capture; a failed backup run is logged, never fatal.
 */
import type { Config } from '../config/config.ts';
import { sourceAdapter, targetAdapter } from '../config/engines.ts';
import { journalDirOf } from '../journal/index.ts';
import { applyLoop } from './apply-loop.ts';
import { captureLoop } from './capture-loop.ts';
import { indexEnabled, indexLoop } from './index-loop.ts';
import { checkCaptureLock, lockAppliers, releaseAll } from './run-locks.ts';
import type { ServeConfig } from './backup-serve.ts';
import { CapGate } from './ship-cap.ts';
import type { Logger } from 'pino';

export type RunPart = 'capture' | 'apply';

export interface NodeOptions {
  readonly config: Config;
  readonly log: Logger;
  /** Aborted when the process is asked to stop. */
  readonly signal: AbortSignal;
  /** Run only one half of the pipeline; undefined runs both. */
  readonly only?: RunPart | undefined;
  /**
   * Apply only to these targets (names from config.targets, already checked to exist by the command line);
   * undefined means every target. Never set together with only === 'capture'.
   */
  readonly targets?: readonly string[] | undefined;
  /** Take a new baseline before streaming (after the source purged binlogs the journal still needed). */
  readonly rebaseline?: boolean | undefined;
  /** Run the roles of this site only (already checked to exist by the command line); undefined: every site. */
  readonly site?: string | undefined;
}

/** Runs until `signal` aborts (returns 0 after a clean stop) or a non-retriable error is thrown. */
export async function runNode(o: NodeOptions): Promise<number> {
  const { config, log } = o;
  const atSite = (site: string) => o.site === undefined || o.site === site;
  const primary = atSite(config.site);
  const capture = primary && o.only !== 'apply';
  const targets =
    o.only === 'capture'
      ? []
      : config.targets.filter((t) => atSite(t.site ?? config.site) && (!o.targets || o.targets.includes(t.name)));
  const standbys = capture ? config.standbys : [];
  // A standby's receiver runs at its site (all of them without --site), unless only capture runs here.
  const receivers = o.only === 'capture' ? [] : config.standbys.filter((s) => atSite(s.name));
  // A second run is refused here, naming the pid, before it connects anywhere or opens the metrics port.
  if (capture) await checkCaptureLock(config.journal.dir);
  const applyLocks = await lockAppliers(config, targets, log);
  try {
    const serves = o.only === 'capture' ? [] : (config.backup?.serve ?? []).filter((v) => atSite(v.site));
    return await runLocked(o, { capture, targets, standbys, receivers, primary, serves });
  } finally {
    await releaseAll(applyLocks);
  }
}

async function runLocked(
  o: NodeOptions,
  roles: {
    capture: boolean;
    targets: Config['targets'][number][];
    standbys: Config['standbys'];
    receivers: Config['standbys'];
    primary: boolean;
    serves: readonly ServeConfig[];
  },
): Promise<number> {
  const { config, log } = o;
  const { capture, targets, standbys, receivers, primary, serves } = roles;
  // The engines' preflights (engine/): one connection each, so a wrong host or password fails here, clearly.
  if (capture) await sourceAdapter(config.source).preflight(config.source);
  for (const t of targets) await targetAdapter(t).preflight(t);

  // One failing part stops the others: `inner` aborts on the stop signal or on the first fatal error.
  const inner = new AbortController();
  const stop = () => inner.abort();
  o.signal.addEventListener('abort', stop, { once: true });
  if (o.signal.aborted) stop(); // aborted during the preflights: an abort listener added now would never fire
  // The metrics endpoint's HTTP server (fastify) loads only when metrics: is configured.
  const metrics = config.metrics ? await (await import('./metrics.ts')).startMetrics(config.metrics, log) : undefined;
  // The backup modules (~50, with their stores) load only when `backup:` is configured; before any part starts, so
  // no part's failure waits on an import.
  const backupHere = primary && o.only !== 'apply' && config.backup !== undefined;
  const backup = serves.length > 0 || backupHere ? await backupParts() : null;
  // Likewise the shipping (~25 modules with the transports) and failover (~40, with both engines' clients) roles.
  const ship = standbys.length > 0 || receivers.length > 0 ? await shipParts() : null;
  const failover = config.failover ? await failoverParts() : null;
  const gate = new CapGate();
  const parts: Promise<void>[] = [];
  if (capture) {
    parts.push(captureLoop(config, log, inner.signal, { rebaseline: o.rebaseline === true, gate }));
  }
  for (const s of standbys) parts.push(ship!.shipLoop(config, s, log, inner.signal, gate, metrics?.registry));
  // A takeover stops the receiver (nothing more from the old primary), and starts it again if it did not promote.
  for (const s of receivers) {
    const watch = new ship!.ReceiverWatch();
    // A promoted standby receives nothing more from the old primary: it is the primary (node/promoted.ts).
    const promoted = failover !== null && (await failover.readPromotion(s.journal_dir)) !== null;
    const recv = promoted
      ? { done: Promise.resolve(), stop: async () => undefined, resume: () => undefined }
      : ship!.controlledReceiveLoop(config, s, log, inner.signal, watch);
    parts.push(recv.done);
    if (!failover?.promotableTarget(config, s.name)) continue;
    parts.push(
      failover.standbyMonitorLoop({
        config,
        standby: s,
        receiver: watch,
        stopReceiver: recv.stop,
        resumeReceiver: recv.resume,
        log,
        signal: inner.signal,
      }),
    );
  }
  if (failover && capture) parts.push(failover.primaryGuardLoop(config, log, inner.signal));
  for (const v of serves) parts.push(backup!.storeServeLoop(config, v, log, inner.signal));
  // Scheduled backups and copies run where `source:` is: the primary's site, beside its capture (backup-loop.ts).
  if (backupHere) {
    parts.push(backup!.backupLoop(config, log, inner.signal, metrics?.registry));
    parts.push(backup!.backupLogsLoop(config, log, inner.signal, metrics?.registry)); // backup.logs archivers
  }
  for (const t of targets)
    parts.push(applyLoop(config, t, journalDirOf(config, t), log, inner.signal, metrics?.registry));
  // The rollback index follows each journal this process applies from (and the primary's, where capture runs).
  if (indexEnabled(config)) {
    const dirs = new Set(targets.map((t) => journalDirOf(config, t)));
    if (primary && o.only !== 'apply') dirs.add(config.journal.dir);
    for (const d of dirs) parts.push(indexLoop(d, log, inner.signal));
  }
  log.info(
    {
      source: config.source.name,
      site: o.site ?? 'all',
      targets: targets.map((t) => t.name),
      standbys: standbys.map((s) => s.name),
      receivers: receivers.map((s) => s.name),
      only: o.only ?? 'capture+apply',
    },
    'tidemark running',
  );
  let firstError: unknown;
  await Promise.all(
    parts.map((p) =>
      p.catch((err) => {
        firstError ??= err;
        inner.abort();
      }),
    ),
  );
  o.signal.removeEventListener('abort', stop);
  await metrics?.close();
  if (firstError !== undefined) throw firstError;
  log.info('tidemark stopped');
  return 0;
}

async function backupParts() {
  const [serve, loop, logs] = await Promise.all([
    import('./backup-serve.ts'),
    import('./backup-loop.ts'),
    import('./backup-logs-loop.ts'),
  ]);
  return { storeServeLoop: serve.storeServeLoop, backupLoop: loop.backupLoop, backupLogsLoop: logs.backupLogsLoop };
}

async function shipParts() {
  const [loop, receive] = await Promise.all([import('./ship-loop.ts'), import('./receive-loop.ts')]);
  return {
    shipLoop: loop.shipLoop,
    controlledReceiveLoop: receive.controlledReceiveLoop,
    ReceiverWatch: receive.ReceiverWatch,
  };
}

async function failoverParts() {
  const [primary, spec, state, standby] = await Promise.all([
    import('./failover-primary.ts'),
    import('./failover-spec.ts'),
    import('./failover-state.ts'),
    import('./failover-standby.ts'),
  ]);
  return {
    primaryGuardLoop: primary.primaryGuardLoop,
    promotableTarget: spec.promotableTarget,
    readPromotion: state.readPromotion,
    standbyMonitorLoop: standby.standbyMonitorLoop,
  };
}
