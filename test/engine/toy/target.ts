/**
 * The toy engine's target adapter (test only): applies journal entries into a SQLite database exactly once. Each
 * source transaction is applied in one SQLite transaction that also stores the position (`_tidemark_position`)
 * and appends the commit's seq to `_tidemark_applied` (the contract test reads it: no seq twice, none missing).
 * Verify compares every user table of a toy source and the target row by row (a checksum per table, then keys).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { TidemarkError } from '../../../core/errors.ts';
import type {
  Applier,
  ApplyRunOptions,
  AppliedState,
  Difference,
  JournalItem,
  StoredPosition,
  TableResult,
  TargetAdapter,
  TargetSection,
  VerifyOptions,
} from '../../../engine/target.ts';
import { positionFromJson, positionToJson } from '../../../record/position.ts';
import type { CommitEntry, Phase, RowsEntry, Value } from '../../../record/record.ts';
import { type Db, isUserTable, openDb, quote, tableRows, tableShape, toSql, userTables } from './db.ts';
import type { ToySourceSection } from './source.ts';

export interface ToyTargetSection extends TargetSection {
  readonly file: string;
}

const toyTargetSchema = (kind: string) =>
  z
    .object({
      kind: z.literal(kind),
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
      file: z.string().min(1),
      site: z.string().min(1).optional(),
    })
    .strict();

const SQL_TYPE: Record<string, string> = { integer: 'INTEGER', text: 'TEXT' };

function prepareTarget(db: Db): void {
  db.exec(`CREATE TABLE IF NOT EXISTS _tidemark_position (source TEXT PRIMARY KEY, seq TEXT NOT NULL,
    lsn TEXT NOT NULL, position TEXT, commit_time_us TEXT, phase TEXT, hold TEXT);
    CREATE TABLE IF NOT EXISTS _tidemark_applied (seq TEXT NOT NULL, lsn TEXT NOT NULL)`);
}

function readState(db: Db, source: string): StoredPosition {
  const r = db.prepare('SELECT * FROM _tidemark_position WHERE source = ?').get(source);
  if (!r) return { state: null, ddlPendingSeq: null, hold: null };
  const state: AppliedState = {
    seq: BigInt(String(r['seq'])),
    lsn: BigInt(String(r['lsn'])),
    position: r['position'] ? positionFromJson(JSON.parse(String(r['position'])), 'toy target') : null,
    commitTimeUs: r['commit_time_us'] ? BigInt(String(r['commit_time_us'])) : null,
    phase: (r['phase'] as Phase | null) ?? null,
  };
  return { state, ddlPendingSeq: null, hold: (r['hold'] as string | null) ?? null };
}

class ToyApplier implements Applier {
  readonly #t: ToyTargetSection;
  readonly #source: string;
  #db: Db | null = null;
  #inTx = false;
  state: AppliedState | null = null;
  hold: string | null = null;
  readonly promoted = false;
  lastReadLsn = -1n;

  constructor(t: ToyTargetSection, source: string) {
    this.#t = t;
    this.#source = source;
  }

  async open(): Promise<AppliedState | null> {
    this.#db = openDb(this.#t.file);
    prepareTarget(this.#db);
    const st = readState(this.#db, this.#source);
    this.state = st.state;
    this.hold = st.hold;
    return this.state;
  }

  async run(entries: AsyncIterable<JournalItem>, o: ApplyRunOptions): Promise<void> {
    const db = this.#db;
    if (!db) throw new Error('toy applier: run() before open()');
    try {
      for await (const { lsn, entry } of entries) {
        if (o.signal?.aborted) break;
        this.lastReadLsn = lsn;
        if (entry.source !== this.#source) {
          throw new TidemarkError(`toy target: entry of source ${entry.source}`, { code: 'APPLY_STATE' });
        }
        // Exactly once: what the stored position already covers is skipped.
        if (this.state && entry.seq <= this.state.seq) continue;
        if (!this.#inTx) {
          db.exec('BEGIN IMMEDIATE');
          this.#inTx = true;
        }
        if (entry.kind === 'rows') this.#rows(db, entry);
        else if (entry.kind === 'commit') await this.#commit(db, entry, lsn, o);
        else throw new TidemarkError('toy target: DDL is not supported', { code: 'APPLY_FAILED' });
      }
    } catch (err) {
      this.#rollback();
      throw err instanceof TidemarkError
        ? err
        : new TidemarkError(`toy target: ${(err as Error).message}`, {
            code: 'APPLY_FAILED',
            cause: err,
          });
    }
    this.#rollback(); // a transaction cut off by the end of the entries (stop) is not kept
  }

  #rows(db: Db, e: RowsEntry): void {
    const cols = e.columns.map((c) => `${quote(c.name)} ${SQL_TYPE[c.type] ?? 'TEXT'}`);
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${quote(e.table)} (${cols.join(', ')}, PRIMARY KEY (${e.pk.map(quote).join(', ')}))`,
    );
    const names = e.columns.map((c) => c.name);
    const keyAt = e.pk.map((k) => names.indexOf(k));
    const where = e.pk.map((k) => `${quote(k)} = ?`).join(' AND ');
    const del = db.prepare(`DELETE FROM ${quote(e.table)} WHERE ${where}`);
    const ins = db.prepare(
      `INSERT INTO ${quote(e.table)} (${names.map(quote).join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
    );
    const key = (img: readonly Value[]) => keyAt.map((i) => toSql(img[i] ?? null));
    for (const r of e.rows) {
      if (r.before) del.run(...key(r.before));
      if (r.after) ins.run(...r.after.map(toSql));
    }
  }

  async #commit(db: Db, c: CommitEntry, lsn: bigint, o: ApplyRunOptions): Promise<void> {
    db.prepare(
      `INSERT INTO _tidemark_position (source, seq, lsn, position, commit_time_us, phase) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (source) DO UPDATE SET seq = excluded.seq, lsn = excluded.lsn, position = excluded.position,
       commit_time_us = excluded.commit_time_us, phase = excluded.phase`,
    ).run(this.#source, `${c.seq}`, `${lsn}`, JSON.stringify(positionToJson(c.position)), `${c.commitTimeUs}`, c.phase);
    db.prepare('INSERT INTO _tidemark_applied (seq, lsn) VALUES (?, ?)').run(`${c.seq}`, `${lsn}`);
    db.exec('COMMIT');
    this.#inTx = false;
    this.state = { seq: c.seq, lsn, position: c.position, commitTimeUs: c.commitTimeUs, phase: c.phase };
    await o.onApplied?.(this.state);
  }

  #rollback(): void {
    if (this.#inTx) this.#db?.exec('ROLLBACK');
    this.#inTx = false;
  }

  async close(): Promise<void> {
    this.#rollback();
    this.#db?.close();
    this.#db = null;
  }
}

/** Every row of `table` keyed by its primary key (text), or an empty map when the table does not exist. */
function keyedRows(db: Db, table: string): Map<string, string> {
  if (!userTables(db).includes(table)) return new Map();
  const { columns, pk } = tableShape(db, table);
  const keyAt = pk.map((k) => columns.findIndex((c) => c.name === k));
  const text = (v: Value) => (v === null ? 'NULL' : typeof v === 'string' ? `'${v}'` : String(v));
  return new Map(
    tableRows(db, table).map((r) => [
      keyAt.map((i, n) => `${pk[n]}=${text(r[i] ?? null)}`).join(', '),
      r.map(text).join('|'),
    ]),
  );
}

const digest = (rows: Map<string, string>) =>
  createHash('sha256')
    .update([...rows].map(([k, v]) => `${k}\0${v}`).join('\n'))
    .digest('hex');

function compareTable(src: Db, dst: Db, table: string): TableResult {
  const a = keyedRows(src, table);
  const b = keyedRows(dst, table);
  const differences: Difference[] = [];
  if (digest(a) !== digest(b)) {
    for (const [k, v] of a) {
      if (!b.has(k)) differences.push({ pk: [], key: k, kind: 'missing' });
      else if (b.get(k) !== v) differences.push({ pk: [], key: k, kind: 'changed' });
    }
    for (const k of b.keys()) if (!a.has(k)) differences.push({ pk: [], key: k, kind: 'extra' });
  }
  const equal = differences.length === 0;
  return {
    schema: 'main',
    table,
    chunks: 1,
    rows: a.size,
    replicaRows: b.size,
    equal,
    differences,
    differenceCount: differences.length,
  };
}

/** A toy target engine registered as `kind`; it verifies against toy sources of the same kind. */
export function toyTarget(kind: string): TargetAdapter<ToyTargetSection> {
  return {
    kind,
    configSchema: toyTargetSchema(kind),
    async preflight(t) {
      const db = openDb(t.file);
      prepareTarget(db);
      db.close();
    },
    applier: async (o) => new ToyApplier(o.target, o.source),
    async readStored(t, source) {
      try {
        const db = openDb(t.file);
        try {
          prepareTarget(db);
          return { name: t.name, stored: readState(db, source) };
        } finally {
          db.close();
        }
      } catch (err) {
        return { name: t.name, stored: null, error: (err as Error).message };
      }
    },
    async verify(o: VerifyOptions<ToyTargetSection>) {
      if (o.source.kind !== kind) {
        throw new TidemarkError(`target ${o.target.name}: verifies against a "${kind}" source only`, {
          code: 'CONFIG',
        });
      }
      const src = openDb((o.source as ToySourceSection).file, { readOnly: true });
      const dst = openDb(o.target.file, { readOnly: true });
      try {
        const names = o.tables?.map((t) => t.table) ?? [...new Set([...userTables(src), ...userTables(dst)])];
        const tables = names
          .filter(isUserTable)
          .sort()
          .map((t) => compareTable(src, dst, t));
        return { tables, equal: tables.every((t) => t.equal) };
      } finally {
        src.close();
        dst.close();
      }
    },
  };
}

/** The commit seqs applied to a toy target, in the order they were applied (exactly once: no seq twice). */
export function appliedSeqs(file: string): bigint[] {
  const db = openDb(file, { readOnly: true });
  try {
    return db
      .prepare('SELECT seq FROM _tidemark_applied ORDER BY rowid')
      .all()
      .map((r) => BigInt(String(r['seq'])));
  } finally {
    db.close();
  }
}
