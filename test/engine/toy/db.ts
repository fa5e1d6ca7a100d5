/**
 * The toy engine's database (test only): SQLite through node:sqlite. A source database keeps a change log,
 * `_changes`, filled by triggers on every user table inside the writer's transaction (one `_tx` number per
 * transaction): the toy's "write-ahead log", addressed by the change id (a sequence position of engine `toy`).
 * User tables have an INTEGER PRIMARY KEY `id` and INTEGER or TEXT columns; values travel as bigint / string.
 */
import { DatabaseSync } from 'node:sqlite';
import type { Column, Value } from '../../../record/record.ts';

export type Db = DatabaseSync;

/** Opens a database file with WAL (a reader and a writer at once) and a busy timeout. */
export function openDb(file: string, o: { readOnly?: boolean } = {}): Db {
  const db = new DatabaseSync(file, { readOnly: o.readOnly === true, timeout: 5000 });
  if (!o.readOnly) db.exec('PRAGMA journal_mode = WAL');
  return db;
}

/** Tables of tidemark's or of the change log are not user tables. */
export const isUserTable = (name: string) => !name.startsWith('_') && !name.startsWith('sqlite_');

export function userTables(db: Db): string[] {
  const rows = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
  return rows.map((r) => String(r['name'])).filter(isUserTable);
}

export interface TableShape {
  readonly columns: Column[];
  readonly pk: string[];
}

export function tableShape(db: Db, table: string): TableShape {
  const info = db.prepare(`PRAGMA table_info(${quote(table)})`).all();
  const columns = info.map((c) => ({ name: String(c['name']), type: String(c['type']).toLowerCase() }));
  const pk = info.filter((c) => Number(c['pk']) > 0).map((c) => String(c['name']));
  return { columns, pk };
}

export const quote = (id: string) => `"${id.replaceAll('"', '""')}"`;

/** A value as the journal carries it: INTEGER as bigint, TEXT as string. */
export function toValue(v: unknown): Value {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint' || typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : v;
  if (v instanceof Uint8Array) return v;
  throw new Error(`toy: unsupported value ${String(v)}`);
}

/** A journal value as SQLite binds it. */
export function toSql(v: Value): bigint | string | number | Uint8Array | null {
  return v;
}

/** Every row of a table in primary-key order, as journal values (bigints read as bigint). */
export function tableRows(db: Db, table: string): Value[][] {
  const { columns, pk } = tableShape(db, table);
  const st = db.prepare(`SELECT * FROM ${quote(table)} ORDER BY ${pk.map(quote).join(', ')}`);
  st.setReadBigInts(true);
  return st.all().map((r) => columns.map((c) => toValue(r[c.name])));
}

/** Creates the change log and its triggers on `tables` (each "name (column defs)") in a new source database. */
export function createSource(file: string, tables: readonly string[]): void {
  const db = openDb(file);
  try {
    db.exec(`CREATE TABLE _tx (n INTEGER NOT NULL); INSERT INTO _tx VALUES (0);
      CREATE TABLE _changes (id INTEGER PRIMARY KEY AUTOINCREMENT, tx INTEGER NOT NULL, tbl TEXT NOT NULL,
        op TEXT NOT NULL, before TEXT, after TEXT, at_us INTEGER NOT NULL)`);
    for (const def of tables) db.exec(`CREATE TABLE ${def}`);
    for (const t of userTables(db)) {
      const cols = tableShape(db, t).columns;
      // Every value as text in the JSON image (an INTEGER beyond 2^53 would lose digits as a JSON number).
      const image = (row: string) =>
        `json_array(${cols.map((c) => `CAST(${row}.${quote(c.name)} AS TEXT)`).join(', ')})`;
      const log = (op: string, before: string, after: string) =>
        `INSERT INTO _changes (tx, tbl, op, before, after, at_us) VALUES ((SELECT n FROM _tx), '${t}', '${op}', ` +
        `${before}, ${after}, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))`;
      db.exec(`CREATE TRIGGER ${quote(`_ins_${t}`)} AFTER INSERT ON ${quote(t)} BEGIN
          ${log('insert', 'NULL', image('NEW'))}; END;
        CREATE TRIGGER ${quote(`_upd_${t}`)} AFTER UPDATE ON ${quote(t)} BEGIN
          ${log('update', image('OLD'), image('NEW'))}; END;
        CREATE TRIGGER ${quote(`_del_${t}`)} AFTER DELETE ON ${quote(t)} BEGIN
          ${log('delete', image('OLD'), 'NULL')}; END;`);
    }
  } finally {
    db.close();
  }
}

/** Runs `statements` as one source transaction (one `_tx` number: the change log groups them by it). */
export function transaction(db: Db, statements: readonly string[]): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec('UPDATE _tx SET n = n + 1');
    for (const s of statements) db.exec(s);
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}

/** A JSON image from the change log as journal values (text back to bigint for INTEGER columns). */
export function decodeImage(json: string | null, columns: readonly Column[]): Value[] | null {
  if (json === null) return null;
  const raw = JSON.parse(json) as (string | null)[];
  return raw.map((v, i) => (v === null ? null : columns[i]?.type === 'integer' ? BigInt(v) : v));
}
