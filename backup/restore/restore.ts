/**
 * Restore from a backup chain (I/O): a backup id and a store → a prepared MariaDB datadir in `into`, which a
 * scratch server can start on. Point-in-time replay of log backups is not done here (yet).
 *
 *   1. resolve the chain from the manifests in the store (the store is the truth: no catalog cache needed), check
 *      it (plan.ts: full first, each backup on its parent's LSN);
 *   2. before anything is written: unwrap every backup's data key (a wrong master key is 'BACKUP_KEY' here), head
 *      every piece (missing or of another size: 'BACKUP_INTEGRITY' naming the piece), find mbstream and
 *      mariadb-backup, and check that `into` is empty or absent;
 *   3. extract each backup: its verified plaintext (pipeline/reader.ts) piped into `mbstream -x -C DIR` — the full
 *      into `into`, the others into a work directory beside it;
 *   4. `mariadb-backup --prepare --target-dir into`, then `--prepare --target-dir into --incremental-dir INC` for
 *      each incremental (a differential's chain is just the full and it);
 *   5. remove the work directory. On any failure everything restore wrote is removed (`into` itself if restore
 *      created it, else its content), so a failed restore leaves no plaintext behind.
 *
 * Why `mbstream -x` and not our own parser writing files: it is the extractor of the same MariaDB version that
 * wrote the stream (file semantics — rename, remove, REWRITE, .delta/.meta of incrementals — exactly as
 * mariadb-backup expects them), and it checks every chunk's CRC32 itself. It never sees unverified plaintext: the
 * reader releases a chunk only after its GCM tag was checked, so what reaches mbstream's stdin — and so the disk —
 * is always authentic backup content. When a later chunk fails (a flipped byte, a missing last piece) the
 * extraction is incomplete, not unverified: mbstream is killed and the whole target is removed anyway.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { readAll } from '../catalog.ts';
import { decodeManifest, type Manifest, manifestKey } from '../manifest.ts';
import { integrityError } from '../pipeline/format.ts';
import { type MasterKey, unwrapDataKey } from '../pipeline/keys.ts';
import { formatBytes, type Progress, progressReporter } from '../pipeline/progress.ts';
import { readBackup } from '../pipeline/reader.ts';
import { watchChild } from './child.ts';
import { planRestore } from './plan.ts';
import type { BackupStore } from '../store.ts';

export interface RestoreBackupOptions {
  readonly store: BackupStore;
  readonly master: MasterKey;
  /** The backup to restore (full, incremental or differential). */
  readonly id: string;
  /** The datadir to create: absent or empty. */
  readonly into: string;
  readonly mbstream?: string;
  readonly mariadbBackup?: string;
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  /** One line per step, for a human (the CLI prints them); logs get the same at info level. */
  readonly onLine?: (line: string) => void;
  /** Byte progress while a backup is fetched and extracted; default a progressReporter per backup. */
  readonly onProgress?: (id: string, p: Progress) => void;
}

export interface RestoreBackupResult {
  readonly into: string;
  /** The backups applied, full first. */
  readonly chain: readonly string[];
  /** The restored data's position: the target backup's GTID set and binlog coordinates (the start of a replay). */
  readonly gtid: string | null;
  readonly binlog: { readonly file: string; readonly position: bigint } | null;
  readonly storedBytes: bigint;
  readonly plaintextBytes: number;
  readonly seconds: number;
}

/** The restore chain of `id` read from the store's manifests, full first. */
export async function resolveChain(store: BackupStore, id: string): Promise<Manifest[]> {
  const out: Manifest[] = [];
  const seen = new Set<string>();
  for (let cur: string | null = id; cur !== null; ) {
    if (seen.has(cur)) throw chainError(id, `its chain loops at '${cur}'`);
    seen.add(cur);
    const m = await readManifest(store, cur, id);
    out.unshift(m);
    cur = m.parent;
  }
  return out;
}

async function readManifest(store: BackupStore, id: string, target: string): Promise<Manifest> {
  let bytes: Buffer;
  try {
    bytes = await readAll(store, manifestKey(id));
  } catch (err) {
    if (!(err instanceof TidemarkError && err.code === 'IO' && err.context['missing'] === true)) throw err;
    if (id === target) {
      throw new TidemarkError(
        `no backup '${id}' in store ${store.name} (no manifest): see 'tidemark backup list', or check the store`,
        { code: 'BACKUP_NOT_FOUND', context: { id } },
      );
    }
    throw chainError(target, `its parent '${id}' has no manifest in store ${store.name}`);
  }
  const m = decodeManifest(bytes, manifestKey(id));
  if (m.id !== id) throw chainError(target, `the manifest under '${id}/' is of backup '${m.id}'`);
  return m;
}

function chainError(id: string, what: string): TidemarkError {
  return new TidemarkError(`backup '${id}' cannot be restored: ${what}`, {
    code: 'BACKUP_CHAIN_BROKEN',
    context: { id },
  });
}

function toolError(what: string, detail: string, context: Record<string, string> = {}): TidemarkError {
  return new TidemarkError(`restore: ${what}${detail ? `: ${detail.trim().split('\n').slice(-8).join(' | ')}` : ''}`, {
    code: 'BACKUP_RESTORE_TOOL',
    context,
  });
}

/** Every piece of these backups is in the store with the size its manifest lists (before anything is fetched). */
export async function checkPieces(store: BackupStore, manifests: readonly Manifest[]): Promise<void> {
  for (const m of manifests) {
    if (m.pieces.length === 0) {
      throw integrityError({ backupId: m.id, pieceKey: '(none)', piece: 0, chunk: 0 }, 'the manifest lists no piece');
    }
    for (const [i, p] of m.pieces.entries()) {
      const at = { backupId: m.id, pieceKey: p.key, piece: i + 1, chunk: 0 };
      const h = await store.head(p.key);
      if (h === null) throw integrityError(at, `the piece is missing from store ${store.name}`);
      if (h.size !== p.size)
        throw integrityError(at, `the piece is ${h.size} bytes in the store, ${p.size} are listed`);
    }
  }
}

/** The binary answers (it exists and runs); its name for messages. */
function checkTool(bin: string, args: string[]): void {
  const r = spawnSync(bin, args, { stdio: 'ignore', timeout: 30_000 });
  if (r.error !== undefined) {
    throw toolError(
      `cannot run '${bin}' (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`,
      'install the mariadb-backup package of the server version (it brings mbstream): compose/local/mariadb.sh install',
      { bin },
    );
  }
}

/** `into` absent (created) or an empty directory; returns whether restore created it. */
async function claimTarget(into: string): Promise<boolean> {
  try {
    const entries = await readdir(into);
    if (entries.length > 0) {
      throw new TidemarkError(
        `restore target '${into}' is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}): give an empty or new directory`,
        { code: 'BACKUP_RESTORE_TARGET', context: { into } },
      );
    }
    return false;
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') {
      throw new TidemarkError(`restore target '${into}' cannot be used (${code ?? String(err)})`, {
        code: 'BACKUP_RESTORE_TARGET',
        cause: err,
        context: { into },
      });
    }
  }
  await mkdir(into, { recursive: true, mode: 0o750 });
  return true;
}

/** A tool started with stdin as given, stdout ignored; its exit (code, signal or spawn error) and stderr's tail. */
function startTool(bin: string, args: string[], stdin: 'pipe' | 'ignore', signal?: AbortSignal) {
  const child = spawn(bin, args, { stdio: [stdin, 'ignore', 'pipe'], signal });
  return { child, ...watchChild(child) };
}

/** Runs a tool to its end; stderr's tail goes into the error when it fails. */
async function run(bin: string, args: string[], what: string, signal?: AbortSignal): Promise<void> {
  const t = startTool(bin, args, 'ignore', signal);
  const code = await t.exited;
  if (code !== 0) throw toolError(`${what} failed (exit ${String(code)})`, t.tail(), { bin });
}

/**
 * Streams one backup's verified plaintext into `mbstream -x -C dir`. On a reader failure mbstream is killed (its
 * partial output is removed by the caller); on an mbstream failure its stderr is in the error.
 */
async function extract(
  o: RestoreBackupOptions,
  bin: string,
  m: Manifest,
  dataKey: Buffer,
  dir: string,
  onProgress: (p: Progress) => void,
): Promise<number> {
  const { child, exited, tail } = startTool(bin, ['-x', '-C', dir], 'pipe');
  let bytes = 0;
  const src = readBackup({
    store: o.store,
    backupId: m.id,
    dataKey,
    pieces: m.pieces,
    signal: o.signal,
    onProgress: (p) => {
      bytes = p.bytes;
      onProgress(p);
    },
  });
  try {
    await pipeline(src, child.stdin as NodeJS.WritableStream);
  } catch (err) {
    child.kill('SIGKILL');
    const code = await exited;
    // mbstream gone first (EPIPE on its stdin): its own complaint is the news.
    if (!(err instanceof TidemarkError) && code !== 0 && tail() !== '') {
      throw toolError(`mbstream -x of '${m.id}' failed (exit ${String(code)})`, tail(), { id: m.id });
    }
    throw err;
  }
  const code = await exited;
  if (code !== 0) throw toolError(`mbstream -x of '${m.id}' failed (exit ${String(code)})`, tail(), { id: m.id });
  return bytes;
}

/** Restores backup `id` of the store into `into` (see the module comment). */
export async function restoreBackup(o: RestoreBackupOptions): Promise<RestoreBackupResult> {
  const log = (o.log ?? silentLogger).child({ component: 'backup-restore', id: o.id });
  const say = (line: string, fields: Record<string, unknown> = {}): void => {
    log.info(fields, line);
    o.onLine?.(line);
  };
  const t0 = Date.now();
  const into = resolve(o.into);
  const mbstream = o.mbstream ?? 'mbstream';
  const mariadbBackup = o.mariadbBackup ?? 'mariadb-backup';

  const plan = planRestore(await resolveChain(o.store, o.id));
  // Every key first: a wrong master key is refused before any piece is fetched or anything written.
  const keys = plan.steps.map((s) => unwrapDataKey(o.master, s.encryption, s.manifest.id));
  await checkPieces(
    o.store,
    plan.steps.map((s) => s.manifest),
  );
  checkTool(mbstream, ['--help']);
  checkTool(mariadbBackup, ['--version']);
  say(
    `restore ${o.id}: chain of ${plan.steps.length} (${plan.steps.map((s) => s.role).join(' → ')}), ` +
      `${plan.pieces} pieces, ${formatBytes(Number(plan.storedBytes))} stored, into ${into}`,
    { chain: plan.steps.map((s) => s.manifest.id), storedBytes: String(plan.storedBytes) },
  );

  const created = await claimTarget(into);
  let work: string | undefined;
  let plaintext = 0;
  try {
    const dirs: string[] = [];
    for (const [i, step] of plan.steps.entries()) {
      const m = step.manifest;
      let dir = into;
      if (step.role !== 'full') {
        work ??= await mkdtemp(join(dirname(into), `.${basename(into)}.restore-`));
        dir = join(work, `${i}-${step.role}`);
        await mkdir(dir);
      }
      say(`extracting ${step.role} ${m.id} (${i + 1}/${plan.steps.length}, ${m.pieces.length} pieces)`);
      const report = o.onProgress
        ? (p: Progress) => o.onProgress?.(m.id, p)
        : progressReporter({ label: `restore ${step.role} ${m.id}`, log });
      plaintext += await extract(o, mbstream, m, keys[i] as Buffer, dir, report);
      dirs.push(dir);
    }
    say(`preparing the full ${plan.steps[0]?.manifest.id}`);
    await run(
      mariadbBackup,
      ['--no-defaults', '--prepare', `--target-dir=${into}`],
      'mariadb-backup --prepare',
      o.signal,
    );
    for (const [i, step] of plan.steps.entries()) {
      if (i === 0) continue;
      say(`applying ${step.role} ${step.manifest.id}`);
      await run(
        mariadbBackup,
        ['--no-defaults', '--prepare', `--target-dir=${into}`, `--incremental-dir=${dirs[i]}`],
        `mariadb-backup --prepare --incremental-dir of '${step.manifest.id}'`,
        o.signal,
      );
    }
  } catch (err) {
    // Nothing of a failed restore stays: not the extracted (verified) files, not a half-prepared datadir.
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    if (created) await rm(into, { recursive: true, force: true });
    else for (const e of await readdir(into)) await rm(join(into, e), { recursive: true, force: true });
    log.error({ err }, 'restore failed; removed what it had written');
    throw err;
  }
  if (work !== undefined) await rm(work, { recursive: true, force: true });
  const t = plan.target;
  const result: RestoreBackupResult = {
    into,
    chain: plan.steps.map((s) => s.manifest.id),
    gtid: t.gtid,
    binlog: t.binlog,
    storedBytes: plan.storedBytes,
    plaintextBytes: plaintext,
    seconds: (Date.now() - t0) / 1000,
  };
  say(
    `done: ${into} is a prepared datadir as of ${t.id} (GTID ${t.gtid ?? 'none'}` +
      `${t.binlog ? `, binlog ${t.binlog.file}:${t.binlog.position}` : ''}) in ${result.seconds.toFixed(1)} s`,
  );
  return result;
}
