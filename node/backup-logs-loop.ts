/**
 * The binlog archivers inside `tidemark run` (issue #13, log backups): one per `backup.logs` job, at the primary's
 * site beside capture (the same process as the backup scheduler, node/backup-loop.ts), each holding its job's lock
 * (`<catalog_dir>/<job>-logs.lock`, the one `tidemark backup logs JOB` takes). The archiver reconnects by itself;
 * when it stops on an error it is started again after RETRY_MS.
 *
 * A gap (a purged binlog, GTIDs that do not continue the archive: BACKUP_LOG_GAP) is an alarm and forces a full:
 *   1. an error-level line `alarm: log-gap`, `needsFull: true`, naming the log job and the gap;
 *      `tidemark_backup_log_gaps_total{job}` + 1 and `tidemark_backup_log_needs_full{job}` = 1;
 *   2. a full backup of every job whose `logs:` names this log job (backup/run/job.ts runJob, type full, under the
 *      job's lock: a job running elsewhere — BACKUP_BUSY — is waited for, retried every BUSY_RETRY_MS; a failed
 *      full is retried after RETRY_MS, the archiver staying stopped until every full is taken);
 *   3. the archiver started again with `restart: true`: the archive resumes at the server's oldest binlog with one
 *      seq number left out, so the hole stays visible (backup/logs/README.md); `..._needs_full{job}` = 0.
 * Never stops `tidemark run`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { runLogJob } from '../backup/logs/log-job.ts';
import type { LogJobConfig } from '../backup/logs-config.ts';
import { runJob } from '../backup/run/job.ts';
import { backupAccount, type Config, type ResolvedBackup } from '../config/config.ts';
import { TidemarkError } from '../core/errors.ts';

const RETRY_MS = 30_000;
const BUSY_RETRY_MS = 5_000;

interface GapMetrics {
  readonly gaps: Counter;
  readonly needsFull: Gauge;
}
const metricsOf = new WeakMap<Registry, GapMetrics>();
function gapMetrics(registry: Registry | undefined): GapMetrics | undefined {
  if (registry === undefined) return undefined;
  let m = metricsOf.get(registry);
  if (m === undefined) {
    m = {
      gaps: new Counter({
        name: 'tidemark_backup_log_gaps_total',
        help: 'gaps found in the binlog archive of a log job (purged binlogs, GTIDs not continuing the archive)',
        labelNames: ['job'],
        registers: [registry],
      }),
      needsFull: new Gauge({
        name: 'tidemark_backup_log_needs_full',
        help: '1 while a log job waits for the forced full backup after a gap (the alarm), else 0',
        labelNames: ['job'],
        registers: [registry],
      }),
    };
    metricsOf.set(registry, m);
  }
  return m;
}

export async function backupLogsLoop(
  config: Config,
  log: Logger,
  signal: AbortSignal,
  registry?: Registry,
): Promise<void> {
  const b = config.backup;
  if (b === undefined || b.logs.length === 0) return;
  const m = gapMetrics(registry);
  const llog = log.child({ component: 'backup-logs' });
  await Promise.all(b.logs.map((job) => oneJob(config, b, job, llog, signal, m)));
}

/** The forced full of every job restored with this log job's archive; BACKUP_BUSY waited for. */
async function forcedFulls(
  config: Config,
  b: ResolvedBackup,
  logJob: string,
  done: Set<string>,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const jobs = b.jobs.filter((j) => j.logs === logJob);
  if (jobs.length === 0) {
    log.warn({ job: logJob }, `no backup job names log job '${logJob}' in 'logs:': no full to force`);
  }
  for (const j of jobs) {
    while (!done.has(j.name) && !signal.aborted) {
      try {
        log.warn({ job: logJob, backupJob: j.name }, `forced full backup of job '${j.name}' after the gap`);
        const r = await runJob(b, j, { account: backupAccount(config), type: 'full', expire: false, signal, log });
        log.info({ job: logJob, backupJob: j.name, id: r.run.manifest.id }, `forced full of '${j.name}' sealed`);
        done.add(j.name);
      } catch (err) {
        if (!(err instanceof TidemarkError && err.code === 'BACKUP_BUSY')) throw err;
        log.info({ job: logJob, backupJob: j.name }, `job '${j.name}' is busy; forced full retried shortly`);
        await sleep(BUSY_RETRY_MS, undefined, { signal }).catch(() => undefined);
      }
    }
  }
}

async function oneJob(
  config: Config,
  b: ResolvedBackup,
  job: LogJobConfig,
  log: Logger,
  signal: AbortSignal,
  m: GapMetrics | undefined,
): Promise<void> {
  /** Set by a gap: the fulls still to take (by job name, those taken), then one start with `restart`. */
  let gap: { fulls: Set<string> } | null = null;
  let restart = false;
  while (!signal.aborted) {
    let sealed = 0;
    try {
      if (gap !== null) {
        await forcedFulls(config, b, job.name, gap.fulls, log, signal);
        if (signal.aborted) return;
        gap = null;
        restart = true;
        m?.needsFull.set({ job: job.name }, 0);
      }
      log.info({ job: job.name, store: job.store, restart }, 'binlog archiver starting');
      await runLogJob(b, job, {
        source: config.source,
        signal,
        restart,
        log,
        onStopped: (st) => {
          sealed = st.sealed;
        },
      });
    } catch (err) {
      if (sealed > 0) restart = false; // the restarted archive has begun: later starts continue it
      if (signal.aborted) return;
      if (err instanceof TidemarkError && err.code === 'BACKUP_LOG_GAP') {
        const fulls = b.jobs.filter((j) => j.logs === job.name).map((j) => j.name);
        log.error(
          { job: job.name, needsFull: true, alarm: 'log-gap', fullsOf: fulls, err },
          `log job '${job.name}' has a gap in its archive: ${err.message}; taking a forced full backup of ` +
            `${fulls.length === 0 ? 'no job' : fulls.map((f) => `'${f}'`).join(', ')}, then restarting the archive`,
        );
        m?.gaps.inc({ job: job.name });
        m?.needsFull.set({ job: job.name }, 1);
        gap = { fulls: new Set() };
        restart = false;
        continue;
      }
      log.error({ job: job.name, err }, `log job '${job.name}' stopped; starting it again in ${RETRY_MS / 1000} s`);
    }
    if (sealed > 0) restart = false;
    await sleep(RETRY_MS, undefined, { signal }).catch(() => undefined);
  }
}
