/**
 * The backup catalog: a node:sqlite cache of the manifests and stars in one BackupStore. The store is the truth —
 * `rebuild(store)` lists it and replaces the cache; a backup without a manifest does not exist (its objects are
 * orphans, collected by `expire` after a grace period). The key layout is in backup/manifest.ts.
 *
 * Queries: list (by job, type), show, chainOf (the restore chain, full first), the retention input of a job.
 * Changes go to the store first, then the cache: star/unstar write or delete `<id>/star.json`. Starring an
 * incremental pins its parents: retention (backup/retention.ts) keeps a star's whole restore chain.
 *
 * Tables: meta(k, v) holds the store's name (a cache opened for another store is refused) and the rebuild time;
 * backups(id, job, type, parent, chain, started_ms, ended_ms, bytes, manifest = the stored JSON); stars(id, kind,
 * note, starred_ms).
 */
import { Readable } from 'node:stream';
import { DatabaseSync } from 'node:sqlite';
import type { Logger } from 'pino';
import { TidemarkError } from '../core/errors.ts';
import { silentLogger } from '../core/log.ts';
import {
  type BackupType,
  decodeManifest,
  decodeStar,
  encodeStar,
  type Manifest,
  manifestKey,
  parseBackupId,
  type Star,
  type StarKind,
  starKey,
} from './manifest.ts';
import type { RetainedType, RetentionBackup, RetentionLog } from './retention.ts';
import type { BackupStore, StoredObject } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS backups(id TEXT PRIMARY KEY, job TEXT NOT NULL, type TEXT NOT NULL, parent TEXT,
  chain TEXT NOT NULL, started_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL, bytes TEXT NOT NULL,
  manifest TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS backups_job ON backups(job, started_ms);
CREATE TABLE IF NOT EXISTS stars(id TEXT PRIMARY KEY, kind TEXT NOT NULL, note TEXT NOT NULL,
  starred_ms INTEGER NOT NULL) WITHOUT ROWID;
`;

export interface BackupSummary {
  readonly id: string;
  readonly job: string;
  readonly type: BackupType;
  readonly parent: string | null;
  readonly chain: string;
  readonly startedAt: Date;
  readonly endedAt: Date;
  /** Sum of the pieces' sizes as stored. */
  readonly bytes: bigint;
  readonly star: Star | null;
}

/** Something found while listing the store that is not a sound backup. */
export interface StoreProblem {
  readonly key: string;
  readonly problem: string;
}

export interface RebuildReport {
  readonly backups: number;
  readonly stars: number;
  /** Manifests that do not decode, and pieces a manifest lists that are missing or of another size. */
  readonly damaged: readonly StoreProblem[];
}

export interface Orphan {
  readonly key: string;
  readonly size: bigint;
  readonly reason: string;
}

interface Row {
  id: string;
  manifest: string;
}

function notFound(id: string): TidemarkError {
  return new TidemarkError(`no backup '${id}' in the catalog (no manifest in the store): see 'tidemark backup list'`, {
    code: 'BACKUP_NOT_FOUND',
    context: { id },
  });
}

/** The whole of one (small) stored object: a manifest, a star. */
export async function readAll(store: BackupStore, key: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of await store.get(key)) parts.push(Buffer.from(p as Buffer));
  return Buffer.concat(parts);
}

/** Lists the whole store grouped by backup prefix (the first path segment). */
async function listByPrefix(store: BackupStore): Promise<Map<string, StoredObject[]>> {
  const groups = new Map<string, StoredObject[]>();
  for await (const o of store.list('')) {
    const slash = o.key.indexOf('/');
    const prefix = slash < 0 ? o.key : o.key.slice(0, slash);
    groups.set(prefix, [...(groups.get(prefix) ?? []), o]);
  }
  return groups;
}

/** How long a cache operation waits for another process's lock (SQLITE_BUSY) before it fails. */
export const BUSY_TIMEOUT_MS = 30_000;

export class Catalog {
  readonly #db: DatabaseSync;
  readonly #log: Logger;
  readonly #storeName: string;

  /** Opens (creating) the cache at `path` (':memory:' for none) for the store named `storeName`. */
  constructor(path: string, storeName: string, log: Logger = silentLogger) {
    // Several processes share a cache (`tidemark run`'s archivers and scheduler, a `backup run` by hand): wait for
    // a lock instead of failing, readers beside the writer (WAL), and take the write lock up front in a rebuild.
    this.#db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
    if (path !== ':memory:') this.#db.exec('PRAGMA journal_mode = WAL');
    this.#db.exec(SCHEMA);
    this.#log = log.child({ component: 'backup-catalog' });
    this.#storeName = storeName;
    const row = this.#db.prepare("SELECT v FROM meta WHERE k = 'store'").get() as { v: string } | undefined;
    if (row !== undefined && row.v !== storeName) {
      this.#db.close();
      throw new TidemarkError(
        `catalog cache '${path}' belongs to store '${row.v}', not '${storeName}': use another cache file`,
        {
          code: 'CONFIG',
          context: { path },
        },
      );
    }
  }

  close(): void {
    this.#db.close();
  }

  /** Replaces the cache with what the store holds. */
  async rebuild(store: BackupStore): Promise<RebuildReport> {
    this.#checkStore(store);
    const groups = await listByPrefix(store);
    const manifests: Array<{ m: Manifest; json: string }> = [];
    const stars: Star[] = [];
    const damaged: StoreProblem[] = [];
    for (const [prefix, objects] of groups) {
      const keys = new Map(objects.map((o) => [o.key, o.size]));
      if (!keys.has(manifestKey(prefix))) continue;
      let m: Manifest;
      try {
        const bytes = await readAll(store, manifestKey(prefix));
        m = decodeManifest(bytes, manifestKey(prefix));
        if (m.id !== prefix)
          throw new TidemarkError(`manifest id '${m.id}' is stored under '${prefix}/'`, { code: 'BACKUP_MANIFEST' });
        manifests.push({ m, json: bytes.toString() });
      } catch (err) {
        damaged.push({ key: manifestKey(prefix), problem: err instanceof Error ? err.message : String(err) });
        continue;
      }
      for (const p of m.pieces) {
        const size = keys.get(p.key);
        if (size === undefined) damaged.push({ key: p.key, problem: `piece of '${m.id}' is missing` });
        else if (size !== p.size)
          damaged.push({ key: p.key, problem: `piece of '${m.id}' has ${size} bytes, manifest says ${p.size}` });
      }
      if (keys.has(starKey(prefix))) {
        try {
          const s = decodeStar(await readAll(store, starKey(prefix)), starKey(prefix));
          if (s.id === prefix) stars.push(s);
          else damaged.push({ key: starKey(prefix), problem: `star names '${s.id}'` });
        } catch (err) {
          damaged.push({ key: starKey(prefix), problem: err instanceof Error ? err.message : String(err) });
        }
      }
    }
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      this.#db.exec('DELETE FROM backups; DELETE FROM stars;');
      for (const { m, json } of manifests) this.#insert(m, json);
      for (const s of stars) this.#insertStar(s);
      const meta = this.#db.prepare('INSERT OR REPLACE INTO meta(k, v) VALUES (?, ?)');
      meta.run('store', this.#storeName);
      meta.run('rebuilt_at', new Date().toISOString());
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
    for (const d of damaged) this.#log.warn({ objectKey: d.key, problem: d.problem }, 'backup store object is damaged');
    this.#log.info(
      { backups: manifests.length, stars: stars.length, damaged: damaged.length, store: store.name },
      'catalog rebuilt',
    );
    return { backups: manifests.length, stars: stars.length, damaged };
  }

  /** Backups oldest first, optionally of one job and/or type. */
  list(filter: { readonly job?: string; readonly type?: BackupType } = {}): BackupSummary[] {
    const rows = this.#db
      .prepare(
        `SELECT b.*, s.kind, s.note, s.starred_ms FROM backups b LEFT JOIN stars s ON s.id = b.id
         WHERE (:job IS NULL OR b.job = :job) AND (:type IS NULL OR b.type = :type) ORDER BY b.started_ms, b.id`,
      )
      .all({ job: filter.job ?? null, type: filter.type ?? null }) as Array<Record<string, string | number | null>>;
    return rows.map((r) => ({
      id: String(r['id']),
      job: String(r['job']),
      type: r['type'] as BackupType,
      parent: r['parent'] === null ? null : String(r['parent']),
      chain: String(r['chain']),
      startedAt: new Date(Number(r['started_ms'])),
      endedAt: new Date(Number(r['ended_ms'])),
      bytes: BigInt(String(r['bytes'])),
      star:
        r['kind'] === null || r['kind'] === undefined
          ? null
          : {
              id: String(r['id']),
              kind: r['kind'] as StarKind,
              note: String(r['note']),
              starredAt: new Date(Number(r['starred_ms'])),
            },
    }));
  }

  has(id: string): boolean {
    return this.#db.prepare('SELECT 1 FROM backups WHERE id = ?').get(id) !== undefined;
  }

  /** The manifest and star of one backup; BACKUP_NOT_FOUND when it has no manifest. */
  show(id: string): { manifest: Manifest; star: Star | null } {
    const row = this.#db.prepare('SELECT id, manifest FROM backups WHERE id = ?').get(id) as Row | undefined;
    if (row === undefined) throw notFound(id);
    return { manifest: decodeManifest(row.manifest, manifestKey(id)), star: this.#star(id) };
  }

  /** The restore chain of a backup, full (or logical/log root) first, the backup itself last. */
  chainOf(id: string): Manifest[] {
    const out: Manifest[] = [this.show(id).manifest];
    for (let cur = out[0] as Manifest; cur.parent !== null; ) {
      if (!this.has(cur.parent)) {
        throw new TidemarkError(
          `backup '${id}' cannot be restored: its parent '${cur.parent}' (of '${cur.id}') has no manifest`,
          {
            code: 'BACKUP_CHAIN_BROKEN',
            context: { id, parent: cur.parent },
          },
        );
      }
      cur = this.show(cur.parent).manifest;
      out.unshift(cur);
    }
    return out;
  }

  /** Stars a backup: writes `<id>/star.json` (replacing an earlier star), then the cache. */
  async star(store: BackupStore, id: string, kind: StarKind, note: string, now: Date): Promise<Star> {
    this.#checkStore(store);
    if (!this.has(id)) throw notFound(id);
    const star: Star = { id, kind, note, starredAt: now };
    await store.put(starKey(id), Readable.from([encodeStar(star)]));
    this.#db.prepare('DELETE FROM stars WHERE id = ?').run(id);
    this.#insertStar(star);
    this.#log.info({ id, kind, pins: this.chainOf(id).length - 1 }, 'backup starred');
    return star;
  }

  /** Removes a star (store first). Unstarring a backup that has none is not an error. */
  async unstar(store: BackupStore, id: string): Promise<void> {
    this.#checkStore(store);
    if (!this.has(id)) throw notFound(id);
    await store.delete(starKey(id));
    this.#db.prepare('DELETE FROM stars WHERE id = ?').run(id);
    this.#log.info({ id }, 'backup unstarred');
  }

  /**
   * Objects no manifest accounts for: everything under a backup prefix without a manifest once the id's start
   * time is older than `graceMs` (younger ones may be a backup still being written), and keys under a sealed
   * backup's prefix that its manifest does not list. Prefixes that are not tidemark backup ids are left alone.
   */
  async orphans(store: BackupStore, now: Date, graceMs: number): Promise<Orphan[]> {
    this.#checkStore(store);
    const out: Orphan[] = [];
    for (const [prefix, objects] of await listByPrefix(store)) {
      const parsed = parseBackupId(prefix);
      if (parsed === null) continue;
      const sealed = objects.some((o) => o.key === manifestKey(prefix));
      if (!sealed) {
        const age = now.getTime() - parsed.startedAt.getTime();
        if (age <= graceMs) continue;
        const why = `no manifest, started ${Math.round(age / 60_000)} min ago (grace ${Math.round(graceMs / 60_000)} min)`;
        for (const o of objects) out.push({ key: o.key, size: o.size, reason: why });
        continue;
      }
      if (!this.has(prefix)) continue; // a manifest the cache could not read: a human looks (rebuild reports it)
      const listed = new Set([
        manifestKey(prefix),
        starKey(prefix),
        ...this.show(prefix).manifest.pieces.map((p) => p.key),
      ]);
      for (const o of objects)
        if (!listed.has(o.key))
          out.push({ key: o.key, size: o.size, reason: `not listed in the manifest of '${prefix}'` });
    }
    return out;
  }

  /** What retention needs for one job: its restorable backups, and the log backups of `logJob`. */
  retentionInput(job: string, logJob?: string): { backups: RetentionBackup[]; logs: RetentionLog[] } {
    const backups = this.list({ job })
      .filter((b) => b.type !== 'log')
      .map((b) => ({
        id: b.id,
        type: b.type as RetainedType,
        parent: b.parent,
        start: b.startedAt.getTime(),
        end: b.endedAt.getTime(),
        star: b.star?.kind ?? null,
      }));
    const logs =
      logJob === undefined
        ? []
        : this.list({ job: logJob, type: 'log' }).map((b) => {
            const l = this.show(b.id).manifest.log;
            if (l === null)
              throw new TidemarkError(`log backup '${b.id}' has no log range`, { code: 'BACKUP_MANIFEST' });
            return { id: b.id, seq: l.seq, start: l.firstCommit.getTime(), end: l.lastCommit.getTime() };
          });
    return { backups, logs };
  }

  /** Adds a backup just sealed (its manifest bytes as written to the store) without a full rebuild. */
  record(manifestBytes: Buffer): Manifest {
    const m = decodeManifest(manifestBytes);
    this.#db.prepare('DELETE FROM backups WHERE id = ?').run(m.id);
    this.#insert(m, manifestBytes.toString());
    return m;
  }

  /** Drops a backup from the cache (after `expire` deleted its manifest). */
  forget(id: string): void {
    this.#db.prepare('DELETE FROM backups WHERE id = ?').run(id);
    this.#db.prepare('DELETE FROM stars WHERE id = ?').run(id);
  }

  #checkStore(store: BackupStore): void {
    if (store.name !== this.#storeName) {
      throw new TidemarkError(`catalog of store '${this.#storeName}' used with store '${store.name}'`, {
        code: 'INTERNAL',
      });
    }
  }

  #star(id: string): Star | null {
    const r = this.#db.prepare('SELECT kind, note, starred_ms FROM stars WHERE id = ?').get(id) as
      | { kind: StarKind; note: string; starred_ms: number }
      | undefined;
    return r === undefined ? null : { id, kind: r.kind, note: r.note, starredAt: new Date(Number(r.starred_ms)) };
  }

  #insert(m: Manifest, json: string): void {
    const bytes = m.pieces.reduce((n, p) => n + p.size, 0n);
    this.#db
      .prepare(
        'INSERT INTO backups(id, job, type, parent, chain, started_ms, ended_ms, bytes, manifest) VALUES (?,?,?,?,?,?,?,?,?)',
      )
      .run(m.id, m.job, m.type, m.parent, m.chain, m.startedAt.getTime(), m.endedAt.getTime(), String(bytes), json);
  }

  #insertStar(s: Star): void {
    this.#db
      .prepare('INSERT INTO stars(id, kind, note, starred_ms) VALUES (?,?,?,?)')
      .run(s.id, s.kind, s.note, s.starredAt.getTime());
  }
}
