/**
 * Opens the backup store a config entry names (backup/config.ts `stores`), resolving the S3 credentials from the
 * config, an environment variable or a file (I/O: env, file, the store's own start-up check). With neither key
 * given, the AWS SDK's default chain applies.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../../core/errors.ts';
import type { StoreConfig } from '../config.ts';
import type { BackupStore } from '../store.ts';
import { DirStore } from '../store/dir.ts';
import { S3Store } from '../store/s3.ts';

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

export async function openStore(s: StoreConfig, vars: NodeJS.ProcessEnv = process.env): Promise<BackupStore> {
  if (s.kind === 'dir') return DirStore.open(s.path);
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
