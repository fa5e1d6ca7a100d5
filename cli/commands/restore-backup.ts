/**
 * `tidemark restore --backup ID --into DIR`: the backup mode of restore — the backup's chain fetched from a
 * backup store, verified, extracted and prepared into DIR (backup/restore/restore.ts), a datadir a scratch
 * MariaDB can start on. (`restore --to-time T --into URL`, the journal mode, is restore.ts.)
 *
 * Until the config has a `backup:` section, the store and the master key come from flags: `--store-dir DIR` or
 * `--store-s3 s3://BUCKET[/PREFIX/]` (endpoint from `--s3-endpoint` or $TIDEMARK_S3_ENDPOINT, region from
 * $AWS_REGION, credentials from the AWS SDK's default chain: $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY, a profile,
 * an instance role), and `--key-file F` or $TIDEMARK_BACKUP_KEY.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { MasterKeySource } from '../../backup/pipeline/master-key.ts';
import { loadMasterKey } from '../../backup/pipeline/master-key.ts';
import { restoreBackup } from '../../backup/restore/restore.ts';
import type { BackupStore } from '../../backup/store.ts';
import { DirStore } from '../../backup/store/dir.ts';
import { S3Store } from '../../backup/store/s3.ts';
import { ConfigError } from '../../core/errors.ts';
import type { TextSink } from './context.ts';

export type StoreSpec =
  | { readonly kind: 'dir'; readonly path: string }
  | {
      readonly kind: 's3';
      readonly bucket: string;
      readonly prefix: string;
      readonly endpoint: string | undefined;
      readonly region: string;
    };

export interface RestoreBackupCommandOptions {
  readonly id: string;
  readonly into: string;
  readonly store: StoreSpec;
  readonly key: MasterKeySource;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly stdout: TextSink;
}

async function openStore(spec: StoreSpec): Promise<BackupStore> {
  if (spec.kind === 's3') {
    return S3Store.open({
      bucket: spec.bucket,
      prefix: spec.prefix,
      region: spec.region,
      ...(spec.endpoint === undefined ? {} : { endpoint: spec.endpoint, forcePathStyle: true }),
    });
  }
  // DirStore.open creates a missing directory: a restore must not invent an empty store for a mistyped path.
  const st = await stat(spec.path).catch(() => null);
  if (st === null || !st.isDirectory()) {
    throw new ConfigError(`--store-dir ${spec.path}: no such directory (the backup store to restore from)`, {
      path: spec.path,
    });
  }
  return DirStore.open(spec.path);
}

export async function restoreBackupCommand(o: RestoreBackupCommandOptions): Promise<number> {
  const master = await loadMasterKey(o.key, o.env as NodeJS.ProcessEnv);
  const store = await openStore(o.store);
  try {
    await restoreBackup({
      store,
      master,
      id: o.id,
      into: o.into,
      log: o.log,
      signal: o.signal,
      onLine: (line) => o.stdout.write(`${line}\n`),
    });
    return 0;
  } finally {
    await store.close();
  }
}
