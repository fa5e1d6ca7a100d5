/**
 * One log job's archiver run, as `tidemark backup logs JOB` and `tidemark run` (node/backup-logs-loop.ts) both run
 * it (I/O): the master key, the job's lock (`<catalog_dir>/<job>-logs.lock`), its store opened with the catalog
 * cache, then runLogArchiver (archiver.ts) until it stops — by the signal (resolves), or on a gap or any
 * non-retriable error (rejects). The archiver's last status goes to `onStopped` either way.
 */
import type { Logger } from 'pino';
import type { MysqlEndpoint } from '../../mysql/session.ts';
import type { LogJobConfig } from '../logs-config.ts';
import { type BackupSection, loadSectionKey, openCatalogued } from '../run/job.ts';
import { lockJob } from '../run/lock.ts';
import { type LogArchiverStatus, runLogArchiver } from './archiver.ts';

export interface LogJobRunOptions {
  readonly source: MysqlEndpoint;
  readonly signal: AbortSignal;
  /** Start again at the server's oldest binlog (after a gap and a new full). */
  readonly restart: boolean;
  readonly log: Logger;
  readonly onStopped?: (status: LogArchiverStatus) => void;
}

export async function runLogJob(b: BackupSection, job: LogJobConfig, o: LogJobRunOptions): Promise<LogArchiverStatus> {
  const master = await loadSectionKey(b);
  const unlock = await lockJob(b.catalog_dir, `${job.name}-logs`, 'logs');
  try {
    const s = await openCatalogued(b, job.store, o.log);
    try {
      const a = runLogArchiver({
        job,
        source: o.source,
        store: s.store,
        catalog: s.catalog,
        master,
        signal: o.signal,
        restart: o.restart,
        zstdLevel: b.pipeline.zstd_level,
        log: o.log,
      });
      try {
        await a.done;
      } finally {
        o.onStopped?.(a.status());
      }
      return a.status();
    } finally {
      await s.close();
    }
  } finally {
    await unlock();
  }
}
