/**
 * The rollback index's SQLite file: schema, connection settings, and what counts as a damaged file.
 *
 * Tables (all integers are read back as bigint):
 *   meta       k → v: "version" (INDEX_VERSION), "state" (state.ts)
 *   tables     one row per table named in the journal; pk = JSON array of primary-key columns as last seen in a
 *              rows entry (NULL when only DDL named it)
 *   txs        one row per indexed unit (source transaction), keyed by commit seq. hwm_us = the highest commit
 *              time up to and including this one: it never decreases along commit_seq, which turns "last commit
 *              at or before time T" into a bounded scan although commit times themselves may go back a little.
 *   tx_tables  (table, commit seq) for "transactions touching a table"
 *   entries    one row per rows/ddl entry: where its frame lies (segment, off), its seq and row count
 *   ddls       DDL statements by seq
 *   gens, changes
 *              one row per (row change, key): an update that changes the key has a row under both keys. The key
 *              is stored as its canonical text (key.ts), not as a hash: keyVersions is synchronous, so it
 *              could not read entries back to weed out hash collisions, and for the usual integer keys the text
 *              ('["12345"]', ~10 bytes) is as small as a 64-bit hash (measured: 2M changes, 52 MB text vs 49 MB
 *              hash, and inserting text was faster because no hash is computed).
 *              The primary key starts with a generation g = seq >> GEN_SHIFT (262,144 seqs): inserts land in
 *              the current generation's small B-tree instead of all over one big one. With random keys, one big
 *              tree made every 50k-change commit rewrite tens of MB of scattered pages (93k changes/s at 10M);
 *              per generation it stays cache-sized (≈240k changes/s). A key lookup probes each generation in
 *              `gens` (≈40 at 10M changes, ~0.1 ms in all), and pruning drops whole generations.
 */
import { renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { TidemarkError } from '../../core/errors.ts';

export const INDEX_FILE = 'rollback-index.sqlite';
export const INDEX_VERSION = 1;
export const GEN_SHIFT = 18;
export const GEN_SIZE = 2 ** GEN_SHIFT;

const SCHEMA = `
CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE tables(id INTEGER PRIMARY KEY, schema_name TEXT NOT NULL, table_name TEXT NOT NULL, pk TEXT,
  UNIQUE(schema_name, table_name));
CREATE TABLE txs(commit_seq INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, tx_id TEXT NOT NULL,
  commit_time_us INTEGER NOT NULL, capture_time_us INTEGER NOT NULL, hwm_us INTEGER NOT NULL,
  first_lsn INTEGER NOT NULL, commit_lsn INTEGER NOT NULL, phase TEXT NOT NULL, position TEXT NOT NULL,
  ins INTEGER NOT NULL, upd INTEGER NOT NULL, del INTEGER NOT NULL, ddl INTEGER NOT NULL, tables TEXT NOT NULL);
CREATE INDEX txs_hwm ON txs(hwm_us);
CREATE INDEX txs_tx_id ON txs(tx_id);
CREATE INDEX txs_commit_lsn ON txs(commit_lsn);
CREATE TABLE tx_tables(table_id INTEGER NOT NULL, commit_seq INTEGER NOT NULL, PRIMARY KEY(table_id, commit_seq))
  WITHOUT ROWID;
CREATE TABLE entries(lsn INTEGER PRIMARY KEY, segment INTEGER NOT NULL, off INTEGER NOT NULL, seq INTEGER NOT NULL,
  kind TEXT NOT NULL, nrows INTEGER NOT NULL, table_id INTEGER, op TEXT NOT NULL);
CREATE TABLE ddls(seq INTEGER PRIMARY KEY, lsn INTEGER NOT NULL, schema_name TEXT NOT NULL, sql TEXT NOT NULL,
  tx_id TEXT NOT NULL);
CREATE TABLE gens(g INTEGER PRIMARY KEY);
CREATE TABLE changes(g INTEGER NOT NULL, table_id INTEGER NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL,
  lsn INTEGER NOT NULL, PRIMARY KEY(g, table_id, key, seq)) WITHOUT ROWID;
`;

/** SQLite primary result codes that mean the file is not a usable database. */
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

/** True for an error of node:sqlite saying the file is damaged or not a database. */
export function isDamage(err: unknown): boolean {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' && ((code & 0xff) === SQLITE_CORRUPT || (code & 0xff) === SQLITE_NOTADB);
}

/** The index file is damaged, of another version, or no longer matches the journal: it must be rebuilt. */
export class IndexDamagedError extends TidemarkError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'INDEX_DAMAGED', retriable: true, cause });
    this.name = 'IndexDamagedError';
  }
}

export interface OpenOptions {
  busyTimeoutMs: number;
  cacheMb: number;
}

/**
 * Opens (creating if missing) the index file and checks its version. Throws IndexDamagedError for a file that is
 * damaged or of another version; other errors (permissions, disk) pass through.
 */
export function openDatabase(path: string, o: OpenOptions): DatabaseSync {
  let db: DatabaseSync | null = null;
  try {
    db = new DatabaseSync(path, { timeout: o.busyTimeoutMs, readBigInts: true });
    db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -${o.cacheMb * 1024};
      PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = OFF;`);
    const has = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").get();
    if (!has) {
      db.exec('BEGIN IMMEDIATE');
      // Another process may have created it between the check and the lock.
      if (!db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").get()) {
        db.exec(SCHEMA);
        db.prepare("INSERT INTO meta(k, v) VALUES ('version', ?)").run(String(INDEX_VERSION));
      }
      db.exec('COMMIT');
    }
    const v = db.prepare("SELECT v FROM meta WHERE k = 'version'").get() as { v: string } | undefined;
    if (v?.v !== String(INDEX_VERSION)) {
      throw new IndexDamagedError(
        `rollback index ${path}: version ${v?.v ?? 'missing'}, this build uses ${INDEX_VERSION}`,
      );
    }
    return db;
  } catch (err) {
    if (db?.isOpen) {
      if (db.isTransaction) db.exec('ROLLBACK');
      db.close();
    }
    if (err instanceof IndexDamagedError) throw err;
    if (isDamage(err)) throw new IndexDamagedError(`rollback index ${path}: ${(err as Error).message}`, err);
    throw err;
  }
}

/** Quick structural check (PRAGMA quick_check): O(size of the file), for long-lived processes at start-up. */
export function quickCheck(db: DatabaseSync, path: string): void {
  let rows: { quick_check: string }[];
  try {
    rows = db.prepare('PRAGMA quick_check(5)').all() as { quick_check: string }[];
  } catch (err) {
    if (isDamage(err)) throw new IndexDamagedError(`rollback index ${path}: ${(err as Error).message}`, err);
    throw err;
  }
  if (rows.length !== 1 || rows[0]?.quick_check !== 'ok') {
    throw new IndexDamagedError(`rollback index ${path}: ${rows.map((r) => r.quick_check).join('; ')}`);
  }
}

/**
 * Deletes the index of the journal in `journalDir` with its WAL and shared-memory files (a WAL left behind would
 * be replayed into the next index created there). The index is derived data: it is rebuilt on use.
 */
export function removeIndexFiles(journalDir: string): void {
  const path = join(journalDir, INDEX_FILE);
  for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
}

/** Moves the index file (and its WAL) aside as *.damaged, replacing an older one; removes the shared-memory file. */
export function moveAside(path: string): string {
  const to = `${path}.damaged`;
  for (const [from, dest] of [
    [path, to],
    [`${path}-wal`, `${to}-wal`],
  ] as const) {
    rmSync(dest, { force: true });
    try {
      renameSync(from, dest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  rmSync(`${path}-shm`, { force: true });
  return to;
}
