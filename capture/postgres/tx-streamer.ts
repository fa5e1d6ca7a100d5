/**
 * Decoded pgoutput messages → journal entries, one source transaction at a time (capture.ts feeds it; pure apart
 * from the injected catalog reads and the `out` sink). Rows entries per run of one relation and operation (at
 * most ROWS_PER_ENTRY rows), DDL entries where the DDL happened, one commit per transaction at its end LSN;
 * `confirm(endLsn)` only after `out.commitTx` resolved (durable), or at once for a transaction with nothing
 * captured. DDL: a 'tidemark.ddl' logical message (ddl-triggers.sql) about a captured table, a table the
 * publication will stream (CREATE TABLE) or other objects of a captured schema becomes a DDL entry with its
 * statement text, and the next Relation message of a changed table is taken as its new shape. Without those
 * messages, a Relation message whose columns differ from the previous one is turned into synthesized DDL where
 * that is exact (shape-diff.ts), else PG_DDL_UNTRACKED. TRUNCATE becomes a DDL entry (a rewind barrier). A
 * transaction holding a 'tidemark.switchover' message is journaled even without rows (a 0-row commit). A
 * statement that cannot be replayed and a table that joined the publication otherwise than by CREATE TABLE throw
 * PG_UNSUPPORTED before anything of that transaction is committed: never a silent skip.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { TableFilter } from '../../mysql/table-filter.ts';
import { formatLsn } from '../../postgres/lsn.ts';
import type { RowImage, RowOp } from '../../record/record.ts';
import { DDL_MESSAGE_PREFIX, type DdlMessage, parseDdlMessage, statementProblem, truncateSql } from './ddl-message.ts';
import type { PgoutputDecoder } from './pgoutput.ts';
import type {
  CommitMessage,
  LogicalMessage,
  PgColumn,
  PgoutputMessage,
  PgValue,
  RelationMessage,
  TruncateMessage,
} from './pgoutput-messages.ts';
import type { PgTableRef, PublicationScope, TableShape } from './relations.ts';
import { rowImage } from './rows.ts';
import { type AddedColumnFacts, diffShapes, synthesizeDdl } from './shape-diff.ts';

/** Rows per rows entry of a stream transaction (bounded memory for a big transaction). */
export const ROWS_PER_ENTRY = 1000;
/**
 * The prefix of `tidemark switchover`'s marker (failover/pg-switchover.ts): a transactional logical message whose
 * transaction is journaled even though it changes no captured row (a commit entry with 0 rows), so it travels
 * behind every transaction committed before it and the standby's applier records its commit end.
 */
export const SWITCHOVER_MESSAGE_PREFIX = 'tidemark.switchover';
/** µs between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_US = 946_684_800_000_000n;

/** Where a transaction's entries go (PgCapture numbers and journals them). */
export interface TxOut {
  appendRows(shape: TableShape, op: RowOp, rows: readonly RowImage[], txId: string): Promise<void>;
  appendDdl(ddl: JournalDdl, txId: string): Promise<void>;
  /** Resolves when the commit is durable. */
  commitTx(txId: string, lsn: bigint, rowCount: bigint, commitTimeUs: bigint): Promise<void>;
  /** A transaction with nothing captured was read up to `lsn`. */
  readTo(lsn: bigint): void;
}

/** A DDL entry's content (PgCapture numbers it). */
export interface JournalDdl {
  /** The schema unqualified names of the statement resolve in (current_schema() on the source). */
  readonly schema: string;
  readonly tables: readonly { schema: string; table: string }[];
  readonly sql: string;
}

export interface TxStreamerOptions {
  readonly out: TxOut;
  /** The shape of a captured relation from its Relation message's columns (relations.ts shapeOf). */
  readonly describe: (t: PgTableRef, cols: readonly PgColumn[]) => Promise<TableShape>;
  /** The tables captured since the baseline. */
  readonly tables: readonly PgTableRef[];
  /** Which new tables the publication streams by itself (CREATE TABLE is captured for those). */
  readonly scope: PublicationScope;
  /** Catalog facts of columns a Relation message added (relations.ts addedColumnFacts). */
  readonly addedColumns: (t: PgTableRef, names: readonly string[]) => Promise<AddedColumnFacts[]>;
  /** false: 'tidemark.ddl' messages are ignored (source.ddl: relations), the fallback alone tracks DDL. */
  readonly ddlMessages: boolean;
  readonly filter: TableFilter;
  /** The server may forget everything up to `lsn` (WalStream.confirm). */
  readonly confirm: (lsn: bigint) => void;
  /** true: a transaction of this replication origin is not captured (source.skip_origins). Absent: none skipped. */
  readonly skipOrigin?: (origin: string) => boolean;
}

export function unsupported(what: string, context: Record<string, string>): TidemarkError {
  return new TidemarkError(`${what} is not yet supported by PostgreSQL capture; capture stopped before it`, {
    code: 'PG_UNSUPPORTED',
    retriable: false,
    context,
  });
}

interface OpenTx {
  readonly xid: number;
  readonly commitLsn: bigint;
  pending: { oid: number; shape: TableShape; op: RowOp; rows: RowImage[] } | null;
  rowCount: bigint;
  ddl: number;
  /** #txId, made once. */
  id: string | undefined;
  /** Its Origin message names an origin skip_origins skips: nothing of it is journaled. */
  skipped: boolean;
  /** It holds a switchover marker: journaled even without rows. */
  marker: boolean;
}

/** Turns decoded messages into entries, one source transaction at a time. */
export class TxStreamer {
  readonly #o: TxStreamerOptions;
  readonly #byOid: Map<number, PgTableRef>;
  /** Relation OID → its shape (null: not captured). */
  readonly #shapes = new Map<number, TableShape | null>();
  /** Tables a DDL message changed: their next Relation message is their new shape, not an untracked change. */
  readonly #announced = new Set<number>();
  #tx: OpenTx | null = null;
  /** Transactions skipped for their replication origin (since this streamer started). */
  skippedByOrigin = 0;

  constructor(o: TxStreamerOptions) {
    this.#o = o;
    this.#byOid = new Map(o.tables.map((t) => [t.oid, t]));
  }

  get inTransaction(): boolean {
    return this.#tx !== null;
  }

  /** #where, called only when a row's error needs it (not made per row). */
  readonly #whereFn = (): string => this.#where();

  #where(): string {
    return this.#tx ? `xid ${this.#tx.xid} (commit ${formatLsn(this.#tx.commitLsn)})` : 'outside a transaction';
  }

  #txId(tx: OpenTx): string {
    tx.id ??= `${tx.xid}:${formatLsn(tx.commitLsn)}`;
    return tx.id;
  }

  async #relation(m: RelationMessage): Promise<void> {
    const t = this.#byOid.get(m.relationOid);
    const name = `${m.namespace}.${m.name}`;
    if (!t) {
      if (this.#o.filter.includesTable(m.namespace, m.name)) {
        throw unsupported(`table ${name} joined the publication after the baseline (${this.#where()}): capturing it`, {
          table: name,
        });
      }
      this.#shapes.set(m.relationOid, null);
      return;
    }
    const now = { schema: m.namespace, table: m.name, oid: m.relationOid };
    this.#byOid.set(m.relationOid, now); // the name it has now (ALTER TABLE … RENAME)
    const shape = await this.#o.describe(now, m.columns);
    const had = this.#shapes.get(m.relationOid);
    const same = (a: TableShape, b: TableShape) =>
      a.schema === b.schema && a.table === b.table && JSON.stringify(a.columns) === JSON.stringify(b.columns);
    // A transaction skipped for its origin (tidemark applied it here) changes shapes by DDL that came from elsewhere.
    const ours = this.#tx?.skipped === true;
    if (had && !same(had, shape) && !this.#announced.has(m.relationOid) && !ours) await this.#untracked(t, had, shape);
    this.#announced.delete(m.relationOid);
    this.#shapes.set(m.relationOid, shape);
  }

  /** A shape change no DDL message announced: synthesized DDL where exact, else PG_DDL_UNTRACKED. */
  async #untracked(t: PgTableRef, had: TableShape, shape: TableShape): Promise<void> {
    const tx = this.#tx;
    const name = `${shape.schema}.${shape.table}`;
    const change = diffShapes(had, shape);
    let why = change.kind === 'inexact' ? change.why : 'it changed in name only';
    if (tx && (change.kind === 'added' || change.kind === 'dropped')) {
      const facts =
        change.kind === 'added'
          ? await this.#o.addedColumns(
              t,
              change.columns.map((c) => c.name),
            )
          : [];
      const out = synthesizeDdl(shape, change, facts);
      if ('sql' in out) {
        await this.#flush(tx);
        for (const sql of out.sql)
          await this.#ddl(tx, { schema: shape.schema, tables: [{ schema: shape.schema, table: shape.table }], sql });
        return;
      }
      why = out.why;
    }
    throw new TidemarkError(
      `table ${name} changed shape without a DDL message (${this.#where()}) and the change cannot be replayed ` +
        `exactly: ${why}. Install tidemark's DDL event triggers (psql -d <db> -f capture/postgres/ddl-triggers.sql, ` +
        'as a superuser) before such DDL, or apply it to the targets by hand and re-baseline',
      { code: 'PG_DDL_UNTRACKED', retriable: false, context: { table: name } },
    );
  }

  async #ddl(tx: OpenTx, d: JournalDdl): Promise<void> {
    await this.#o.out.appendDdl(d, this.#txId(tx));
    tx.ddl++;
  }

  /** A 'tidemark.ddl' message: journaled when it is about what is captured; the shapes it changes are re-read. */
  async #message(m: LogicalMessage): Promise<void> {
    if (m.prefix === SWITCHOVER_MESSAGE_PREFIX && m.transactional && this.#tx && !this.#tx.skipped) {
      this.#tx.marker = true;
      return;
    }
    if (m.prefix !== DDL_MESSAGE_PREFIX || !m.transactional || !this.#o.ddlMessages) return;
    const tx = this.#tx;
    if (!tx)
      throw new TidemarkError('pgoutput logical message tidemark.ddl outside a transaction', { code: 'PG_PROTOCOL' });
    const d = parseDdlMessage(m.content);
    const touched = d.objects.filter((o) => o.relid !== null && this.#byOid.has(o.relid)).map((o) => o.relid as number);
    const created = d.tag === 'CREATE TABLE' ? d.objects.filter((o) => this.#creates(o)) : [];
    // About tables (relid: a table, its column or index): decided by the tables; else (types, sequences, views,
    // functions, a dropped index) by the schema.
    const tableish = d.objects.some((o) => o.relid !== null);
    const schemas = new Set([...this.#byOid.values()].map((t) => t.schema));
    const inSchema = !tableish && d.objects.some((o) => o.schema !== null && schemas.has(o.schema));
    if (touched.length === 0 && created.length === 0 && !inSchema) return;
    if (tx.skipped) {
      // Applied here by tidemark from another source: not journaled, but the tables it creates, changes or drops are.
      this.#track(
        d,
        touched,
        created.map((o) => ({ schema: o.schema as string, table: o.name as string, oid: o.oid as number })),
      );
      return;
    }
    const problem = statementProblem(d.tag, d.sql);
    if (problem) {
      throw unsupported(`replaying ${d.tag} (${this.#where()}): ${problem}; statement: ${d.sql.slice(0, 200)}`, {
        tag: d.tag,
      });
    }
    await this.#flush(tx);
    const tables = [...new Set(touched)].map((oid) => this.#byOid.get(oid) as PgTableRef);
    for (const o of created) tables.push({ schema: o.schema as string, table: o.name as string, oid: o.oid as number });
    await this.#ddl(tx, {
      schema: d.schema,
      tables: tables.map((t) => ({ schema: t.schema, table: t.table })),
      sql: d.sql,
    });
    this.#track(d, touched, tables.slice(touched.length));
  }

  /** A table a CREATE TABLE made that the publication streams and the filter includes. */
  #creates(o: DdlMessage['objects'][number]): boolean {
    if (o.type !== 'table' || o.oid === null || o.schema === null || o.name === null) return false;
    const sc = this.#o.scope;
    return (sc.allTables || sc.schemas.has(o.schema)) && this.#o.filter.includesTable(o.schema, o.name);
  }

  /** After a DDL entry: new tables are captured, dropped ones forgotten, changed ones take their next Relation. */
  #track(d: DdlMessage, touched: readonly number[], created: readonly PgTableRef[]): void {
    for (const t of created) this.#byOid.set(t.oid, t);
    for (const oid of touched) {
      // Not forgotten: a DDL that leaves the relation cache alone (COMMENT) is followed by no Relation message.
      this.#announced.add(oid);
      if (d.tag === 'DROP TABLE' && d.objects.some((o) => o.type === 'table' && o.oid === oid)) this.#byOid.delete(oid);
    }
  }

  async #truncate(m: TruncateMessage, decoder: PgoutputDecoder): Promise<void> {
    const tx = this.#tx;
    const tables = m.relationOids
      .filter((oid) => this.#byOid.has(oid))
      .map((oid) => {
        const r = decoder.relation(oid);
        return r ? { schema: r.namespace, table: r.name } : (this.#byOid.get(oid) as PgTableRef);
      });
    if (tables.length === 0) return;
    if (!tx) throw new TidemarkError('pgoutput Truncate outside a transaction', { code: 'PG_PROTOCOL' });
    await this.#flush(tx);
    const sql = truncateSql(tables, m.restartIdentity);
    await this.#ddl(tx, {
      schema: (tables[0] as { schema: string }).schema,
      tables: tables.map((t) => ({ schema: t.schema, table: t.table })),
      sql,
    });
  }

  async #flush(tx: OpenTx): Promise<void> {
    const p = tx.pending;
    if (!p || p.rows.length === 0) return;
    tx.pending = null;
    await this.#o.out.appendRows(p.shape, p.op, p.rows, this.#txId(tx));
  }

  /**
   * Takes one decoded message. A row change returns nothing unless it had to flush a full rows entry first (the
   * per-row path makes no promise); anything else returns the promise of its journal work: await it before the
   * next message.
   */
  message(m: PgoutputMessage<PgValue>, decoder: PgoutputDecoder): Promise<void> | undefined {
    switch (m.tag) {
      case 'begin':
        this.#tx = {
          xid: m.xid,
          commitLsn: m.finalLsn,
          pending: null,
          rowCount: 0n,
          ddl: 0,
          id: undefined,
          skipped: false,
          marker: false,
        };
        return undefined;
      case 'origin':
        // Sent after Begin, before any change, for a transaction written under a replication origin.
        if (this.#tx && this.#o.skipOrigin?.(m.name) === true) {
          this.#tx.skipped = true;
          this.skippedByOrigin++;
        }
        return undefined;
      case 'relation':
        return this.#relation(m);
      case 'insert':
      case 'update':
      case 'delete': {
        const tx = this.#tx;
        const shape = this.#shapes.get(m.relationOid);
        if (!tx || shape === undefined) {
          throw new TidemarkError(`pgoutput ${m.tag} ${this.#where()} for relation ${m.relationOid} out of order`, {
            code: 'PG_PROTOCOL',
          });
        }
        if (shape === null || tx.skipped) return undefined;
        const { op, image } = rowImage(shape, m, this.#whereFn);
        const p = tx.pending;
        // #flush hands the full entry over before its first await: the new one can start at once.
        const flushed =
          p && (p.oid !== m.relationOid || p.op !== op || p.rows.length >= ROWS_PER_ENTRY)
            ? this.#flush(tx)
            : undefined;
        tx.pending ??= { oid: m.relationOid, shape, op, rows: [] };
        tx.pending.rows.push(image);
        tx.rowCount++;
        return flushed;
      }
      case 'truncate':
        return this.#tx?.skipped === true ? undefined : this.#truncate(m, decoder);
      case 'message':
        return this.#message(m);
      case 'commit':
        return this.#commit(m);
      default:
        // Type messages carry nothing to capture.
        return undefined;
    }
  }

  async #commit(m: CommitMessage): Promise<void> {
    const tx = this.#tx;
    if (!tx) throw new TidemarkError('pgoutput Commit without a Begin', { code: 'PG_PROTOCOL' });
    await this.#flush(tx);
    if (tx.rowCount > 0n || tx.ddl > 0 || tx.marker) {
      await this.#o.out.commitTx(this.#txId(tx), m.endLsn, tx.rowCount, m.commitTime + PG_EPOCH_US);
    } else this.#o.out.readTo(m.endLsn);
    this.#tx = null;
    // Durable (the sink's commit resolved) or nothing to keep: the server may forget it.
    this.#o.confirm(m.endLsn);
  }
}
