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
 * `file`.tmp (mode 0600), fsynced and renamed to `file` only when complete. The text itself is built in
 * quarantine-text.ts (pure); for a PostgreSQL old primary in quarantine-pg.ts (psql, option `text`).
 */
import type { FileHandle } from 'node:fs/promises';
import type { Flavor } from '../mysql/sql.ts';
import { openDurable } from '../core/durable-file.ts';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import type { CommitEntry, DdlEntry, Entry, RowsEntry } from '../record/record.ts';
import type { JournalFrame } from '../journal/index.ts';
import { decodeFrame } from '../journal/index.ts';
import { JournalReader } from '../journal/index.ts';
import {
  comment,
  ddlText,
  type ErrantTx,
  type QuarantineSummary,
  quarantineHead,
  type RowCounts,
  rowsText,
  txHead,
} from './quarantine-text.ts';

export {
  ddlText,
  type ErrantTx,
  formatErrantSummary,
  type QuarantineSummary,
  quarantineHead,
  type RowCounts,
  rowsText,
  txCounts,
  txHead,
} from './quarantine-text.ts';

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
  /** The SQL dialect of the file (default MySQL's: the functions of quarantine-text.ts; quarantine-pg.ts). */
  text?: QuarantineText;
}

/** How the file's head, row changes and DDL statements are written, per engine (pure). */
export interface QuarantineText {
  head(journalDir: string, afterLsn: bigint, header: readonly string[]): string;
  rows(e: RowsEntry, flavor: Flavor): Iterable<string>;
  ddl(e: DdlEntry): string;
}

const mysqlText: QuarantineText = { head: quarantineHead, rows: rowsText, ddl: ddlText };

const FLUSH_CHARS = 256 * 1024;
const DEFAULT_BUFFER_BYTES = 8 * 1024 * 1024;

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
 * Text batched into writes to the file, one write in flight while the next batch is built. The handle belongs to
 * the caller (core/durable-file.ts fsyncs and closes it); end() waits for the last write.
 */
class Out {
  bytes = 0;
  private readonly fh: FileHandle;
  private parts: string[] = [];
  private size = 0;
  private pending: Promise<void> = Promise.resolve();
  private error: unknown = null;

  constructor(fh: FileHandle) {
    this.fh = fh;
  }

  async write(s: string): Promise<void> {
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= FLUSH_CHARS) await this.flush();
  }

  private async flush(): Promise<void> {
    await this.pending;
    if (this.error) throw this.error;
    if (this.size === 0) return;
    const buf = Buffer.from(this.parts.join(''), 'utf8');
    this.parts = [];
    this.size = 0;
    this.bytes += buf.length;
    this.pending = this.fh.write(buf).then(
      () => undefined,
      (err: unknown) => {
        this.error ??= err;
      },
    );
  }

  async end(): Promise<void> {
    await this.flush();
    await this.pending;
    if (this.error) throw this.error;
  }

  /** Waits for the write in flight (its error, if any, was kept), so the handle can be closed. */
  async settle(): Promise<void> {
    await this.pending;
  }
}

async function writeEntry(out: Out, e: Entry, flavor: Flavor, text: QuarantineText): Promise<void> {
  if (e.kind === 'rows') for (const t of text.rows(e, flavor)) await out.write(t);
  else if (e.kind === 'ddl') await out.write(text.ddl(e));
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
  const text = o.text ?? mysqlText;
  const budget = o.bufferBytes ?? DEFAULT_BUFFER_BYTES;
  const dest = await openDurable(o.file, { mode: 0o600, exclusive: true });
  const fh = dest.fh;
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
    await out.write(text.head(o.journalDir, o.afterLsn, o.header));
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
        await writeEntry(out, x, flavor, text);
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
    await out.settle();
    await dest.abort();
    throw err;
  }
  await dest.commit();
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
