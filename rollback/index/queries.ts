/**
 * Read side of the rollback index: prepared queries over the tables described in schema.ts. Only complete
 * (committed) transactions are visible: rows of a unit still being indexed have seqs above committedSeq.
 *
 * Commit times may go back a little along commit order (clock steps, transactions that commit out of their start
 * order), so queries by time use txs.hwm_us (running maximum, never decreasing along commit_seq) and the largest
 * lag seen (state.maxLagUs) to bound the commit_seq range they scan.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { positionFromJson } from '../../record/position.ts';
import type { Phase, RowOp } from '../../record/record.ts';
import { GEN_SHIFT } from './schema.ts';
import type { IndexState } from './state.ts';
import type { DdlInfo, EntryRef, RowVersionRef, TxInfo, TxQuery } from './types.ts';

type Row = Record<string, unknown>;

const GEN = BigInt(GEN_SHIFT);
/** Keys per probe statement of laterCommitsMany. */
const PROBE_KEYS = 1000;
const TX_COLUMNS = `commit_seq, first_seq, tx_id, commit_time_us, first_lsn, commit_lsn, phase, position, ins, upd,
  del, ddl, tables`;
const VERSION_COLUMNS = `c.seq, c.lsn, e.segment, e.off, e.seq AS eseq, e.op,
  (SELECT x.commit_seq FROM txs x WHERE x.commit_seq >= c.seq ORDER BY x.commit_seq LIMIT 1) AS commit_seq`;

export class IndexQueries {
  private readonly db: DatabaseSync;
  private readonly state: () => IndexState;
  private readonly cache = new Map<string, StatementSync>();

  constructor(db: DatabaseSync, state: () => IndexState) {
    this.db = db;
    this.state = state;
  }

  private stmt(sql: string): StatementSync {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  private one(sql: string, ...params: (bigint | string | number | null)[]): Row | undefined {
    return this.stmt(sql).get(...params) as Row | undefined;
  }

  private tableId(schema: string, table: string): bigint | null {
    const r = this.one('SELECT id FROM tables WHERE schema_name = ? AND table_name = ?', schema, table);
    return r ? (r.id as bigint) : null;
  }

  /** "schema.table" → id; a name may contain dots, so every split is tried. */
  private tableByName(name: string): bigint | null {
    for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      const id = this.tableId(name.slice(0, dot), name.slice(dot + 1));
      if (id !== null) return id;
    }
    return null;
  }

  private toTx(r: Row): TxInfo {
    const commitSeq = r.commit_seq as bigint;
    const firstSeq = r.first_seq as bigint;
    return {
      commitSeq,
      firstSeq,
      txId: r.tx_id as string,
      commitTimeUs: r.commit_time_us as bigint,
      firstLsn: r.first_lsn as bigint,
      commitLsn: r.commit_lsn as bigint,
      phase: r.phase as Phase,
      position: positionFromJson(JSON.parse(r.position as string), 'rollback index'),
      rows: { insert: Number(r.ins), update: Number(r.upd), delete: Number(r.del) },
      tables: JSON.parse(r.tables as string) as string[],
      ddl: (r.ddl as bigint) > 0n ? this.ddlRange(firstSeq - 1n, commitSeq) : [],
    };
  }

  /** Where a query on commit times can start and end along commit_seq; null when nothing can match. */
  private seqBounds(q: TxQuery): { lo: bigint | null; hi: bigint | null } | null {
    let lo: bigint | null = null;
    let hi: bigint | null = null;
    if (q.sinceUs !== undefined) {
      const r = this.one('SELECT commit_seq FROM txs WHERE hwm_us >= ? ORDER BY hwm_us, commit_seq LIMIT 1', q.sinceUs);
      if (!r) return null;
      lo = r.commit_seq as bigint;
    }
    if (q.untilUs !== undefined) {
      const r = this.one(
        'SELECT commit_seq FROM txs WHERE hwm_us <= ? ORDER BY hwm_us DESC, commit_seq DESC LIMIT 1',
        q.untilUs + this.state().maxLagUs,
      );
      if (!r) return null;
      hi = r.commit_seq as bigint;
    }
    return { lo, hi };
  }

  *iterateTxs(q: TxQuery): Generator<TxInfo> {
    const bounds = this.seqBounds(q);
    if (!bounds) return;
    let table: bigint | null = null;
    if (q.table !== undefined) {
      table = this.tableByName(q.table);
      if (table === null) return;
    }
    // With a table, walk tx_tables (table_id, commit_seq) in order and look each transaction up.
    const seq = table === null ? 't.commit_seq' : 'x.commit_seq';
    const where: string[] = [];
    const params: bigint[] = [];
    const add = (cond: string, v: bigint) => {
      where.push(cond);
      params.push(v);
    };
    if (table !== null) add('x.table_id = ?', table);
    if (bounds.lo !== null) add(`${seq} >= ?`, bounds.lo);
    if (bounds.hi !== null) add(`${seq} <= ?`, bounds.hi);
    if (q.afterSeq !== undefined) add(`${seq} > ?`, q.afterSeq);
    if (q.uptoSeq !== undefined) add(`${seq} <= ?`, q.uptoSeq);
    if (q.sinceUs !== undefined) add('t.commit_time_us >= ?', q.sinceUs);
    if (q.untilUs !== undefined) add('t.commit_time_us <= ?', q.untilUs);
    const cols = TX_COLUMNS.split(',')
      .map((c) => `t.${c.trim()}`)
      .join(', ');
    let sql = `SELECT ${cols} FROM ${table === null ? 'txs t' : 'tx_tables x JOIN txs t ON t.commit_seq = x.commit_seq'}`;
    if (where.length > 0) sql += ` WHERE ${where.join(' AND ')}`;
    sql += ` ORDER BY ${seq} ${q.order === 'desc' ? 'DESC' : 'ASC'}`;
    if (q.limit !== undefined) sql += ` LIMIT ${Math.max(0, Math.floor(q.limit))}`;
    // A statement of its own: callers may run other queries (or another iteration) while this one is open.
    for (const r of this.db.prepare(sql).iterate(...params)) yield this.toTx(r as Row);
  }

  listTxs(q: TxQuery): TxInfo[] {
    return [...this.iterateTxs(q)];
  }

  txById(txId: string): TxInfo | null {
    const r = this.one(`SELECT ${TX_COLUMNS} FROM txs WHERE tx_id = ? ORDER BY commit_seq DESC LIMIT 1`, txId);
    return r ? this.toTx(r) : null;
  }

  txByCommitSeq(seq: bigint): TxInfo | null {
    const r = this.one(`SELECT ${TX_COLUMNS} FROM txs WHERE commit_seq = ?`, seq);
    return r ? this.toTx(r) : null;
  }

  txContaining(seq: bigint): TxInfo | null {
    const r = this.one(`SELECT ${TX_COLUMNS} FROM txs WHERE commit_seq >= ? ORDER BY commit_seq LIMIT 1`, seq);
    return r && (r.first_seq as bigint) <= seq ? this.toTx(r) : null;
  }

  lastTxAtOrBefore(timeUs: bigint): TxInfo | null {
    // Every transaction with commit time <= t has hwm <= t + maxLag, so none lies after the last such hwm.
    const b = this.one(
      'SELECT commit_seq FROM txs WHERE hwm_us <= ? ORDER BY hwm_us DESC, commit_seq DESC LIMIT 1',
      timeUs + this.state().maxLagUs,
    );
    if (!b) return null;
    const r = this.one(
      `SELECT ${TX_COLUMNS} FROM txs WHERE commit_seq <= ? AND commit_time_us <= ? ORDER BY commit_seq DESC LIMIT 1`,
      b.commit_seq as bigint,
      timeUs,
    );
    return r ? this.toTx(r) : null;
  }

  entriesOf(commitSeq: bigint): EntryRef[] {
    const tx = this.one('SELECT first_lsn, commit_lsn FROM txs WHERE commit_seq = ?', commitSeq);
    if (!tx) return [];
    const rows = this.stmt(
      `SELECT e.lsn, e.segment, e.off, e.kind, e.seq, e.nrows, e.op, t.schema_name, t.table_name,
         d.schema_name AS ddl_schema
       FROM entries e LEFT JOIN tables t ON t.id = e.table_id LEFT JOIN ddls d ON e.kind = 'ddl' AND d.seq = e.seq
       WHERE e.lsn >= ? AND e.lsn < ? ORDER BY e.lsn`,
    ).all(tx.first_lsn as bigint, tx.commit_lsn as bigint) as Row[];
    return rows.map((r) => ({
      lsn: r.lsn as bigint,
      segment: r.segment as bigint,
      offset: Number(r.off),
      kind: r.kind as 'rows' | 'ddl',
      seq: r.seq as bigint,
      rows: Number(r.nrows),
      schema: (r.schema_name ?? r.ddl_schema ?? '') as string,
      table: (r.table_name ?? '') as string,
      op: r.op as RowOp | 'ddl',
    }));
  }

  private versions(rows: Row[]): RowVersionRef[] {
    const out: RowVersionRef[] = [];
    for (const r of rows) {
      if (r.commit_seq === null) continue;
      out.push({
        seq: r.seq as bigint,
        commitSeq: r.commit_seq as bigint,
        lsn: r.lsn as bigint,
        segment: r.segment as bigint,
        offset: Number(r.off),
        row: Number((r.seq as bigint) - (r.eseq as bigint)),
        op: r.op as RowOp,
      });
    }
    return out;
  }

  keyVersions(schema: string, table: string, keyText: string): RowVersionRef[] {
    const id = this.tableId(schema, table);
    if (id === null) return [];
    const rows = this.stmt(
      `SELECT ${VERSION_COLUMNS} FROM changes c JOIN entries e ON e.lsn = c.lsn
       WHERE c.g IN (SELECT g FROM gens) AND c.table_id = ? AND c.key = ? AND c.seq <= ? ORDER BY c.seq`,
    ).all(id, keyText, this.state().committedSeq) as Row[];
    return this.versions(rows);
  }

  laterChanges(schema: string, table: string, keyText: string, afterSeq: bigint, uptoSeq: bigint): RowVersionRef[] {
    const id = this.tableId(schema, table);
    const committed = this.state().committedSeq;
    const upto = uptoSeq < committed ? uptoSeq : committed;
    if (id === null || upto <= afterSeq) return [];
    const rows = this.stmt(
      `SELECT ${VERSION_COLUMNS} FROM changes c JOIN entries e ON e.lsn = c.lsn
       WHERE c.g IN (SELECT g FROM gens WHERE g BETWEEN ? AND ?) AND c.table_id = ? AND c.key = ?
         AND c.seq > ? AND c.seq <= ? ORDER BY c.seq`,
    ).all((afterSeq + 1n) >> GEN, upto >> GEN, id, keyText, afterSeq, upto) as Row[];
    return this.versions(rows);
  }

  /**
   * Did a transaction committed after afterSeq change the table? When not (the usual case when the newest changes
   * of a table are undone) no key of it can have a later change: undo skips computing keys and 100k probes.
   * Every change with seq > afterSeq belongs to a transaction whose commit seq is > afterSeq; no upper bound, so a
   * window ending inside a transaction still counts it.
   */
  touchedAfter(schema: string, table: string, afterSeq: bigint): boolean {
    const id = this.tableId(schema, table);
    if (id === null) return false;
    return (
      this.stmt('SELECT 1 FROM tx_tables WHERE table_id = ? AND commit_seq > ? LIMIT 1').get(id, afterSeq) !== undefined
    );
  }

  /**
   * laterChanges for many keys of one table at once, for undo's conflict analysis: the commit seqs of each key's
   * changes with afterSeq < seq <= uptoSeq (keys without any are left out). The index state and the generations
   * in range are read once and each probe is a bare primary-key lookup, which is what makes 100k keys cost a
   * fraction of a second instead of seconds.
   */
  laterCommitsMany(
    schema: string,
    table: string,
    keyTexts: Iterable<string>,
    afterSeq: bigint,
    uptoSeq: bigint,
  ): Map<string, bigint[]> {
    const out = new Map<string, bigint[]>();
    const id = this.tableId(schema, table);
    const committed = this.state().committedSeq;
    const upto = uptoSeq < committed ? uptoSeq : committed;
    if (id === null || upto <= afterSeq || !this.touchedAfter(schema, table, afterSeq)) return out;
    const gens = (
      this.stmt('SELECT g FROM gens WHERE g BETWEEN ? AND ? ORDER BY g').all(
        (afterSeq + 1n) >> GEN,
        upto >> GEN,
      ) as Row[]
    ).map((r) => r.g as bigint);
    // One statement per generation for all keys (json_each drives primary-key lookups inside SQLite): 100k keys
    // cost ~100 statements per generation instead of 100k.
    const probe = this.stmt(
      `SELECT j.value AS key, c.seq FROM json_each(?) j CROSS JOIN changes c
       WHERE c.g = ? AND c.table_id = ? AND c.key = j.value AND c.seq > ? AND c.seq <= ? ORDER BY j.key, c.seq`,
    );
    const commitOf = this.stmt('SELECT commit_seq FROM txs WHERE commit_seq >= ? ORDER BY commit_seq LIMIT 1');
    const keys = [...new Set(keyTexts)];
    const found = new Map<string, bigint[]>();
    for (let at = 0; at < keys.length; at += PROBE_KEYS) {
      const json = JSON.stringify(keys.slice(at, at + PROBE_KEYS));
      for (const g of gens) {
        for (const r of probe.all(json, g, id, afterSeq, upto) as Row[]) {
          const c = commitOf.get(r.seq as bigint) as Row | undefined;
          if (!c) continue;
          const k = r.key as string;
          const list = found.get(k);
          if (list) list.push(c.commit_seq as bigint);
          else found.set(k, [c.commit_seq as bigint]);
        }
      }
    }
    for (const k of keys) {
      const list = found.get(k);
      if (list) out.set(k, list);
    }
    return out;
  }

  private ddlRange(afterSeq: bigint, uptoSeq: bigint): DdlInfo[] {
    const rows = this.stmt(
      `SELECT d.seq, d.lsn, d.schema_name, d.sql, d.tx_id,
         (SELECT x.commit_time_us FROM txs x WHERE x.commit_seq >= d.seq ORDER BY x.commit_seq LIMIT 1) AS time_us
       FROM ddls d WHERE d.seq > ? AND d.seq <= ? ORDER BY d.seq`,
    ).all(afterSeq, uptoSeq) as Row[];
    return rows.map((r) => ({
      seq: r.seq as bigint,
      lsn: r.lsn as bigint,
      schema: r.schema_name as string,
      sql: r.sql as string,
      commitTimeUs: (r.time_us ?? 0n) as bigint,
      txId: r.tx_id as string,
    }));
  }

  ddlBetween(afterSeq: bigint, uptoSeq: bigint): DdlInfo[] {
    const committed = this.state().committedSeq;
    return this.ddlRange(afterSeq, uptoSeq < committed ? uptoSeq : committed);
  }

  primaryKey(schema: string, table: string): string[] | null {
    const r = this.one('SELECT pk FROM tables WHERE schema_name = ? AND table_name = ?', schema, table);
    return r && r.pk !== null ? (JSON.parse(r.pk as string) as string[]) : null;
  }
}
