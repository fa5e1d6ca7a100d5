/**
 * The directory backup store: one file per key under a root directory (a local disk, an NFS or SMB mount). An
 * object appears only complete: put() streams into `<root>/.tmp/<uuid>`, fsyncs it, renames it to its key and
 * fsyncs the directory; putIfAbsent() links the fsynced temp file to its key, which fails if anything is there
 * (link never replaces) — so a manifest, once written, is never overwritten. A crash mid-put leaves at most a
 * temp file under `.tmp/` (never listed; removed by sweepTemp()).
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncDir } from '../../core/durable-file.ts';
import { TidemarkError } from '../../core/errors.ts';
import type { BackupStore, GetRange, StoredObject } from '../store.ts';
import { checkKey, checkPrefix, missingKey } from './common.ts';

const TMP = '.tmp';
const TRANSIENT = new Set(['EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'EINTR']);

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export class DirStore implements BackupStore {
  readonly name: string;
  readonly #root: string;

  private constructor(root: string) {
    this.#root = root;
    this.name = `dir:${root}`;
  }

  /** Opens (creating it if needed) the store at `root`. */
  static async open(root: string): Promise<DirStore> {
    const s = new DirStore(root);
    try {
      await mkdir(join(root, TMP), { recursive: true });
    } catch (err) {
      throw s.#ioError(`cannot create the store directory`, '', err);
    }
    return s;
  }

  #ioError(what: string, key: string, cause: unknown): TidemarkError {
    const code = errno(cause);
    return new TidemarkError(`backup store ${this.name}: ${what}${key ? ` '${key}'` : ''} (${code ?? String(cause)})`, {
      code: 'IO',
      retriable: code !== undefined && TRANSIENT.has(code),
      cause,
      context: { store: this.name, key, errno: code },
    });
  }

  #path(key: string): string {
    checkKey(key);
    return join(this.#root, key);
  }

  #tmp(): string {
    return join(this.#root, TMP, randomUUID());
  }

  async put(key: string, body: Readable, opts: { readonly signal?: AbortSignal } = {}): Promise<StoredObject> {
    const path = this.#path(key);
    const tmp = this.#tmp();
    try {
      await mkdir(dirname(path), { recursive: true });
      // flush: the stream fsyncs the file before closing it.
      const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600, flush: true });
      await pipeline(body, out, opts.signal ? { signal: opts.signal } : {});
      const st = await stat(tmp, { bigint: true });
      await rename(tmp, path).catch(async (err: unknown) => {
        if (errno(err) !== 'ENOENT') throw err;
        await mkdir(dirname(path), { recursive: true }); // a delete() emptied and removed the directory meanwhile
        await rename(tmp, path);
      });
      await fsyncDir(dirname(path));
      return { key, size: st.size };
    } catch (err) {
      const bodyFailed = body.errored !== null; // the body's own error is not a store error: passed on as it is
      body.destroy();
      await rm(tmp, { force: true }).catch(() => undefined);
      if (opts.signal?.aborted) {
        throw new TidemarkError(`backup store ${this.name}: put of '${key}' aborted`, {
          code: 'ABORTED',
          cause: opts.signal.reason,
          context: { store: this.name, key },
        });
      }
      throw err instanceof TidemarkError || bodyFailed ? err : this.#ioError('cannot write', key, err);
    }
  }

  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    const path = this.#path(key);
    const tmp = this.#tmp();
    try {
      await mkdir(dirname(path), { recursive: true });
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await link(tmp, path); // never replaces: EEXIST when something is there
      } catch (err) {
        if (errno(err) === 'EEXIST') return false;
        throw err;
      }
      await fsyncDir(dirname(path));
      return true;
    } catch (err) {
      throw this.#ioError('cannot write', key, err);
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  async get(key: string, range?: GetRange): Promise<Readable> {
    const path = this.#path(key);
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(path, 'r');
      if (!(await fh.stat()).isFile()) {
        await fh.close();
        throw missingKey(this.name, key);
      }
    } catch (err) {
      if (err instanceof TidemarkError) throw err;
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') throw missingKey(this.name, key, err);
      throw this.#ioError('cannot read', key, err);
    }
    return fh.createReadStream({
      start: range === undefined ? 0 : Number(range.start),
      end: range?.end === undefined ? Number.POSITIVE_INFINITY : Number(range.end),
      highWaterMark: 1 << 20,
    });
  }

  async head(key: string): Promise<StoredObject | null> {
    const path = this.#path(key);
    try {
      const st = await stat(path, { bigint: true });
      return st.isFile() ? { key, size: st.size } : null;
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return null;
      throw this.#ioError('cannot stat', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    checkPrefix(prefix);
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/') + 1) : '';
    const keys: string[] = [];
    await this.#walk(base, prefix, keys);
    keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const key of keys) {
      const o = await this.head(key);
      if (o !== null) yield o; // deleted meanwhile: skipped
    }
  }

  async #walk(dir: string, prefix: string, out: string[]): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(join(this.#root, dir), { withFileTypes: true });
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
      throw this.#ioError('cannot list', dir, err);
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue; // .tmp/ and anything not written by put
      const key = `${dir}${e.name}`;
      if (e.isDirectory()) {
        const sub = `${key}/`;
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) await this.#walk(sub, prefix, out);
      } else if (e.isFile() && key.startsWith(prefix)) {
        out.push(key);
      }
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.#path(key);
    try {
      await unlink(path);
    } catch (err) {
      if (errno(err) === 'ENOENT') return;
      throw this.#ioError('cannot delete', key, err);
    }
    // Empty directories left behind go too (up to the root); a concurrent put recreates what it needs.
    for (let d = dirname(key); d !== '.' && d !== ''; d = dirname(d)) {
      if (
        !(await rmdir(join(this.#root, d)).then(
          () => true,
          () => false,
        ))
      )
        break;
    }
  }

  /** Removes temp files older than `olderThanMs` (left by a crash mid-put); returns how many. */
  async sweepTemp(olderThanMs = 24 * 3600_000): Promise<number> {
    const dir = join(this.#root, TMP);
    let n = 0;
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st !== undefined && Date.now() - st.mtimeMs > olderThanMs) {
        await rm(join(dir, name), { force: true });
        n++;
      }
    }
    return n;
  }

  async close(): Promise<void> {}
}
