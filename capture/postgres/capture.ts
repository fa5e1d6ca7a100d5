/**
 * One capture attempt of a PostgreSQL source (engine/source.ts SourceCapture): a baseline when due (baseline.ts),
 * then the slot's pgoutput stream (replication.ts, walstream.ts, pgoutput.ts) into the journal sink. Each source
 * transaction becomes rows entries (one per run of one relation and operation, at most ROWS_PER_ENTRY rows) and
 * one commit at sequencePosition('postgres', commit end LSN); the end LSN is confirmed to the server only after
 * the sink's commit resolved (durable), so the slot never passes the journal. Resuming starts the stream at the
 * journal's own last commit position, never at the server's. TRUNCATE, a changed table shape (DDL) and a table
 * that joined the publication after the baseline stop capture with PG_UNSUPPORTED before that transaction is
 * journaled: nothing is skipped silently.
 */
import type pg from 'pg';
import { CorruptionError, TidemarkError } from '../../core/errors.ts';
import type { CaptureOptions, CaptureStatus, SourceCapture } from '../../engine/source.ts';
import { createTableFilter } from '../../mysql/table-filter.ts';
import { wrapPgError } from '../../postgres/errors.ts';
import { formatLsn } from '../../postgres/lsn.ts';
import { openPgClient, type PgEndpoint } from '../../postgres/session.ts';
import { type SequencePosition, sequencePosition } from '../../record/position.ts';
import type { CommitEntry, Phase, RowImage, RowOp, RowsEntry } from '../../record/record.ts';
import { seqSpan } from '../../record/record.ts';
import { takeBaseline } from './baseline.ts';
import type { PgSourceSection } from './config.ts';
import { PgoutputDecoder, type PgoutputMessage, type PgValue, type RelationMessage } from './pgoutput.ts';
import { assertPgPrerequisites, readPgFacts } from './prerequisites.ts';
import { capturedTables, type PgTableRef, shapeOf, type TableShape } from './relations.ts';
import { startReplication } from './replication.ts';
import { rowImage } from './rows.ts';
import type { WalStream } from './walstream.ts';

export const POSITION_ENGINE = 'postgres';
/** Rows per rows entry of a stream transaction (bounded memory for a big transaction). */
const ROWS_PER_ENTRY = 1000;
/** µs between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_US = 946_684_800_000_000n;
const nowUs = () => BigInt(Date.now()) * 1000n;

/** The endpoint of a source section (the section has the endpoint's keys; the password stays non-enumerable). */
export const endpointOf = (s: PgSourceSection): PgEndpoint => s;

/** Connects, lists the captured tables and checks every prerequisite (one PREREQUISITE error listing all). */
export async function openChecked(s: PgSourceSection): Promise<{ client: pg.Client; tables: PgTableRef[] }> {
  const client = await openPgClient(endpointOf(s), { applicationName: 'tidemark-capture', tlsKey: 'source.tls' });
  try {
    const tables = await capturedTables(client, s.publication, createTableFilter(s.include, s.exclude));
    const facts = await readPgFacts(client, { slot: s.slot, tables });
    assertPgPrerequisites(facts, { host: s.host, port: s.port, identityFullOptOut: s.identity_full_opt_out });
    if (tables.length === 0) {
      throw new TidemarkError(
        `publication "${s.publication}" has no table that source.include/exclude select: add tables to it ` +
          '(ALTER PUBLICATION … ADD TABLE …) or widen source.include',
        { code: 'PREREQUISITE', retriable: false, context: { publication: s.publication } },
      );
    }
    return { client, tables };
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
}

function unsupported(what: string, context: Record<string, string>): TidemarkError {
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

export class PgCapture implements SourceCapture {
  readonly #o: CaptureOptions<PgSourceSection>;
  #phase: CaptureStatus['phase'] = 'starting';
  #position: SequencePosition | null;
  #read: SequencePosition | null;
  #nextSeq: bigint;
  #ws: WalStream | undefined;

  constructor(o: CaptureOptions<PgSourceSection>) {
    this.#o = o;
    const p = o.resume?.position ?? null;
    if (p && (p.kind !== 'sequence' || p.engine !== POSITION_ENGINE)) {
      throw new CorruptionError('the journal holds positions of another engine than postgres', {
        source: o.source.name,
      });
    }
    this.#position = p;
    this.#read = p;
    this.#nextSeq = o.resume ? o.resume.seq + 1n : 1n;
  }

  status(): CaptureStatus {
    return {
      phase: this.#phase,
      position: this.#position,
      readPosition: this.#read,
      nextSeq: this.#nextSeq,
      reconnects: 0,
      pauses: this.#ws?.pauses ?? 0,
    };
  }

  async run(signal: AbortSignal): Promise<void> {
    const s = this.#o.source;
    const { client, tables } = await openChecked(s);
    try {
      const r = this.#o.resume;
      let start: bigint | null;
      if (!r || r.phase === 'baseline' || this.#o.forceBaseline) start = await this.#baseline(client, tables, signal);
      else start = await this.#resumeAt(client, (r.position as SequencePosition).value);
      if (start === null || signal.aborted) return;
      this.#phase = 'streaming';
      await this.#stream(client, tables, start, signal);
    } finally {
      this.#phase = 'stopped';
      await client.end().catch(() => {});
    }
  }

  async #commit(txId: string, lsn: bigint, phase: Phase, rowCount: bigint, commitTimeUs: bigint): Promise<void> {
    const position = sequencePosition(POSITION_ENGINE, lsn);
    const c: CommitEntry = {
      kind: 'commit',
      source: this.#o.source.name,
      seq: this.#nextSeq++,
      txId,
      position,
      commitTimeUs,
      captureTimeUs: nowUs(),
      rowCount,
      phase,
    };
    await this.#o.sink.commit(c);
    this.#position = position;
    this.#read = position;
  }

  async #rows(shape: TableShape, op: RowOp, rows: readonly RowImage[], txId: string): Promise<void> {
    const entry: RowsEntry = {
      kind: 'rows',
      source: this.#o.source.name,
      seq: this.#nextSeq,
      txId,
      schema: shape.schema,
      table: shape.table,
      op,
      columns: shape.columns,
      pk: shape.pk,
      rows,
    };
    this.#nextSeq += seqSpan(entry);
    await this.#o.sink.append(entry);
  }

  /** A new slot and snapshot (an old slot of this name is dropped: its position means nothing to a new baseline). */
  async #baseline(client: pg.Client, tables: readonly PgTableRef[], signal: AbortSignal): Promise<bigint | null> {
    const s = this.#o.source;
    this.#phase = 'baseline';
    try {
      await client.query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()',
        [s.slot],
      );
    } catch (err) {
      throw wrapPgError(err, `drop the old replication slot ${s.slot} before a new baseline`, { slot: s.slot });
    }
    const t0 = nowUs();
    const at = await takeBaseline({
      endpoint: endpointOf(s),
      slot: s.slot,
      tables,
      chunkRows: s.baseline.chunk_rows,
      log: this.#o.log,
      signal,
      emit: {
        rows: (shape, rows, txId) => this.#rows(shape, 'insert', rows, txId),
        commit: (txId, lsn, n) => this.#commit(txId, lsn, 'baseline', n, t0),
      },
    });
    if (at === null) return null;
    await this.#commit(`baseline:${formatLsn(at)}`, at, 'baseline-end', 0n, t0);
    return at;
  }

  /** The slot must still exist and hold WAL from the journal's position on; else re-baseline (never a skip). */
  async #resumeAt(client: pg.Client, lsn: bigint): Promise<bigint> {
    const s = this.#o.source;
    const r = await client.query('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [s.slot]);
    const status = (r.rows[0] as { wal_status: string | null } | undefined)?.wal_status;
    if (status === undefined || status === 'lost') {
      throw new TidemarkError(
        `replication slot ${s.slot} ${status === 'lost' ? 'was invalidated (its WAL was removed)' : 'does not exist'}: ` +
          `the changes after the journal's position ${formatLsn(lsn)} are gone; re-baseline (tidemark run --rebaseline)`,
        { code: 'PG_SLOT_LOST', retriable: false, context: { slot: s.slot, lsn: formatLsn(lsn) } },
      );
    }
    return lsn;
  }

  async #stream(client: pg.Client, tables: readonly PgTableRef[], start: bigint, signal: AbortSignal): Promise<void> {
    const s = this.#o.source;
    const ws = await startReplication(endpointOf(s), {
      slot: s.slot,
      publications: [s.publication],
      startLsn: start,
      applicationName: 'tidemark-capture',
    });
    this.#ws = ws;
    const stopped = new Promise<null>((res) => {
      if (signal.aborted) res(null);
      else signal.addEventListener('abort', () => res(null), { once: true });
    });
    const decoder = new PgoutputDecoder();
    const streamer = new TxStreamer(this, client, tables, createTableFilter(s.include, s.exclude), ws);
    try {
      for (;;) {
        if (signal.aborted && !streamer.inTransaction) return;
        const x = streamer.inTransaction ? await ws.next() : await Promise.race([ws.next(), stopped]);
        if (x === null) {
          if (signal.aborted) return;
          throw new TidemarkError('the replication stream ended', { code: 'PG_CONNECT', retriable: true });
        }
        await streamer.message(decoder.decode(x.payload), decoder);
      }
    } finally {
      this.#ws = undefined;
      await ws.close();
    }
  }

  /** For TxStreamer: journal one rows entry / one commit. */
  appendRows(shape: TableShape, op: RowOp, rows: readonly RowImage[], txId: string): Promise<void> {
    return this.#rows(shape, op, rows, txId);
  }
  commitTx(txId: string, lsn: bigint, rowCount: bigint, commitTimeUs: bigint): Promise<void> {
    return this.#commit(txId, lsn, 'stream', rowCount, commitTimeUs);
  }
  /** A transaction with nothing captured was read up to `lsn`. */
  readTo(lsn: bigint): void {
    this.#read = sequencePosition(POSITION_ENGINE, lsn);
  }
}

/** Turns decoded messages into entries, one source transaction at a time. */
class TxStreamer {
  readonly #cap: PgCapture;
  readonly #client: pg.Client;
  readonly #byOid: Map<number, PgTableRef>;
  readonly #filter: ReturnType<typeof createTableFilter>;
  readonly #ws: WalStream;
  /** Relation OID → its shape (null: not captured). */
  readonly #shapes = new Map<number, TableShape | null>();
  #tx: OpenTx | null = null;

  constructor(
    cap: PgCapture,
    client: pg.Client,
    tables: readonly PgTableRef[],
    filter: ReturnType<typeof createTableFilter>,
    ws: WalStream,
  ) {
    this.#cap = cap;
    this.#client = client;
    this.#byOid = new Map(tables.map((t) => [t.oid, t]));
    this.#filter = filter;
    this.#ws = ws;
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
      if (this.#filter.includesTable(m.namespace, m.name)) {
        throw unsupported(`table ${name} joined the publication after the baseline (${this.#where()}): capturing it`, {
          table: name,
        });
      }
      this.#shapes.set(m.relationOid, null);
      return;
    }
    const shape = await shapeOf(this.#client, { schema: m.namespace, table: m.name, oid: m.relationOid }, m.columns);
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
    await this.#cap.appendRows(p.shape, p.op, p.rows, this.#txId(tx));
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
          await this.#cap.commitTx(this.#txId(tx), m.endLsn, tx.rowCount, m.commitTime + PG_EPOCH_US);
        } else this.#cap.readTo(m.endLsn);
        this.#tx = null;
        // Durable (the sink's commit resolved) or nothing to keep: the server may forget it.
        this.#ws.confirm(m.endLsn);
        return;
      }
      default:
        // Origin, Type and logical messages carry nothing to capture (DDL messages: not yet, issue #14).
        return;
    }
  }
}
