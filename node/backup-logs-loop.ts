/**
 * The binlog archivers inside `tidemark run` (issue #13, log backups): one per `backup.logs` job, at the primary's
 * site beside capture (the same process as the backup scheduler, node/backup-loop.ts), each holding its job's lock
 * (`<catalog_dir>/<job>-logs.lock`, the one `tidemark backup logs JOB` takes). The archiver reconnects by itself;
 * when it stops on an error it is started again after RETRY_MS — except on a gap (a purged binlog, GTIDs that do
 * not continue the archive): that needs a new full backup and `tidemark backup logs JOB --restart` by the DBA, so
 * the loop logs it at error level (needsFull) and leaves the job stopped. Never stops `tidemark run`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { runLogArchiver } from '../backup/logs/archiver.ts';
import type { LogJobConfig } from '../backup/logs-config.ts';
import { loadMasterKey } from '../backup/pipeline/master-key.ts';
import { lockJob } from '../backup/run/lock.ts';
import { openCatalogued } from '../backup/run/job.ts';
import type { Config, ResolvedBackup } from '../config/config.ts';
import { TidemarkError } from '../core/errors.ts';

const RETRY_MS = 30_000;

export async function backupLogsLoop(config: Config, log: Logger, signal: AbortSignal): Promise<void> {
  const b = config.backup;
  if (b === undefined || b.logs.length === 0) return;
  await Promise.all(b.logs.map((job) => oneJob(config, b, job, log.child({ component: 'backup-logs' }), signal)));
}

async function oneJob(
  config: Config,
  b: ResolvedBackup,
  job: LogJobConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const src = config.source;
  while (!signal.aborted) {
    try {
      const master = await loadMasterKey(
        b.encryption.key_file !== undefined ? { file: b.encryption.key_file } : { env: b.encryption.key_env as string },
      );
      const unlock = await lockJob(b.catalog_dir, `${job.name}-logs`, 'logs');
      try {
        const s = await openCatalogued(b, job.store, log);
        try {
          log.info({ job: job.name, store: job.store }, 'binlog archiver starting');
          await runLogArchiver({
            job,
            source: {
              host: src.host,
              port: src.port,
              user: src.user,
              password: src.password,
              connect_timeout_ms: src.connect_timeout_ms,
              tls: src.tls,
            },
            store: s.store,
            catalog: s.catalog,
            master,
            signal,
            restart: false,
            zstdLevel: b.pipeline.zstd_level,
            log,
          }).done;
        } finally {
          await s.close();
        }
      } finally {
        await unlock();
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof TidemarkError && err.code === 'BACKUP_LOG_GAP') {
        log.error(
          { job: job.name, needsFull: true },
          `log job '${job.name}' stopped on a gap: take a full backup, then run 'tidemark backup logs ${job.name} --restart'`,
        );
        return;
      }
      log.error({ job: job.name, err }, `log job '${job.name}' stopped; starting it again in ${RETRY_MS / 1000} s`);
    }
    await sleep(RETRY_MS, undefined, { signal }).catch(() => undefined);
  }
}
