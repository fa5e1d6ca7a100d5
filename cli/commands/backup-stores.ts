/**
 * What the `tidemark backup …` commands share: the config's backup section (or a usage error saying to add one),
 * a job by name, and a store opened with its catalog cache (`<catalog_dir>/<store>.sqlite`, rebuilt from the store
 * — the truth — before it answers anything).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Catalog } from '../../backup/catalog.ts';
import type { BackupJobConfig } from '../../backup/config.ts';
import { openStore, type SiteContext } from '../../backup/run/open-store.ts';
import type { BackupStore } from '../../backup/store.ts';
import type { Config, ResolvedBackup } from '../../config/config.ts';
import { TidemarkError } from '../../core/errors.ts';
import { loadSiteTls } from '../../ship/tcp/index.ts';
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

export interface OpenedStore {
  readonly name: string;
  readonly store: BackupStore;
  readonly catalog: Catalog;
  close(): Promise<void>;
}

/** This config's site and its ship TLS material, for `kind: site` stores (loaded only when one is opened). */
export function siteContext(b: ResolvedBackup, log: Logger, site = b.link.site): SiteContext {
  return {
    self: site,
    log,
    security: async () => {
      if (b.link.plaintext) return 'plaintext';
      if (b.link.certs_dir === undefined) {
        throw new TidemarkError(
          "ship.certs_dir is not set: a site store needs the sites' certificates (tidemark certs)",
          {
            code: 'CONFIG',
          },
        );
      }
      return loadSiteTls(b.link.certs_dir, site, log);
    },
  };
}

/** Opens one configured store and its catalog cache, rebuilt from the store. */
export async function openCatalogued(b: ResolvedBackup, storeName: string, log: Logger): Promise<OpenedStore> {
  const cfg = b.stores.find((s) => s.name === storeName);
  if (cfg === undefined) throw usageError(`backup store '${storeName}' is not in backup.stores`);
  const store = await openStore(cfg, process.env, siteContext(b, log));
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
