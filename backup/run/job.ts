/**
 * A configured job or copy run once, as both `tidemark backup run|expire|copy` and the scheduler (node/backup-loop.ts)
 * run it (I/O): the job's lock, its store opened with the catalog cache (`<catalog_dir>/<store>.sqlite`, rebuilt
 * from the store — the truth), the backup (runner.ts), and optionally `expire` with the job's retention under the
 * same lock. A copy (backup/copy/) holds the lock `copy.<name>` and applies its retention to the destination
 * store, per copied job, after a successful copy.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from '../../core/errors.ts';
import { Catalog } from '../catalog.ts';
import type { BackupConfig, BackupJobConfig } from '../config.ts';
import { type CopyConfig, checkCopies } from '../copy-config.ts';
import { type CopyReport, copyBackups } from '../copy/copy.ts';
import { type ExpireReport, expire } from '../expire.ts';
import { parseBackupId } from '../manifest.ts';
import type { MasterKey } from '../pipeline/keys.ts';
import { loadMasterKey } from '../pipeline/master-key.ts';
import type { Progress } from '../pipeline/progress.ts';
import type { RetentionPolicy } from '../retention.ts';
import type { BackupStore } from '../store.ts';
import { lockJob } from './lock.ts';
import { openStore, type SiteLink, siteContextOf } from './open-store.ts';
import { type PhysicalType, type RunBackupResult, runBackup } from './runner.ts';
import type { StreamAccount } from './stream-command.ts';

/** The `backup:` section with its catalog directory resolved (config/config.ts ResolvedBackup). */
export type BackupSection = BackupConfig & { readonly catalog_dir: string; readonly link?: SiteLink };

export interface OpenedStore {
  readonly name: string;
  readonly store: BackupStore;
  readonly catalog: Catalog;
  close(): Promise<void>;
}

/** Opens one configured store and its catalog cache, rebuilt from the store. */
export async function openCatalogued(b: BackupSection, storeName: string, log: Logger): Promise<OpenedStore> {
  const cfg = b.stores.find((s) => s.name === storeName);
  if (cfg === undefined) throw new ConfigError(`backup store '${storeName}' is not in backup.stores`, { storeName });
  const store = await openStore(cfg, process.env, b.link === undefined ? undefined : siteContextOf(b.link, log));
  let catalog: Catalog;
  try {
    mkdirSync(b.catalog_dir, { recursive: true, mode: 0o700 });
    catalog = new Catalog(join(b.catalog_dir, `${storeName}.sqlite`), store.name, log);
    await catalog.rebuild(store);
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    name: storeName,
    store,
    catalog,
    close: async () => {
      catalog.close();
      await store.close();
    },
  };
}

/** Runs `fn` holding the lock `lockName` with the store opened; both released after, whatever happens. */
async function locked<T>(
  b: BackupSection,
  lockName: string,
  what: string,
  storeName: string,
  log: Logger,
  fn: (s: OpenedStore) => Promise<T>,
): Promise<T> {
  const unlock = await lockJob(b.catalog_dir, lockName, what);
  try {
    const s = await openCatalogued(b, storeName, log);
    try {
      return await fn(s);
    } finally {
      await s.close();
    }
  } finally {
    await unlock();
  }
}

export interface ExpireRunOptions {
  readonly dryRun: boolean;
  readonly log: Logger;
  readonly now?: Date;
}

/** `expire` of one job in an opened store with a policy (the job's, or a copy's in its destination). */
export function expireIn(
  b: BackupSection,
  s: OpenedStore,
  job: string,
  policy: RetentionPolicy,
  o: ExpireRunOptions,
): Promise<ExpireReport> {
  return expire(s.catalog, s.store, {
    job,
    ...logJobOf(b, job, s.name),
    policy,
    now: o.now ?? new Date(),
    graceMs: b.orphan_grace_minutes * 60_000,
    dryRun: o.dryRun,
    log: o.log,
  });
}

/**
 * The log job whose segments expire with `job`'s backups: the job's `logs:`, when the segments are in the same
 * store and no other job restores through them (two jobs' policies would each keep only what it needs; their
 * logs are then kept whole — expire them by hand).
 */
function logJobOf(b: BackupSection, job: string, store: string): { logJob?: string } {
  const name = b.jobs.find((j) => j.name === job)?.logs;
  if (name === undefined) return {};
  const shared = b.jobs.filter((j) => j.logs === name).length > 1;
  const sameStore = b.logs.find((l) => l.name === name)?.store === store;
  return shared || !sameStore ? {} : { logJob: name };
}

/** `tidemark backup expire JOB`: the job's lock, its store, its retention. */
export function expireJob(b: BackupSection, job: BackupJobConfig, o: ExpireRunOptions): Promise<ExpireReport> {
  return locked(b, job.name, 'expire', job.store, o.log, (s) => expireIn(b, s, job.name, job.retention, o));
}

export interface JobRunOptions {
  readonly account: StreamAccount;
  /** Overrides the job's type. */
  readonly type?: PhysicalType | undefined;
  /** Apply the job's retention after a successful backup (the scheduler does). */
  readonly expire: boolean;
  readonly expectedBytes?: number | undefined;
  readonly onProgress?: ((p: Progress) => void) | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly log: Logger;
}

export interface JobRunResult {
  readonly run: RunBackupResult;
  readonly store: string;
  readonly expired: ExpireReport | null;
}

/** The master key `backup.encryption` names (a file or an environment variable). */
export function loadSectionKey(b: BackupSection): Promise<MasterKey> {
  const e = b.encryption;
  return loadMasterKey(e.key_file !== undefined ? { file: e.key_file } : { env: e.key_env as string });
}

/** One backup of `job` now (its lock held throughout; BACKUP_BUSY when another run or expire holds it). */
export async function runJob(b: BackupSection, job: BackupJobConfig, o: JobRunOptions): Promise<JobRunResult> {
  const master = await loadSectionKey(b);
  return locked(b, job.name, 'run', job.store, o.log, async (s) => {
    const run = await runBackup({
      job: job.name,
      type: o.type ?? job.type,
      store: s.store,
      catalog: s.catalog,
      master,
      stream: b.stream,
      account: o.account,
      pipeline: { blockSize: b.pipeline.block_size, pieceSize: b.pipeline.piece_size, level: b.pipeline.zstd_level },
      ...(o.expectedBytes === undefined ? {} : { expectedBytes: o.expectedBytes }),
      ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress }),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
      log: o.log,
    });
    const expired = o.expire ? await expireIn(b, s, job.name, job.retention, { dryRun: false, log: o.log }) : null;
    return { run, store: s.name, expired };
  });
}

export interface CopyRunResult {
  readonly report: CopyReport;
  /** The copy's retention applied to the destination, per copied job (none in a dry run or without retention). */
  readonly expired: readonly { readonly job: string; readonly report: ExpireReport }[];
}

/** `tidemark backup copy NAME`: lock `copy.<name>`, copy, then the copy's retention in the destination. */
export async function runCopy(
  b: BackupSection,
  copy: CopyConfig,
  o: { readonly dryRun: boolean; readonly signal?: AbortSignal | undefined; readonly log: Logger },
): Promise<CopyRunResult> {
  checkCopies(b);
  const log = o.log.child({ copy: copy.name });
  return locked(b, `copy.${copy.name}`, 'copy', copy.to, log, async (to) => {
    const from = await openStore(b.stores.find((s) => s.name === copy.from) as BackupConfig['stores'][number]);
    let report: CopyReport;
    try {
      report = await copyBackups({ from, to: to.store, jobs: copy.jobs, dryRun: o.dryRun, signal: o.signal, log });
    } finally {
      await from.close();
    }
    const expired: { job: string; report: ExpireReport }[] = [];
    const policy = copy.retention;
    if (!o.dryRun && (policy.days !== undefined || policy.chains !== undefined)) {
      const jobs = new Set([...report.copied.map((c) => c.job), ...report.present.map((id) => jobOfId(id))]);
      for (const job of jobs) expired.push({ job, report: await expireIn(b, to, job, policy, { dryRun: false, log }) });
    }
    return { report, expired };
  });
}

const jobOfId = (id: string): string => parseBackupId(id)?.job ?? '';
