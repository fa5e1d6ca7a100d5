/**
 * Opens the backup store a config entry names (backup/config.ts `stores`), resolving the S3 credentials from the
 * config, an environment variable or a file (I/O: env, file, the store's own start-up check). With neither key
 * given, the AWS SDK's default chain applies. A `site` store (another site's store, over mutual TLS) needs the
 * caller's site context: its name and its TLS material (the config floor has them: ship.certs_dir, site).
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ConfigError } from '../../core/errors.ts';
import { TidemarkError } from '../../core/errors.ts';
import { type LinkSecurity, loadSiteTls } from '../../ship/tcp/index.ts';
import type { StoreConfig } from '../config.ts';
import type { BackupStore } from '../store.ts';
import { DirStore } from '../store/dir.ts';
import { SiteStore } from '../store/site.ts';

/** This config's site and its ship TLS settings (config/config.ts resolves them into the backup section). */
export interface SiteLink {
  readonly site: string;
  readonly certs_dir: string | undefined;
  readonly plaintext: boolean;
}

/** The SiteContext of a config's site (the TLS material is loaded only when a site store is opened). */
export function siteContextOf(link: SiteLink, log: Logger, site = link.site): SiteContext {
  return {
    self: site,
    log,
    security: async () => {
      if (link.plaintext) return 'plaintext';
      if (link.certs_dir === undefined) {
        throw new TidemarkError(
          "ship.certs_dir is not set: a site store needs the sites' certificates (tidemark certs)",
          {
            code: 'CONFIG',
          },
        );
      }
      return loadSiteTls(link.certs_dir, site, log);
    },
  };
}

/** Who this process is, for `kind: site` stores. */
export interface SiteContext {
  /** This process's site (the server checks our certificate names it). */
  readonly self: string;
  /** Our TLS material (ship.certs_dir), or plaintext when the ship links are. */
  security(): Promise<LinkSecurity>;
  readonly log: Logger;
}

async function secret(
  key: string,
  inline: string | undefined,
  env: string | undefined,
  file: string | undefined,
  vars: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  if (inline !== undefined) return inline;
  if (env !== undefined) {
    const v = vars[env];
    if (v === undefined || v === '')
      throw new ConfigError(`${key}_env: environment variable '${env}' is not set`, { key });
    return v;
  }
  if (file !== undefined) {
    try {
      return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`${key}_file: cannot read '${file}' (${(err as NodeJS.ErrnoException).code})`, { key });
    }
  }
  return undefined;
}

export async function openStore(
  s: StoreConfig,
  vars: NodeJS.ProcessEnv = process.env,
  site?: SiteContext,
): Promise<BackupStore> {
  if (s.kind === 'dir') return DirStore.open(s.path);
  if (s.kind === 'site') {
    if (site === undefined) {
      throw new ConfigError(
        `backup.stores '${s.name}': a site store can be used only where the config names the sites`,
      );
    }
    const at = s.address.lastIndexOf(':');
    return SiteStore.open({
      site: s.site,
      self: site.self,
      host: s.address.slice(0, at).replace(/^\[|\]$/g, ''),
      port: Number(s.address.slice(at + 1)),
      security: await site.security(),
      log: site.log,
    });
  }
  const where = `backup.stores '${s.name}'`;
  const id = await secret(`${where}: access_key_id`, s.access_key_id, s.access_key_id_env, undefined, vars);
  const key = await secret(
    `${where}: secret_access_key`,
    s.secret_access_key,
    s.secret_access_key_env,
    s.secret_access_key_file,
    vars,
  );
  if ((id === undefined) !== (key === undefined)) {
    throw new ConfigError(`${where}: give both an access key id and a secret access key, or neither (SDK chain)`, {
      store: s.name,
    });
  }
  // The AWS SDK loads only for an s3 store (~40 ms of start-up for every other command).
  const { S3Store } = await import('../store/s3.ts');
  return S3Store.open({
    ...(s.endpoint === undefined ? {} : { endpoint: s.endpoint }),
    region: s.region,
    bucket: s.bucket,
    prefix: s.prefix,
    forcePathStyle: s.force_path_style,
    ...(id === undefined || key === undefined ? {} : { credentials: { accessKeyId: id, secretAccessKey: key } }),
    partSize: s.part_size,
    queueSize: s.queue_size,
  });
}
