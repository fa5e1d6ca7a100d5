/**
 * Decoded pgoutput messages → journal entries, one source transaction at a time (capture.ts feeds it; pure apart
 * from the injected `describe` catalog read and the `out` sink). Rows entries per run of one relation and
 * operation (at most ROWS_PER_ENTRY rows), one commit per transaction at its end LSN; `confirm(endLsn)` only
 * after `out.commitTx` resolved (durable), or at once for a transaction with nothing captured. TRUNCATE of a
 * captured table, a changed table shape (DDL) and a table the filter includes that joined the publication after
 * the baseline throw PG_UNSUPPORTED before anything of that transaction is committed: never a silent skip.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { TableFilter } from '../../mysql/table-filter.ts';
import { formatLsn } from '../../postgres/lsn.ts';
import type { RowImage, RowOp } from '../../record/record.ts';
import type { PgColumn, PgoutputDecoder, PgoutputMessage, PgValue, RelationMessage } from './pgoutput.ts';
import type { PgTableRef, TableShape } from './relations.ts';
import { rowImage } from './rows.ts';

/** Rows per rows entry of a stream transaction (bounded memory for a big transaction). */
export const ROWS_PER_ENTRY = 1000;
/** µs between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_US = 946_684_800_000_000n;

/** Where a transaction's entries go (PgCapture numbers and journals them). */
export interface TxOut {
  appendRows(shape: TableShape, op: RowOp, rows: readonly RowImage[], txId: string): Promise<void>;
  /** Resolves when the commit is durable. */
  commitTx(txId: string, lsn: bigint, rowCount: bigint, commitTimeUs: bigint): Promise<void>;
  /** A transaction with nothing captured was read up to `lsn`. */
  readTo(lsn: bigint): void;
}

export interface TxStreamerOptions {
  readonly out: TxOut;
  /** The shape of a captured relation from its Relation message's columns (relations.ts shapeOf). */
  readonly describe: (t: PgTableRef, cols: readonly PgColumn[]) => Promise<TableShape>;
  /** The tables captured since the baseline. */
  readonly tables: readonly PgTableRef[];
  readonly filter: TableFilter;
  /** The server may forget everything up to `lsn` (WalStream.confirm). */
  readonly confirm: (lsn: bigint) => void;
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
}

/** Turns decoded messages into entries, one source transaction at a time. */
export class TxStreamer {
  readonly #o: TxStreamerOptions;
  readonly #byOid: Map<number, PgTableRef>;
  /** Relation OID → its shape (null: not captured). */
  readonly #shapes = new Map<number, TableShape | null>();
  #tx: OpenTx | null = null;

  constructor(o: TxStreamerOptions) {
    this.#o = o;
    this.#byOid = new Map(o.tables.map((t) => [t.oid, t]));
  }

  get inTransaction(): boolean {
    return this.#tx !== null;
  }

  #where(): string {
    return this.#tx ? `xid ${this.#tx.xid} (commit ${formatLsn(this.#tx.commitLsn)})` : 'outside a transaction';
  }

  #txId(tx: OpenTx): string {
    return `${tx.xid}:${formatLsn(tx.commitLsn)}`;
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
    const shape = await this.#o.describe({ schema: m.namespace, table: m.name, oid: m.relationOid }, m.columns);
    const had = this.#shapes.get(m.relationOid);
    const same = (a: TableShape, b: TableShape) =>
      a.schema === b.schema && a.table === b.table && JSON.stringify(a.columns) === JSON.stringify(b.columns);
    if (had && !same(had, shape)) {
      throw unsupported(`a change of table ${name}'s shape (DDL, ${this.#where()})`, { table: name });
    }
    this.#shapes.set(m.relationOid, shape);
  }

  async #flush(tx: OpenTx): Promise<void> {
    const p = tx.pending;
    if (!p || p.rows.length === 0) return;
    tx.pending = null;
    await this.#o.out.appendRows(p.shape, p.op, p.rows, this.#txId(tx));
  }

  async message(m: PgoutputMessage<PgValue>, decoder: PgoutputDecoder): Promise<void> {
    switch (m.tag) {
      case 'begin':
        this.#tx = { xid: m.xid, commitLsn: m.finalLsn, pending: null, rowCount: 0n };
        return;
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
        if (shape === null) return;
        const { op, image } = rowImage(shape, m, this.#where());
        const p = tx.pending;
        if (p && (p.oid !== m.relationOid || p.op !== op || p.rows.length >= ROWS_PER_ENTRY)) await this.#flush(tx);
        tx.pending ??= { oid: m.relationOid, shape, op, rows: [] };
        tx.pending.rows.push(image);
        tx.rowCount++;
        return;
      }
      case 'truncate': {
        const names = m.relationOids
          .filter((oid) => this.#shapes.get(oid) !== null)
          .map((oid) => {
            const r = decoder.relation(oid);
            return r ? `${r.namespace}.${r.name}` : `relation ${oid}`;
          });
        if (names.length > 0) {
          throw unsupported(`TRUNCATE of ${names.join(', ')} (${this.#where()})`, { tables: names.join(',') });
        }
        return;
      }
      case 'commit': {
        const tx = this.#tx;
        if (!tx) throw new TidemarkError('pgoutput Commit without a Begin', { code: 'PG_PROTOCOL' });
        await this.#flush(tx);
        if (tx.rowCount > 0n) {
          await this.#o.out.commitTx(this.#txId(tx), m.endLsn, tx.rowCount, m.commitTime + PG_EPOCH_US);
        } else this.#o.out.readTo(m.endLsn);
        this.#tx = null;
        // Durable (the sink's commit resolved) or nothing to keep: the server may forget it.
        this.#o.confirm(m.endLsn);
        return;
      }
      default:
        // Origin, Type and logical messages carry nothing to capture (DDL messages: not yet, issue #14).
        return;
    }
  }
}
