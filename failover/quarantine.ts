/**
 * Quarantine of errant transactions: at failback, the units of the returning old primary's journal after LSN B
 * (the last unit the new primary has) are written, before tidemark rewinds them, to a file a DBA can read and
 * re-apply by hand on the new primary:
 *
 *   -- <header lines> / -- errant transactions of <journalDir> after LSN <B> / -- how to use the file
 *   charset utf8mb4                                          the client reads the file as utf8mb4
 *   SET NAMES utf8mb4, time_zone = '+00:00', sql_mode = …;   what the literals assume (TIMESTAMPs are UTC)
 *   -- transaction <txId> committed <ISO time> (LSN a..b, seq x..y): N insert, N update, N delete[, N DDL]
 *   -- tables: s.t, …
 *   START TRANSACTION;
 *   -- before: null after: {"id":1,…}              per row: its images as one JSON line (binary as "0x…"),
 *   INSERT INTO `s`.`t` (`id`,…) VALUES (1,…);      then plain SQL: UPDATE/DELETE by the before image's key,
 *   USE `s`; ALTER TABLE …;                         or every column (<=>, LIMIT 1) without one; DDL as it was
 *   COMMIT;
 *   -- end: N transactions
 *
 * A row SQL cannot express (NaN, a missing image) keeps its JSON line and a comment saying so. Frames after the
 * last commit (a unit cut by a crash) are not a transaction: a comment notes them (incompleteTail).
 *
 * Memory: the comment above START TRANSACTION needs the unit's counts, so its decoded entries are held until its
 * commit only up to bufferBytes of frame payload; a larger unit is counted on the first pass, then read again
 * from its first frame and written entry by entry. Output goes through a write stream with backpressure into
 * `file`.tmp (mode 0600), fsynced and renamed to `file` only when complete.
 */
import { once } from 'node:events';
import type { WriteStream } from 'node:fs';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { finished } from 'node:stream/promises';
import { SQL_MODE } from '../apply/mysql/session.ts';
import { buildDeleteRow, buildInsert, buildUpdateRow, type Flavor, useSchema } from '../apply/mysql/sql.ts';
import { CorruptionError, TidemarkError } from '../record/errors.ts';
import type { CommitEntry, DdlEntry, Entry, RowImage, RowsEntry } from '../record/record.ts';
import { oneLine } from '../rollback/guard.ts';
import { rowObject } from '../rollback/show.ts';
import { formatTimeUs } from '../rollback/time.ts';
import type { JournalFrame } from '../ship/journal/api.ts';
import { decodeFrame } from '../ship/journal/entries.ts';
import { JournalReader } from '../ship/journal/reader.ts';
import { fsyncDir } from '../ship/journal/segments.ts';

export interface RowCounts {
  insert: number;
  update: number;
  delete: number;
}

export interface ErrantTx {
  txId: string;
  /** LSN of the unit's first frame and of its commit frame. */
  firstLsn: bigint;
  lastLsn: bigint;
  firstSeq: bigint;
  commitSeq: bigint;
  commitTimeUs: bigint;
  rows: RowCounts;
  ddl: number;
  /** "schema.table", sorted (DDL entries add the tables they name). */
  tables: string[];
}

export interface QuarantineSummary {
  file: string;
  afterLsn: bigint;
  transactions: number;
  rows: RowCounts;
  ddl: number;
  tables: string[];
  first: ErrantTx | null;
  last: ErrantTx | null;
  /** Size of the file written. */
  bytes: number;
  /** Frames followed the last commit (a unit that never committed); noted in the file, not written as SQL. */
  incompleteTail: boolean;
}

export interface QuarantineOptions {
  journalDir: string;
  /** LSN B: the last frame the new primary has; it must end a unit. */
  afterLsn: bigint;
  file: string;
  /** Comment lines at the top of the file (who, when, why). */
  header: readonly string[];
  signal?: AbortSignal;
  /** Called for each transaction once it is written. */
  onTx?: (t: ErrantTx) => void;
  /** How JSON columns are compared in WHERE clauses (default mariadb). */
  flavor?: Flavor;
  /** Frame payload bytes of one unit held in memory before it is read a second time instead (default 8 MiB). */
  bufferBytes?: number;
}

const FLUSH_CHARS = 256 * 1024;
const DEFAULT_BUFFER_BYTES = 8 * 1024 * 1024;
const MAX_TABLES_SHOWN = 20;

// ---- text (pure) ---------------------------------------------------------------------------------------------

/** JSON on one line (control characters, U+2028/2029 escaped); NaN/Infinity as strings, not null. */
function jsonLine(v: unknown): string {
  const finite = (_: string, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x);
  return JSON.stringify(v, finite).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

function comment(text: string): string {
  return `-- ${oneLine(text)}`.trimEnd() + '\n';
}

/** The file's head: the caller's header lines, what the file holds, how to use it, the client session. */
export function quarantineHead(journalDir: string, afterLsn: bigint, header: readonly string[]): string {
  const lines = header.flatMap((h) => h.split(/\r\n|\r|\n/));
  return (
    [
      ...lines,
      `errant transactions of ${journalDir} after LSN ${afterLsn}`,
      '',
      'They were committed on the old primary but never reached the new one. Review before re-applying any of them',
      'on the new primary by hand, e.g. mariadb -h HOST -u USER -p < THIS_FILE (it stops at the first error).',
      'Each row change comes with its before/after images as JSON; binary values are "0x…" there, X\'…\' in SQL.',
      'Remove generated columns from the statements (the server computes them). DDL commits implicitly.',
    ]
      .map(comment)
      .join('') +
    'charset utf8mb4\n' +
    `SET NAMES utf8mb4, time_zone = '+00:00', sql_mode = '${SQL_MODE}';\n\n`
  );
}

export function txCounts(t: ErrantTx): string {
  const r = t.rows;
  return `${r.insert} insert, ${r.update} update, ${r.delete} delete${t.ddl > 0 ? `, ${t.ddl} DDL` : ''}`;
}

/** The comment lines and START TRANSACTION of one transaction. */
export function txHead(t: ErrantTx): string {
  const at = `(LSN ${t.firstLsn}..${t.lastLsn}, seq ${t.firstSeq}..${t.commitSeq})`;
  let out = comment(`transaction ${t.txId} committed ${formatTimeUs(t.commitTimeUs)} ${at}: ${txCounts(t)}`);
  if (t.tables.length > 0) out += comment(`tables: ${t.tables.join(', ')}`);
  return out + 'START TRANSACTION;\n';
}

/** The plain SQL of one row change (throws when it cannot be written: a missing image, NaN …). */
function rowSql(e: RowsEntry, r: RowImage, pkIdx: readonly number[] | null, flavor: Flavor): string {
  const all = e.columns.map((_, i) => i);
  const img = (which: 'before' | 'after') => {
    const v = r[which];
    if (!v || v.length !== e.columns.length) {
      throw new Error(`${which} image ${v ? `has ${v.length} values for ${e.columns.length} columns` : 'is missing'}`);
    }
    return v;
  };
  if (e.op === 'insert') return buildInsert(e.schema, e.table, e.columns, all, [img('after')]);
  if (e.op === 'delete') return buildDeleteRow(e.schema, e.table, e.columns, pkIdx, img('before'), flavor);
  return buildUpdateRow(e.schema, e.table, e.columns, all, pkIdx, img('before'), img('after'), flavor);
}

/** Key column indexes of a rows entry, or null (match every column) without a usable primary key. */
function keyIndexes(e: RowsEntry): readonly number[] | null {
  if (e.pk.length === 0) return null;
  const idx = e.pk.map((name) => e.columns.findIndex((c) => c.name === name));
  return idx.every((i) => i >= 0) ? idx : null;
}

/** The text of each row change of a rows entry: its JSON images line and its statement, one row at a time. */
export function* rowsText(e: RowsEntry, flavor: Flavor = 'mariadb'): Generator<string> {
  const pkIdx = keyIndexes(e);
  if (e.pk.length > 0 && !pkIdx) {
    yield comment(`key ${e.pk.join(', ')} of ${e.schema}.${e.table} is not among its columns: rows matched by all`);
  }
  for (const r of e.rows) {
    const images =
      `-- before: ${jsonLine(rowObject(e.columns, r.before))} ` + `after: ${jsonLine(rowObject(e.columns, r.after))}\n`;
    let sql: string;
    try {
      sql = rowSql(e, r, pkIdx, flavor) + ';\n';
    } catch (err) {
      sql = comment(`${e.op} not expressible as SQL (${(err as Error).message}): see the images above`);
    }
    yield images + sql;
  }
}

/** A DDL statement as it was, after USE of its default schema; inside DELIMITER when it holds ';'. */
export function ddlText(e: DdlEntry): string {
  let out = comment(`DDL at seq ${e.seq}${e.schema ? ` in schema ${e.schema}` : ''}`);
  if (e.schema) out += `${useSchema(e.schema)};\n`;
  const sql = e.sql.replace(/[\s;]+$/, '');
  // A comment on the last line would swallow the delimiter.
  const nl = /--|#|\/\*/.test(sql.slice(sql.lastIndexOf('\n') + 1)) ? '\n' : '';
  if (!sql.includes(';')) return `${out}${sql}${nl};\n`;
  let d = '$$';
  while (sql.includes(d)) d += '$';
  return `${out}DELIMITER ${d}\n${sql}${nl}${d}\nDELIMITER ;\n`;
}

function txLine(t: ErrantTx): string {
  return oneLine(
    `${t.txId} committed ${formatTimeUs(t.commitTimeUs)} (LSN ${t.firstLsn}..${t.lastLsn}): ${txCounts(t)}`,
  );
}

/** Human lines for the terminal. Pure. */
export function formatErrantSummary(s: QuarantineSummary): string[] {
  const out: string[] = [];
  const r = s.rows;
  if (s.transactions === 0) out.push(`no errant transactions after LSN ${s.afterLsn}`);
  else {
    const n = `${s.transactions} errant transaction${s.transactions === 1 ? '' : 's'}`;
    out.push(`${n} after LSN ${s.afterLsn}: ${r.insert} insert, ${r.update} update, ${r.delete} delete, ${s.ddl} DDL`);
    if (s.tables.length > 0) {
      const more = s.tables.length - MAX_TABLES_SHOWN;
      const shown = s.tables.slice(0, MAX_TABLES_SHOWN).join(', ');
      out.push(oneLine(`tables: ${shown}${more > 0 ? ` and ${more} more` : ''}`));
    }
    if (s.first) out.push(`first: ${txLine(s.first)}`);
    if (s.last && s.transactions > 1) out.push(`last:  ${txLine(s.last)}`);
  }
  if (s.incompleteTail) out.push('frames after the last commit (a transaction that never committed) were not saved');
  out.push(oneLine(`saved to ${s.file} (${s.bytes} bytes)`));
  return out;
}

// ---- the unit being read --------------------------------------------------------------------------------------

class Unit {
  readonly firstLsn: bigint;
  readonly firstSeq: bigint;
  /** Where the first frame lies, to read the unit again. */
  readonly at: { segment: bigint; offset: number } | undefined;
  readonly rows: RowCounts = { insert: 0, update: 0, delete: 0 };
  readonly tables = new Set<string>();
  ddl = 0;
  frames = 0;
  lastLsn: bigint;
  txId: string;
  /** The entries so far, or null once they outgrew the buffer. */
  pending: Entry[] | null = [];
  private bytes = 0;

  constructor(f: JournalFrame, e: Entry) {
    this.firstLsn = f.lsn;
    this.lastLsn = f.lsn;
    this.firstSeq = e.seq;
    this.txId = e.txId;
    this.at = f.segment !== undefined && f.offset !== undefined ? { segment: f.segment, offset: f.offset } : undefined;
  }

  add(e: RowsEntry | DdlEntry, lsn: bigint, payloadBytes: number, budget: number): void {
    this.frames++;
    this.lastLsn = lsn;
    if (e.kind === 'rows') {
      this.rows[e.op] += e.rows.length;
      this.tables.add(`${e.schema}.${e.table}`);
    } else {
      this.ddl++;
      for (const t of e.tables) this.tables.add(`${t.schema}.${t.table}`);
    }
    this.bytes += payloadBytes;
    if (this.pending && this.bytes <= budget) this.pending.push(e);
    else this.pending = null;
  }

  tx(c: CommitEntry, lsn: bigint): ErrantTx {
    return {
      txId: c.txId,
      firstLsn: this.firstLsn,
      lastLsn: lsn,
      firstSeq: this.firstSeq,
      commitSeq: c.seq,
      commitTimeUs: c.commitTimeUs,
      rows: { ...this.rows },
      ddl: this.ddl,
      tables: [...this.tables].sort(),
    };
  }
}

/** The rows and ddl entries of a unit, read again from its first frame up to its commit. */
async function* readAgain(dir: string, u: Unit, t: ErrantTx, signal?: AbortSignal): AsyncGenerator<Entry> {
  const reader = new JournalReader({ dir, fromLsn: u.firstLsn, startAt: u.at, follow: false, signal });
  let changes = 0;
  for await (const f of reader) {
    if (f.lsn >= t.lastLsn) break;
    const e = decodeFrame(f).entry;
    changes += e.kind === 'rows' ? e.rows.length : 1;
    yield e;
  }
  signal?.throwIfAborted();
  if (changes !== t.rows.insert + t.rows.update + t.rows.delete + t.ddl) {
    throw new CorruptionError(
      `journal ${dir}: transaction ${t.txId} (LSN ${t.firstLsn}..${t.lastLsn}) read differently the second time`,
      { dir, lsn: t.firstLsn },
    );
  }
}

// ---- output ---------------------------------------------------------------------------------------------------

/**
 * Text batched into a write stream over the file, waiting for 'drain' whenever the stream is full. The stream
 * owns the handle: end() fsyncs it (flush) and closes it.
 */
class Out {
  bytes = 0;
  private readonly ws: WriteStream;
  private parts: string[] = [];
  private size = 0;
  private error: Error | null = null;

  constructor(fh: FileHandle) {
    this.ws = fh.createWriteStream({ highWaterMark: FLUSH_CHARS, flush: true });
    this.ws.on('error', (err) => {
      this.error ??= err;
    });
  }

  async write(s: string): Promise<void> {
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= FLUSH_CHARS) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.error) throw this.error;
    if (this.size === 0) return;
    const buf = Buffer.from(this.parts.join(''), 'utf8');
    this.parts = [];
    this.size = 0;
    this.bytes += buf.length;
    if (!this.ws.write(buf)) await once(this.ws, 'drain');
  }

  async end(): Promise<void> {
    await this.flush();
    this.ws.end();
    await finished(this.ws);
  }

  destroy(): void {
    this.ws.destroy();
  }
}

async function writeEntry(out: Out, e: Entry, flavor: Flavor): Promise<void> {
  if (e.kind === 'rows') for (const text of rowsText(e, flavor)) await out.write(text);
  else if (e.kind === 'ddl') await out.write(ddlText(e));
}

// ---- writeQuarantine ------------------------------------------------------------------------------------------

/**
 * Writes every complete unit of the journal after `afterLsn` to `file` (see the module comment) and returns
 * what it wrote. Errors: afterLsn does not end a unit or lies beyond the journal (QUARANTINE_BOUNDARY), the
 * journal no longer holds it (JOURNAL_GONE), damage (CorruptionError), the signal's reason when aborted. On any
 * error no file is left behind (neither `file` nor `file`.tmp).
 */
export async function writeQuarantine(o: QuarantineOptions): Promise<QuarantineSummary> {
  const flavor = o.flavor ?? 'mariadb';
  const budget = o.bufferBytes ?? DEFAULT_BUFFER_BYTES;
  const tmp = `${o.file}.tmp`;
  await rm(tmp, { force: true });
  const fh = await open(tmp, 'wx', 0o600);
  const out = new Out(fh);
  const rows: RowCounts = { insert: 0, update: 0, delete: 0 };
  const tables = new Set<string>();
  let transactions = 0;
  let ddl = 0;
  let incompleteTail = false;
  let first: ErrantTx | null = null;
  let last: ErrantTx | null = null;
  try {
    await fh.chmod(0o600);
    await out.write(quarantineHead(o.journalDir, o.afterLsn, o.header));
    // Read from B itself: the frame there must exist and end a unit.
    let boundary = o.afterLsn < 1n;
    let unit: Unit | null = null;
    let seen = false;
    const fromLsn = boundary ? 1n : o.afterLsn;
    for await (const f of new JournalReader({ dir: o.journalDir, fromLsn, follow: false, signal: o.signal })) {
      if (!seen && f.lsn > 1n && o.afterLsn < 1n) {
        throw boundaryError(o, `retention removed LSN 1..${f.lsn - 1n}: the first unit may be cut`);
      }
      seen = true;
      if (!boundary) {
        if (f.lsn !== o.afterLsn || !f.endOfUnit) throw boundaryError(o, `LSN ${f.lsn} does not end a unit`);
        boundary = true;
        continue;
      }
      const e = decodeFrame(f).entry;
      unit ??= new Unit(f, e);
      if (e.kind !== 'commit') {
        unit.add(e, f.lsn, f.payload.length, budget);
        continue;
      }
      const t = unit.tx(e, f.lsn);
      await out.write(txHead(t));
      for await (const x of unit.pending ?? readAgain(o.journalDir, unit, t, o.signal)) {
        await writeEntry(out, x, flavor);
      }
      await out.write('COMMIT;\n\n');
      transactions++;
      for (const op of ['insert', 'update', 'delete'] as const) rows[op] += t.rows[op];
      ddl += t.ddl;
      for (const name of t.tables) tables.add(name);
      first ??= t;
      last = t;
      unit = null;
      o.onTx?.(t);
    }
    o.signal?.throwIfAborted();
    if (!boundary) throw boundaryError(o, 'the journal ends before it');
    if (unit) {
      incompleteTail = true;
      const what = `unfinished unit at LSN ${unit.firstLsn}..${unit.lastLsn} (tx ${unit.txId}, ${unit.frames} frames)`;
      await out.write(comment(`${what} after the last commit: never committed, not a transaction, not included`));
    }
    await out.write(comment(`end: ${transactions} transactions`));
    await out.end();
  } catch (err) {
    out.destroy();
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await rename(tmp, o.file);
  await fsyncDir(dirname(o.file));
  const summary = { file: o.file, afterLsn: o.afterLsn, transactions, rows, ddl, first, last, incompleteTail };
  return { ...summary, tables: [...tables].sort(), bytes: out.bytes };
}

function boundaryError(o: QuarantineOptions, why: string): TidemarkError {
  return new TidemarkError(`journal ${o.journalDir}: errant transactions start after LSN ${o.afterLsn}, but ${why}`, {
    code: 'QUARANTINE_BOUNDARY',
    retriable: false,
    context: { dir: o.journalDir, afterLsn: o.afterLsn },
  });
}
