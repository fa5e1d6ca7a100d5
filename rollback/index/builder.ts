/**
 * Writes journal entries into the rollback index, one SQLite transaction ("batch") at a time. The catch-up loop
 * (catch-up.ts) feeds it entries in LSN order and decides when to commit; this class only turns entries into
 * rows and keeps the progress record (state.ts) in step with them.
 *
 * Row changes are buffered column-wise (plain arrays of numbers and key strings, no row images) and inserted when
 * the batch commits, so the buffer holds at most one batch (≈ BATCH_CHANGES) whatever the size of a transaction;
 * a unit that spans batches has its rows committed in pieces, with the progress record saying where it stands.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Logger } from 'pino';
import { CorruptionError } from '../../core/errors.ts';
import { sameItems } from '../../core/collections.ts';
import { positionToJson } from '../../record/position.ts';
import { isRowsEncoding, type RowsHeader, scanRows } from '../../record/codec-keys.ts';
import type { CommitEntry, DdlEntry, Value } from '../../record/record.ts';
import type { JournalFrame } from '../../journal/index.ts';
import { decodeFrame } from '../../journal/index.ts';
import { HEADER_BYTES } from '../../journal/index.ts';
import { keyText } from './key.ts';
import { GEN_SHIFT, GEN_SIZE } from './schema.ts';
import { decodeState, emptyState, encodeState, type FrameMark, type IndexState, type UnitState } from './state.ts';
import { redactSecrets } from '../../mysql/accounts.ts';

/** Row changes per SQLite transaction (committed at the next frame boundary after this many). */
export const BATCH_CHANGES = 50_000;

interface TableInfo {
  id: number;
  pk: readonly string[] | null;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const GEN_SHIFT_N = BigInt(GEN_SHIFT);

/** keyText of key values, with a fast path for one integer (JSON of a decimal string is it in quotes). */
function keyOf(vals: readonly Value[]): string {
  if (vals.length === 1) {
    const v = vals[0] as Value;
    if (typeof v === 'bigint') return `["${v}"]`;
  }
  return keyText(vals);
}

export class IndexBuilder {
  private readonly db: DatabaseSync;
  private readonly log: Logger;
  /** Working state: what the file will hold once the open batch commits. */
  state: IndexState = emptyState();
  /** Row changes added in the open batch. */
  changes = 0;
  /** Set by the catch-up loop when frames were skipped: the next unit may lack its beginning. */
  afterGap = false;

  private tables = new Map<string, TableInfo>();
  private names = new Map<number, string>();
  private maxGen = -1;
  // Column-wise buffer of (g, table_id, key, seq, lsn) rows for the changes table.
  private bg: number[] = [];
  private bt: number[] = [];
  private bk: string[] = [];
  private bs: (number | bigint)[] = [];
  private bl: (number | bigint)[] = [];

  private readonly st: Record<
    | 'getState'
    | 'putState'
    | 'insChange'
    | 'insGen'
    | 'insEntry'
    | 'insDdl'
    | 'insTx'
    | 'insTxTable'
    | 'insTable'
    | 'updTablePk'
    | 'delChanges'
    | 'delEntries'
    | 'delDdls',
    StatementSync
  >;

  constructor(db: DatabaseSync, log: Logger) {
    this.db = db;
    this.log = log;
    this.st = {
      getState: db.prepare("SELECT v FROM meta WHERE k = 'state'"),
      putState: db.prepare("INSERT INTO meta(k, v) VALUES ('state', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v"),
      insChange: db.prepare('INSERT INTO changes(g, table_id, key, seq, lsn) VALUES (?, ?, ?, ?, ?)'),
      insGen: db.prepare('INSERT OR IGNORE INTO gens(g) VALUES (?)'),
      insEntry: db.prepare(
        'INSERT INTO entries(lsn, segment, off, seq, kind, nrows, table_id, op) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      insDdl: db.prepare('INSERT INTO ddls(seq, lsn, schema_name, sql, tx_id) VALUES (?, ?, ?, ?, ?)'),
      insTx: db.prepare(
        `INSERT INTO txs(commit_seq, first_seq, tx_id, commit_time_us, capture_time_us, hwm_us, first_lsn, commit_lsn,
           phase, position, ins, upd, del, ddl, tables) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insTxTable: db.prepare('INSERT OR IGNORE INTO tx_tables(table_id, commit_seq) VALUES (?, ?)'),
      insTable: db.prepare('INSERT INTO tables(schema_name, table_name, pk) VALUES (?, ?, ?) RETURNING id'),
      updTablePk: db.prepare('UPDATE tables SET pk = ? WHERE id = ?'),
      delChanges: db.prepare('DELETE FROM changes WHERE g >= ? AND seq >= ?'),
      delEntries: db.prepare('DELETE FROM entries WHERE lsn >= ?'),
      delDdls: db.prepare('DELETE FROM ddls WHERE seq >= ?'),
    };
    this.reload();
  }

  /** The progress record as stored in the file. */
  storedState(): IndexState {
    const row = this.st.getState.get() as { v: string } | undefined;
    return row ? decodeState(row.v) : emptyState();
  }

  get inBatch(): boolean {
    return this.db.isTransaction;
  }

  /** Opens a batch (takes the write lock). False when the file's state moved on (another process indexed). */
  begin(): boolean {
    this.db.exec('BEGIN IMMEDIATE');
    const stored = this.storedState();
    if (encodeState(stored) !== encodeState(this.state)) {
      this.db.exec('ROLLBACK');
      this.reload();
      return false;
    }
    return true;
  }

  /** Inserts the buffered changes, stores the state (with the truncation epoch noted before reading) and commits. */
  commit(epoch: number): void {
    this.flush();
    this.state.epoch = epoch;
    this.st.putState.run(encodeState(this.state));
    this.db.exec('COMMIT');
    this.changes = 0;
  }

  /** Abandons the open batch (if any) and reloads the state and table ids from the file. */
  rollback(): void {
    if (this.db.isTransaction) this.db.exec('ROLLBACK');
    this.reload();
  }

  private reload(): void {
    this.clearBuffer();
    this.changes = 0;
    this.state = this.storedState();
    this.tables.clear();
    this.names.clear();
    for (const r of this.db.prepare('SELECT id, schema_name, table_name, pk FROM tables').all()) {
      const id = Number(r.id);
      const schema = r.schema_name as string;
      const table = r.table_name as string;
      this.tables.set(`${schema}\u0000${table}`, { id, pk: r.pk === null ? null : JSON.parse(r.pk as string) });
      this.names.set(id, `${schema}.${table}`);
    }
    const g = this.db.prepare('SELECT max(g) AS g FROM gens').get() as { g: bigint | null };
    this.maxGen = g.g === null ? -1 : Number(g.g);
  }

  /**
   * Deletes what the file holds of the unfinished unit (its changes, entries and DDL) inside the open batch and
   * forgets it: the unit is read again from its first frame, or was cut.
   */
  discardUnit(): void {
    const u = this.state.unit;
    if (u) {
      this.flush();
      this.st.delChanges.run(Number(u.firstSeq >> GEN_SHIFT_N), u.firstSeq);
      this.st.delEntries.run(u.firstLsn);
      this.st.delDdls.run(u.firstSeq);
    }
    this.state = { ...this.state, scan: null, unit: null };
  }

  /** Adds one journal frame: the one after resumeLsn(state), in LSN order, as JournalReader reports it. */
  addFrame(f: JournalFrame): void {
    if (f.segment === undefined || f.offset === undefined) {
      throw new CorruptionError(`rollback index: journal frame LSN ${f.lsn} came without its place`, {});
    }
    const end = f.offset + HEADER_BYTES + f.payload.length;
    if (isRowsEncoding(f.payload)) {
      if (f.endOfUnit) {
        throw new CorruptionError(`journal frame LSN ${f.lsn}: a rows entry ends its unit`, { lsn: f.lsn });
      }
      this.addRows(f, f.segment, f.offset, end);
      return;
    }
    const e = decodeFrame(f).entry as CommitEntry | DdlEntry;
    const mark: FrameMark = { lsn: f.lsn, segment: f.segment, offset: f.offset, end, seq: e.seq, txId: e.txId };
    if (e.kind === 'commit') {
      this.commitUnit(e, mark);
      return;
    }
    this.addDdl(e, mark, this.unitFor(f.lsn, e.seq));
    this.state.scan = mark;
  }

  private unitFor(lsn: bigint, seq: bigint): UnitState {
    if (!this.state.unit) {
      this.state.unit = {
        firstLsn: lsn,
        firstSeq: seq,
        insert: 0,
        update: 0,
        delete: 0,
        ddl: 0,
        rows: 0n,
        tables: [],
        verify: this.afterGap,
      };
      this.afterGap = false;
    }
    return this.state.unit;
  }

  private tableId(schema: string, table: string, pk: readonly string[] | null): number {
    const k = `${schema}\u0000${table}`;
    const t = this.tables.get(k);
    if (t) {
      if (pk !== null && (t.pk === null || !sameItems(t.pk, pk))) {
        this.st.updTablePk.run(JSON.stringify(pk), t.id);
        t.pk = [...pk];
      }
      return t.id;
    }
    const row = this.st.insTable.get(schema, table, pk === null ? null : JSON.stringify(pk)) as { id: bigint };
    const id = Number(row.id);
    this.tables.set(k, { id, pk: pk === null ? null : [...pk] });
    this.names.set(id, `${schema}.${table}`);
    return id;
  }

  /**
   * A rows entry, read with scanRows: only the key columns are decoded. Every row change gets a changes row
   * under its before key and, when different, its after key.
   */
  private addRows(f: JournalFrame, segment: bigint, offset: number, end: number): void {
    const lsn = f.lsn;
    let tid = 0;
    let keyed = false;
    // Seqs and LSNs as plain numbers while they are safe integers (always, in practice): no bigint per row.
    let safe = true;
    let seq0 = 0n;
    const lsnNum = Number(lsn);
    let h: RowsHeader;
    try {
      h = scanRows(
        f.payload,
        (hh) => {
          seq0 = hh.seq;
          tid = this.tableId(hh.schema, hh.table, hh.pk);
          safe = hh.seq + BigInt(hh.rows) < MAX_SAFE && lsn < MAX_SAFE;
          if (hh.pk.length === 0 || hh.rows === 0) return null;
          const idx = hh.pk.map((c) => hh.columns.findIndex((col) => col.name === c));
          if (idx.some((i) => i < 0)) {
            this.log.warn({ lsn: lsn.toString(), table: `${hh.schema}.${hh.table}` }, 'rows entry lacks a key column');
            return null;
          }
          keyed = true;
          return idx;
        },
        (i, before, after) => {
          if (!keyed) return;
          const seq = safe ? Number(seq0) + i : seq0 + BigInt(i);
          const g = safe ? Math.floor((seq as number) / GEN_SIZE) : Number((seq as bigint) >> GEN_SHIFT_N);
          if (g > this.maxGen) {
            this.st.insGen.run(g);
            this.maxGen = g;
          }
          const kb = before ? keyOf(before) : null;
          const ka = after ? keyOf(after) : null;
          const l = safe ? lsnNum : lsn;
          if (kb !== null) this.push(g, tid, kb, seq, l);
          if (ka !== null && ka !== kb) this.push(g, tid, ka, seq, l);
        },
      );
    } catch (err) {
      if (!(err instanceof CorruptionError) || err.context.lsn !== undefined) throw err;
      throw new CorruptionError(`journal frame LSN ${lsn}: ${err.message}`, { lsn }, err);
    }
    const u = this.unitFor(lsn, h.seq);
    const n = h.rows;
    this.st.insEntry.run(lsn, segment, offset, h.seq, 'rows', n, tid, h.op);
    if (!u.tables.includes(tid)) u.tables.push(tid);
    if (h.op === 'insert') u.insert += n;
    else if (h.op === 'update') u.update += n;
    else u.delete += n;
    u.rows += BigInt(n);
    this.changes += n;
    this.state.scan = { lsn, segment, offset, end, seq: h.seq, txId: h.txId };
  }

  private addDdl(e: DdlEntry, m: FrameMark, u: UnitState): void {
    const ids = e.tables.map((t) => this.tableId(t.schema, t.table, null));
    this.st.insEntry.run(m.lsn, m.segment, m.offset, e.seq, 'ddl', 0, ids[0] ?? null, 'ddl');
    // Shown by log/refusals only, never run: kept without passwords or hashes (mysql/accounts.ts).
    this.st.insDdl.run(e.seq, m.lsn, e.schema, redactSecrets(e.sql), e.txId);
    for (const id of ids) if (!u.tables.includes(id)) u.tables.push(id);
    u.ddl++;
    this.changes++;
  }

  private commitUnit(e: CommitEntry, m: FrameMark): void {
    const u = this.state.unit;
    const verify = u ? u.verify : this.afterGap;
    this.afterGap = false;
    const rows = u ? u.rows : 0n;
    if (verify && rows !== e.rowCount) {
      // Retention removed the unit's first frames: it cannot be listed or undone as a whole.
      this.log.warn(
        { txId: e.txId, commitSeq: e.seq.toString(), rows: rows.toString(), rowCount: e.rowCount.toString() },
        'rollback index: the oldest retained transaction lost its beginning to retention; not indexed',
      );
      this.discardUnit();
    } else {
      const s = this.state;
      const hwm = e.commitTimeUs > s.hwmUs ? e.commitTimeUs : s.hwmUs;
      const lag = hwm - e.commitTimeUs;
      if (lag > s.maxLagUs) s.maxLagUs = lag;
      s.hwmUs = hwm;
      const ids = u ? u.tables : [];
      const names = ids.map((id) => this.names.get(id) ?? '?').sort();
      this.st.insTx.run(
        e.seq,
        u ? u.firstSeq : e.seq,
        e.txId,
        e.commitTimeUs,
        e.captureTimeUs,
        hwm,
        u ? u.firstLsn : m.lsn,
        m.lsn,
        e.phase,
        JSON.stringify(positionToJson(e.position)),
        u ? u.insert : 0,
        u ? u.update : 0,
        u ? u.delete : 0,
        u ? u.ddl : 0,
        JSON.stringify(names.filter((n, i) => n !== names[i - 1])),
      );
      for (const id of ids) this.st.insTxTable.run(id, e.seq);
    }
    this.state.indexedLsn = m.lsn;
    this.state.committedSeq = e.seq;
    this.state.last = m;
    this.state.scan = null;
    this.state.unit = null;
  }

  private push(g: number, tid: number, key: string, seq: number | bigint, lsn: number | bigint): void {
    this.bg.push(g);
    this.bt.push(tid);
    this.bk.push(key);
    this.bs.push(seq);
    this.bl.push(lsn);
  }

  private flush(): void {
    const ins = this.st.insChange;
    const { bg, bt, bk, bs, bl } = this;
    for (let i = 0; i < bg.length; i++) {
      ins.run(bg[i] as number, bt[i] as number, bk[i] as string, bs[i] as number, bl[i] as number);
    }
    this.clearBuffer();
  }

  private clearBuffer(): void {
    this.bg = [];
    this.bt = [];
    this.bk = [];
    this.bs = [];
    this.bl = [];
  }
}
