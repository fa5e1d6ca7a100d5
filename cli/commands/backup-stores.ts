/**
 * What the `tidemark backup …` commands share: the config's backup section (or a usage error saying to add one),
 * a job by name, and a store opened with its catalog cache (`<catalog_dir>/<store>.sqlite`, rebuilt from the store
 * — the truth — before it answers anything).
 */
import type { Logger } from 'pino';
import type { BackupJobConfig } from '../../backup/config.ts';
import type { OpenedStore } from '../../backup/run/job.ts';
import type { Config, ResolvedBackup } from '../../config/config.ts';
import { usageError } from './exit.ts';

export function backupSection(config: Config): ResolvedBackup {
  if (config.backup === undefined) {
    throw usageError(`${config.file} has no backup section (see backup/README.md, "Config section")`);
  }
  return config.backup;
}

export function jobOf(b: ResolvedBackup, file: string, name: string): BackupJobConfig {
  const job = b.jobs.find((j) => j.name === name);
  if (job === undefined) {
    const known = b.jobs.map((j) => j.name).join(', ') || 'none';
    throw usageError(`backup job '${name}': ${file} has no such job (backup.jobs has: ${known})`);
  }
  return job;
}

export type { OpenedStore };

/** Opens one configured store and its catalog cache, rebuilt from the store (a usage error for an unknown store). */
export function openCatalogued(b: ResolvedBackup, storeName: string, log: Logger): Promise<OpenedStore> {
  if (!b.stores.some((s) => s.name === storeName))
    throw usageError(`backup store '${storeName}' is not in backup.stores`);
  // Loaded on use: the store modules (S3 client and all) are not for every command's start-up.
  return import('../../backup/run/job.ts').then((m) => m.openCatalogued(b, storeName, log));
}

/** Runs `fn` with each configured store this site can reach opened in turn (closing each after). */
export async function eachStore(
  b: ResolvedBackup,
  log: Logger,
  fn: (s: OpenedStore) => Promise<void> | void,
): Promise<void> {
  for (const s of b.stores) {
    if (s.kind !== 'site' && s.site !== undefined && s.site !== b.link.site) continue; // another site's own store
    const opened = await openCatalogued(b, s.name, log);
    try {
      await fn(opened);
    } finally {
      await opened.close();
    }
  }
}
