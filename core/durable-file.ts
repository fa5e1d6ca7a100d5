/**
 * The one way tidemark replaces a file so that a crash leaves either the old or the new content, never a mix or
 * nothing: write a temp file beside it, fsync it, rename it over the file, fsync the directory (so the rename
 * itself survives a power cut). On any failure the temp file is removed and the old file stays as it was.
 *
 * `sync: false` keeps the atomic rename but skips both fsyncs: for advisory state rewritten often, where losing
 * the latest version in a power cut is fine.
 */
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface DurableWriteOptions {
  /** The temp file; default `<file>.tmp` (same directory, so the rename stays on one file system). */
  readonly tmp?: string;
  /** Mode the temp (and so the file) is created with. */
  readonly mode?: number;
  /** Remove a stale temp file first and create the temp exclusively (`wx`). */
  readonly exclusive?: boolean;
  /** Default true: fsync the file before and the directory after the rename. */
  readonly sync?: boolean;
}

/** fsyncs a directory, so that creations, renames and removals in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces `file` with `data` (see the module comment). */
export async function writeFileDurable(
  file: string,
  data: string | Uint8Array,
  o: DurableWriteOptions = {},
): Promise<void> {
  const f = await openDurable(file, o);
  try {
    await f.fh.writeFile(data);
  } catch (err) {
    await f.abort();
    throw err;
  }
  await f.commit();
}

/** A temp file being written in pieces; `commit()` puts it in place of the file, `abort()` removes it. */
export interface DurableFile {
  readonly fh: FileHandle;
  readonly tmp: string;
  /** fsync, close, rename over the file, fsync the directory; removes the temp file if any step fails. */
  commit(): Promise<void>;
  /** Closes and removes the temp file; the old file stays. Never throws. */
  abort(): Promise<void>;
}

/** Opens the temp file for content written in pieces (streamed); see DurableFile. */
export async function openDurable(file: string, o: DurableWriteOptions = {}): Promise<DurableFile> {
  const tmp = o.tmp ?? `${file}.tmp`;
  const sync = o.sync ?? true;
  if (o.exclusive) await rm(tmp, { force: true });
  const fh = await open(tmp, o.exclusive ? 'wx' : 'w', o.mode);
  const abort = async () => {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
  };
  return {
    fh,
    tmp,
    abort,
    async commit() {
      try {
        if (sync) await fh.sync();
        await fh.close();
        await rename(tmp, file);
      } catch (err) {
        await abort();
        throw err;
      }
      if (sync) await fsyncDir(dirname(file));
    },
  };
}
