/**
 * Named reader cursors (e.g. "apply:replica1"): the last LSN a consumer acknowledged, one small JSON file per
 * cursor in `<journal dir>/cursors/`. Updates are atomic: write a temp file, fsync it, rename it over the cursor,
 * fsync the directory. A reader resumes at lsn + 1. Retention keeps every frame above the lowest cursor.
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeFileDurable } from '../core/durable-file.ts';
import { CorruptionError, TidemarkError } from '../core/errors.ts';

export const CURSORS_DIR = 'cursors';
const SUFFIX = '.cursor';
const NAME_RE = /^[A-Za-z0-9_@:-][A-Za-z0-9_.@:-]{0,127}$/;

export interface CursorInfo {
  readonly name: string;
  /** Last acknowledged LSN (0n: nothing yet). */
  readonly lsn: bigint;
  /** ISO time of the last update. */
  readonly updatedAt: string;
  /**
   * Where frame `lsn` starts (its segment and the header's byte offset), when the consumer knew it: a hint that
   * lets the next reader start there instead of scanning the segment from its beginning (check it before use,
   * e.g. with readFrameAt: the journal may have been cut and rewritten since).
   */
  readonly at?: FrameAt;
}

export interface FrameAt {
  readonly segment: bigint;
  readonly offset: number;
}

export function checkCursorName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new TidemarkError(
      `journal cursor name "${name}" must be 1-128 letters, digits or "_.@:-" and not start with "."`,
      { code: 'CONFIG' },
    );
  }
}

export function formatCursor(c: CursorInfo): string {
  const at = c.at ? { at: { segment: c.at.segment.toString(), offset: c.at.offset } } : {};
  return `${JSON.stringify({ name: c.name, lsn: c.lsn.toString(), updatedAt: c.updatedAt, ...at })}\n`;
}

/** A well-formed `at` of a cursor file, or undefined (an older file has none; a bad one is only a lost hint). */
function parseAt(raw: unknown): FrameAt | undefined {
  const a = raw as { segment?: unknown; offset?: unknown } | null | undefined;
  if (!a || typeof a.segment !== 'string' || !/^\d+$/.test(a.segment)) return undefined;
  if (typeof a.offset !== 'number' || !Number.isSafeInteger(a.offset) || a.offset < 0) return undefined;
  return { segment: BigInt(a.segment), offset: a.offset };
}

export function parseCursor(text: string, file: string): CursorInfo {
  let raw: { name?: unknown; lsn?: unknown; updatedAt?: unknown; at?: unknown } | null;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CorruptionError(`cursor file ${file}: not valid JSON`, { file }, err);
  }
  if (!raw || typeof raw.name !== 'string' || typeof raw.lsn !== 'string' || !/^\d+$/.test(raw.lsn)) {
    throw new CorruptionError(`cursor file ${file}: expected {"name", "lsn" (decimal string), "updatedAt"}`, {
      file,
    });
  }
  const at = parseAt(raw.at);
  return {
    name: raw.name,
    lsn: BigInt(raw.lsn),
    updatedAt: typeof raw.updatedAt === 'string' ? raw.updatedAt : '',
    ...(at ? { at } : {}),
  };
}

export class CursorStore {
  readonly dir: string;
  /** Per-name chain of updates, so concurrent set() calls of one name land in call order. */
  private readonly chains = new Map<string, Promise<void>>();
  private tmpSeq = 0;

  /** `journalDir`: the journal's directory; cursors live in its `cursors/` subdirectory. */
  constructor(journalDir: string) {
    this.dir = join(journalDir, CURSORS_DIR);
  }

  private file(name: string): string {
    return join(this.dir, `${name}${SUFFIX}`);
  }

  /** The acknowledged LSN of `name`, or null when the cursor does not exist. */
  async get(name: string): Promise<bigint | null> {
    checkCursorName(name);
    return (await this.read(name))?.lsn ?? null;
  }

  async read(name: string): Promise<CursorInfo | null> {
    const file = this.file(name);
    try {
      return parseCursor(await readFile(file, 'utf8'), file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /**
   * Durably records `lsn` as acknowledged by `name` (creating the cursor), with where frame `lsn` starts when the
   * caller knows it. Resolves once it is on disk.
   */
  set(name: string, lsn: bigint, at?: FrameAt): Promise<void> {
    checkCursorName(name);
    if (lsn < 0n) throw new TidemarkError(`journal cursor ${name}: LSN must not be negative`, { code: 'USAGE' });
    const prev = this.chains.get(name) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => this.write(name, lsn, at));
    this.chains.set(name, next);
    void next
      .finally(() => {
        if (this.chains.get(name) === next) this.chains.delete(name);
      })
      .catch(() => undefined);
    return next;
  }

  private async write(name: string, lsn: bigint, at: FrameAt | undefined): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = this.file(name);
    const tmp = join(this.dir, `.${name}.${process.pid}.${++this.tmpSeq}.tmp`);
    const info = { name, lsn, updatedAt: new Date().toISOString(), ...(at ? { at } : {}) };
    await writeFileDurable(file, formatCursor(info), { tmp });
  }

  /** Every cursor, sorted by name. Temp files of interrupted updates are ignored. */
  async list(): Promise<CursorInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: CursorInfo[] = [];
    for (const n of names.sort()) {
      if (n.startsWith('.') || !n.endsWith(SUFFIX)) continue;
      const c = await this.read(n.slice(0, -SUFFIX.length));
      if (c) out.push(c);
    }
    return out;
  }

  /** Deletes a cursor (it no longer holds back retention). Returns whether it existed. */
  async remove(name: string): Promise<boolean> {
    checkCursorName(name);
    try {
      await unlink(this.file(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    await fsyncDir(this.dir);
    return true;
  }
}
