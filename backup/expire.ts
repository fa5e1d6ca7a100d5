/**
 * `expire`: applies a retention plan (backup/retention.ts) to a store, and collects orphans. The store is the
 * truth, so it rebuilds the catalog first. Deleting a backup removes its manifest FIRST — from that instant the
 * backup does not exist — then every object under its prefix; a crash in between leaves only orphans, which the
 * next run collects. A backup whose star object appeared in the store since the plan was made is skipped.
 * With `dryRun` nothing is deleted: the report says what would be.
 */
import type { Logger } from 'pino';
import { silentLogger } from '../core/log.ts';
import type { Catalog, Orphan } from './catalog.ts';
import { manifestKey, starKey } from './manifest.ts';
import { type Decision, planRetention, type RetentionPolicy } from './retention.ts';
import type { BackupStore } from './store.ts';

export interface ExpireOptions {
  readonly job: string;
  /** The job whose log backups serve this job's point-in-time restores. */
  readonly logJob?: string;
  readonly policy: RetentionPolicy;
  readonly now: Date;
  /** An unsealed backup younger than this may still be running: its objects are not orphans yet. */
  readonly graceMs: number;
  readonly dryRun: boolean;
  readonly log?: Logger;
}

export interface ExpireReport {
  readonly keep: readonly Decision[];
  readonly expired: readonly Decision[];
  readonly keepLogs: readonly Decision[];
  readonly expiredLogs: readonly Decision[];
  readonly orphans: readonly Orphan[];
  /** Objects deleted (0 in a dry run). */
  readonly deletedObjects: number;
  readonly skipped: readonly Decision[];
}

export async function expire(catalog: Catalog, store: BackupStore, opts: ExpireOptions): Promise<ExpireReport> {
  const log = (opts.log ?? silentLogger).child({ component: 'backup-expire', job: opts.job, dryRun: opts.dryRun });
  await catalog.rebuild(store);
  const input = catalog.retentionInput(opts.job, opts.logJob);
  const plan = planRetention({ ...input, policy: opts.policy, now: opts.now.getTime() });
  const orphans = await catalog.orphans(store, opts.now, opts.graceMs);
  const skipped: Decision[] = [];
  let deleted = 0;
  const doomed = [...plan.expire, ...plan.expireLogs];
  for (const d of doomed)
    log.info({ id: d.id, why: d.reasons[0] }, opts.dryRun ? 'would expire backup' : 'expiring backup');
  for (const o of orphans)
    log.info({ objectKey: o.key, why: o.reason }, opts.dryRun ? 'would delete orphan' : 'deleting orphan');
  if (!opts.dryRun) {
    for (const d of doomed) {
      if ((await store.head(starKey(d.id))) !== null) {
        skipped.push({ id: d.id, reasons: ['starred in the store since the plan was made'] });
        continue;
      }
      await store.delete(manifestKey(d.id));
      catalog.forget(d.id);
      deleted++;
      const rest: string[] = [];
      for await (const o of store.list(`${d.id}/`)) rest.push(o.key); // list fully, then delete
      for (const key of rest) {
        await store.delete(key);
        deleted++;
      }
    }
    for (const o of orphans) {
      await store.delete(o.key);
      deleted++;
    }
  }
  log.info(
    { kept: plan.keep.length, expired: doomed.length - skipped.length, orphans: orphans.length, deleted },
    'expire done',
  );
  const skippedIds = new Set(skipped.map((s) => s.id));
  return {
    keep: plan.keep,
    expired: plan.expire.filter((d) => !skippedIds.has(d.id)),
    keepLogs: plan.keepLogs,
    expiredLogs: plan.expireLogs.filter((d) => !skippedIds.has(d.id)),
    orphans,
    deletedObjects: deleted,
    skipped,
  };
}
