/**
 * The backup runner (I/O): takes one physical backup — full, incremental or differential — straight from the
 * stream command's stdout into the store, and seals it with its manifest. Nothing is staged on local disk: the
 * bytes are teed in flight into the mbstream parser (every chunk's CRC32, `xtrabackup_checkpoints` and
 * `xtrabackup_binlog_info` captured) and into the pipeline (zstd + AES-256-GCM per chunk → pieces → store.put).
 *
 *   1. the catalog is rebuilt from the store (the truth); an incremental's base is the newest backup of the newest
 *      chain, a differential's the chain's full (base.ts); with no full yet, a full is taken instead
 *   2. the stream command runs (argv from stream-command.ts; its stderr is kept for the error message; the
 *      account goes through a mode-600 option file in the run's scratch directory, removed afterwards)
 *   3. the pieces are written (writeSealedBackup), the command's exit status checked, then the stream's from_lsn
 *      against the expected LSN (checkStreamStart) — any failure before this point seals nothing
 *   4. the manifest is written LAST with putIfAbsent, then recorded in the catalog cache
 *
 * A failure at any step leaves no manifest, so the backup does not exist; its pieces are orphans that `expire`
 * collects after the grace period. The stream command is killed (SIGTERM, then SIGKILL) when the run fails or is
 * aborted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { MetaCapture } from '../backup-info.ts';
import { type Base, checkStreamStart, chooseBase } from '../base.ts';
import type { Catalog } from '../catalog.ts';
import type { StreamConfig } from '../config.ts';
import { encodeManifest, type Manifest, manifestKey, newBackupId } from '../manifest.ts';
import { MbstreamParser } from '../mbstream.ts';
import type { MasterKey } from '../pipeline/keys.ts';
import type { Progress } from '../pipeline/progress.ts';
import { writeSealedBackup } from '../pipeline/writer.ts';
import type { BackupStore } from '../store.ts';
import { type StreamAccount, streamInvocation } from './stream-command.ts';

export type PhysicalType = 'full' | 'incremental' | 'differential';

export interface RunBackupOptions {
  readonly job: string;
  readonly type: PhysicalType;
  readonly store: BackupStore;
  readonly catalog: Catalog;
  readonly master: MasterKey;
  readonly stream: StreamConfig;
  readonly account: StreamAccount;
  readonly pipeline?: { readonly blockSize?: number; readonly pieceSize?: number; readonly level?: number };
  /** Expected plaintext bytes (e.g. the datadir's size for a full): progress gets percent and ETA. */
  readonly expectedBytes?: number;
  readonly onProgress?: (p: Progress) => void;
  readonly signal?: AbortSignal;
  readonly log?: Logger;
  readonly now?: () => Date;
}

export interface RunBackupResult {
  readonly manifest: Manifest;
  /** Plaintext bytes read from the stream command. */
  readonly streamBytes: number;
  /** Set when an incremental/differential was asked for but the job had no full yet. */
  readonly promoted: boolean;
}

const STDERR_KEEP = 8192;

/** Chooses the base (after a rebuild), runs the stream into the store, seals the manifest. */
export async function runBackup(o: RunBackupOptions): Promise<RunBackupResult> {
  const now = o.now ?? (() => new Date());
  const log = (o.log ?? silentLogger).child({ component: 'backup-run', job: o.job });
  await o.catalog.rebuild(o.store);
  let type = o.type;
  let base: Base | null = null;
  if (type !== 'full') {
    const manifests = o.catalog.list({ job: o.job }).map((b) => o.catalog.show(b.id).manifest);
    base = chooseBase(manifests, type);
    if (base === null) {
      log.warn({ asked: type }, `job '${o.job}' has no full backup yet: taking a full instead`);
      type = 'full';
    }
  }
  const startedAt = now();
  const id = newBackupId(o.job, type, startedAt, randomBytes(3).toString('hex'));
  const expectedFrom = base?.fromLsn ?? 0n;
  log.info(
    { id, type, parent: base?.parent.id ?? null, fromLsn: base === null ? null : String(expectedFrom) },
    'backup starting',
  );

  const scratch = join(o.stream.scratch_dir, id);
  await mkdir(scratch, { recursive: true, mode: 0o700 });
  try {
    const inv = streamInvocation(o.stream, o.account, {
      targetDir: join(scratch, 'target'),
      optionFile: join(scratch, 'account.cnf'),
      incrementalLsn: base === null ? null : expectedFrom,
    });
    await mkdir(join(scratch, 'target'), { mode: 0o700 });
    if (inv.optionText !== null) await writeFile(join(scratch, 'account.cnf'), inv.optionText, { mode: 0o600 });
    const child = spawn(inv.file, [...inv.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = childExit(child);
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-STDERR_KEEP);
    });
    const parser = new MbstreamParser({ keepPayload: MetaCapture.wants }); // CRCs checked in place; only metadata copied
    const meta = new MetaCapture();
    let streamBytes = 0;
    async function* tee(src: Readable): AsyncGenerator<Buffer> {
      for await (const b of src) {
        const buf = b as Buffer;
        streamBytes += buf.length;
        for (const c of parser.push(buf)) meta.observe(c);
        yield buf;
      }
      parser.end();
    }
    let sealed: Awaited<ReturnType<typeof writeSealedBackup>>;
    try {
      sealed = await writeSealedBackup({
        store: o.store,
        source: tee(child.stdout as Readable),
        backupId: id,
        master: o.master,
        ...(o.pipeline?.blockSize === undefined ? {} : { blockSize: o.pipeline.blockSize }),
        ...(o.pipeline?.pieceSize === undefined ? {} : { pieceSize: o.pipeline.pieceSize }),
        ...(o.pipeline?.level === undefined ? {} : { level: o.pipeline.level }),
        ...(o.expectedBytes === undefined ? {} : { expectedBytes: o.expectedBytes }),
        ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress }),
        ...(o.signal === undefined ? {} : { signal: o.signal }),
      });
    } catch (err) {
      // A stream command that died on its own explains a broken stream better than the parser does: give it a
      // moment to report its exit (its stdout may close before its exit status arrives), then stop it.
      const own = await Promise.race([exited, delay(1000).then(() => null)]);
      if (own === null) stop(child);
      const exit = await exited;
      if (own !== null && (exit.error !== undefined || exit.code !== 0)) {
        throw streamFailed(inv.file, exit, stderr, id, err);
      }
      throw err;
    }
    const exit = await exited;
    if (exit.error !== undefined || exit.code !== 0) throw streamFailed(inv.file, exit, stderr, id, undefined);
    const info = meta.result();
    checkStreamStart(info.checkpoints, type, expectedFrom);
    const cp = info.checkpoints as NonNullable<typeof info.checkpoints>;
    const manifest: Manifest = {
      id,
      job: o.job,
      type,
      parent: base?.parent.id ?? null,
      chain: base?.chain ?? id,
      lsn: { from: cp.fromLsn, to: cp.toLsn },
      gtid: info.binlog?.gtid ?? null,
      binlog: info.binlog === null ? null : { file: info.binlog.file, position: info.binlog.position },
      log: null,
      pieces: sealed.pieces,
      encryption: { ...sealed.encryption },
      startedAt,
      endedAt: now(),
      tools: {
        tidemark: 'backup-run/1',
        stream: [inv.file, ...inv.args.filter((a) => !a.startsWith('--defaults'))].join(' '),
      },
    };
    const bytes = encodeManifest(manifest);
    if (!(await o.store.putIfAbsent(manifestKey(id), bytes))) {
      throw new TidemarkError(`backup '${id}' already has a manifest in '${o.store.name}': not replacing it`, {
        code: 'INTERNAL',
        context: { id },
      });
    }
    o.catalog.record(bytes);
    log.info(
      { id, type, parent: manifest.parent, fromLsn: String(cp.fromLsn), toLsn: String(cp.toLsn), streamBytes },
      'backup sealed',
    );
    return { manifest, streamBytes, promoted: type !== o.type };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

function childExit(child: ChildProcess): Promise<Exit> {
  return new Promise((res) => {
    child.once('error', (error) => res({ code: null, signal: null, error }));
    child.once('close', (code, signal) => res({ code, signal }));
  });
}

/** SIGTERM now, SIGKILL if it is still there after 5 s. */
function stop(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  t.unref();
  void once(child, 'close').then(() => clearTimeout(t));
}

function streamFailed(file: string, exit: Exit, stderr: string, id: string, cause: unknown): TidemarkError {
  const how =
    exit.error !== undefined
      ? `could not start (${(exit.error as NodeJS.ErrnoException).code ?? exit.error.message})`
      : exit.signal !== null
        ? `was killed by ${exit.signal}`
        : `exited with status ${exit.code}`;
  const tail = stderr.trim().split('\n').slice(-5).join(' | ');
  return new TidemarkError(
    `backup '${id}': stream command '${file}' ${how}; nothing was sealed${tail === '' ? '' : `. Its stderr ends: ${tail}`}`,
    { code: 'BACKUP_STREAM', cause, context: { id, command: file } },
  );
}
