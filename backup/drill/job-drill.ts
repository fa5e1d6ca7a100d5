/**
 * One drill of a configured backup job (I/O), as `tidemark drill JOB` and the scheduler of `tidemark run` run it:
 * the job's drill lock (`<catalog_dir>/<job>-drill.lock`: two drills of a job never share a scratch server;
 * BACKUP_BUSY otherwise), the master key, the job's store with its catalog rebuilt, runDrill on a scratch server
 * at `scratchPort` (backup/restore/scratch-server.ts; its instance removed before and after, so the next drill
 * starts clean) in `<catalog_dir>/drill-<job>`, and the result recorded in the drill history (not when the
 * signal stopped it: `tidemark run` stopping is not a failed drill). Returns the record (a failed drill is a result, not a throw).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { MysqlEndpoint } from '../../mysql/session.ts';
import { destroyScratch, startScratch } from '../restore/scratch-server.ts';
import { type BackupSection, loadSectionKey, openCatalogued } from '../run/job.ts';
import { lockJob } from '../run/lock.ts';
import { runDrill } from './drill.ts';
import { DrillHistory, type DrillRecord } from './history.ts';

export interface JobDrillOptions {
  readonly job: { readonly name: string; readonly store: string };
  readonly logJob: string;
  readonly source: MysqlEndpoint & { readonly user: string };
  readonly scratchPort: number;
  /** The scratch server's password for the source's user (the restored copy has the source's accounts). */
  readonly scratchPassword: string;
  readonly waitSeconds: number;
  readonly log: Logger;
  readonly signal?: AbortSignal | undefined;
  readonly onLine?: ((line: string) => void) | undefined;
}

/** The drill history file of a job's store. */
export const drillHistoryFile = (b: BackupSection, store: string): string => join(b.catalog_dir, `${store}.sqlite`);

export async function drillJob(b: BackupSection, o: JobDrillOptions): Promise<DrillRecord> {
  const master = await loadSectionKey(b);
  const scratch = { port: o.scratchPort, user: o.source.user, password: o.scratchPassword };
  const unlock = await lockJob(b.catalog_dir, `${o.job.name}-drill`, 'drill');
  try {
    const s = await openCatalogued(b, o.job.store, o.log);
    let result: DrillRecord;
    try {
      result = await runDrill({
        store: s.store,
        master,
        job: o.job.name,
        logJob: o.logJob,
        source: o.source,
        into: join(b.catalog_dir, `drill-${o.job.name}`),
        // the scratch instance's own directory (its binlog) is removed before and after: a drill replays into
        // a server whose binlog must not hold the GTIDs of the previous drill (gtid_strict_mode refuses them)
        startServer: async (dir) => {
          await destroyScratch(scratch);
          return startScratch(scratch, dir);
        },
        stopServer: () => destroyScratch(scratch),
        waitSeconds: o.waitSeconds,
        log: o.log,
        ...(o.signal === undefined ? {} : { signal: o.signal }),
        ...(o.onLine === undefined ? {} : { onLine: o.onLine }),
      });
    } finally {
      await s.close();
    }
    if (o.signal?.aborted) return result; // stopped, not failed: not a drill result worth keeping
    const h = new DrillHistory(drillHistoryFile(b, o.job.store));
    try {
      h.record(result);
    } finally {
      h.close();
    }
    return result;
  } finally {
    await unlock();
  }
}
