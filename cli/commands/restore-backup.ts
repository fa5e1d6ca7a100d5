/**
 * `tidemark restore --backup ID --into DIR`: the backup mode of restore — the backup's chain fetched from a
 * backup store, verified, extracted and prepared into DIR (backup/restore/restore.ts), a datadir a scratch
 * MariaDB can start on. (`restore --to-time T --into URL`, the journal mode, is restore.ts.)
 *
 * The store: a store of the config's `backup:` section (`--store NAME`; in point-in-time mode the job's store; a
 * config with one store needs no flag), or, on a host without the config, `--store-dir DIR` or
 * `--store-s3 s3://BUCKET[/PREFIX/]` (endpoint from `--s3-endpoint` or $TIDEMARK_S3_ENDPOINT, region from
 * $AWS_REGION, credentials from the AWS SDK's default chain: $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY, a profile,
 * an instance role). The master key: `--key-file F`, else the config's `backup.encryption`, else
 * $TIDEMARK_BACKUP_KEY.
 *
 * Point in time (`--job JOB --to-gtid G | --to-time T`, options.pointInTime): backup/restore/pitr.ts restores the
 * job's newest backup at or before the target, starts a scratch server on the datadir with
 * compose/local/mariadb.sh (backup/restore/scratch-server.ts: `start pitr-PORT PORT --datadir DIR`, left running),
 * and replays the log job's archived binlog up to the target GTID. The scratch server's accounts are the source's
 * (the datadir is a copy): `--scratch-user` (default root) with the password in $TIDEMARK_SCRATCH_PASSWORD.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { MasterKeySource } from '../../backup/pipeline/master-key.ts';
import { loadMasterKey } from '../../backup/pipeline/master-key.ts';
import { type PitrTarget, restoreToPoint } from '../../backup/restore/pitr.ts';
import { restoreBackup } from '../../backup/restore/restore.ts';
import { openStore as openConfiguredStore, siteContextOf } from '../../backup/run/open-store.ts';
import type { BackupStore } from '../../backup/store.ts';
import { DirStore } from '../../backup/store/dir.ts';
import { S3Store } from '../../backup/store/s3.ts';
import type { ResolvedBackup } from '../../config/config.ts';
import { ConfigError } from '../../core/errors.ts';
import type { TextSink } from './context.ts';
import { scratchName, startScratch } from '../../backup/restore/scratch-server.ts';

export type StoreSpec =
  | { readonly kind: 'dir'; readonly path: string }
  /** A store of the config's backup section, by name. */
  | { readonly kind: 'configured'; readonly backup: ResolvedBackup; readonly name: string }
  | {
      readonly kind: 's3';
      readonly bucket: string;
      readonly prefix: string;
      readonly endpoint: string | undefined;
      readonly region: string;
    };

/** Point-in-time mode: the backup job, its log job, the target and the scratch server to replay into. */
export interface PointInTimeSpec {
  readonly job: string;
  readonly logJob: string;
  readonly target: PitrTarget;
  readonly scratchPort: number;
  readonly scratchUser: string;
}

export interface RestoreBackupCommandOptions {
  /** Backup mode: the backup to restore ('' in point-in-time mode). */
  readonly id: string;
  readonly pointInTime?: PointInTimeSpec;
  readonly into: string;
  readonly store: StoreSpec;
  readonly key: MasterKeySource;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly stdout: TextSink;
}

export async function openStore(spec: StoreSpec, log: Logger): Promise<BackupStore> {
  if (spec.kind === 'configured') {
    const cfg = spec.backup.stores.find((s) => s.name === spec.name);
    if (cfg === undefined) throw new ConfigError(`backup store '${spec.name}' is not in backup.stores`, {});
    return openConfiguredStore(cfg, process.env, siteContextOf(spec.backup.link, log));
  }
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
  const store = await openStore(o.store, o.log);
  const p = o.pointInTime;
  try {
    if (p !== undefined) {
      let scratch = '';
      await restoreToPoint({
        store,
        master,
        job: p.job,
        logJob: p.logJob,
        target: p.target,
        into: o.into,
        log: o.log,
        signal: o.signal,
        onLine: (line) => o.stdout.write(`${line}\n`),
        startServer: async (datadir) => {
          scratch = scratchName(p.scratchPort);
          const password = o.env['TIDEMARK_SCRATCH_PASSWORD'] ?? '';
          return startScratch({ port: p.scratchPort, user: p.scratchUser, password }, datadir);
        },
      });
      o.stdout.write(
        `the scratch server ${scratch} runs on 127.0.0.1:${p.scratchPort} ` +
          `(stop it: compose/local/mariadb.sh stop ${scratch})\n`,
      );
      return 0;
    }
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
