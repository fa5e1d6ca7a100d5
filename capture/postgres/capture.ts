/**
 * One capture attempt of a PostgreSQL source (engine/source.ts SourceCapture): a baseline when due (baseline.ts),
 * then the slot's pgoutput stream (replication.ts, walstream.ts, pgoutput.ts) into the journal sink. Each source
 * transaction becomes rows entries (one per run of one relation and operation, at most ROWS_PER_ENTRY rows) and
 * one commit at sequencePosition('postgres', commit end LSN); the end LSN is confirmed to the server only after
 * the sink's commit resolved (durable), so the slot never passes the journal. Resuming starts the stream at the
 * journal's own last commit position, never at the server's. DDL (event-trigger messages, or the Relation-message
 * fallback) and TRUNCATE become DDL entries in their transactions (tx-streamer.ts); what cannot be replayed
 * exactly stops capture (PG_UNSUPPORTED, PG_DDL_UNTRACKED) before that transaction is journaled: nothing is
 * skipped silently.
 */
import type pg from 'pg';
import { CorruptionError, TidemarkError } from '../../core/errors.ts';
import type { CaptureOptions, CaptureStatus, SourceCapture } from '../../engine/source.ts';
import { createTableFilter, globToRegExp } from '../../mysql/table-filter.ts';
import { wrapPgError } from '../../postgres/errors.ts';
import { formatLsn } from '../../postgres/lsn.ts';
import { openPgClient, type PgEndpoint } from '../../postgres/session.ts';
import { type SequencePosition, sequencePosition } from '../../record/position.ts';
import type { CommitEntry, DdlEntry, Phase, RowImage, RowOp, RowsEntry } from '../../record/record.ts';
import { seqSpan } from '../../record/record.ts';
import { takeBaseline } from './baseline.ts';
import { POSITION_ENGINE, type PgSourceSection } from './config.ts';
import { DurableAcks } from './durable-acks.ts';
import { PgoutputDecoder } from './pgoutput.ts';
import { assertPgPrerequisites, readPgFacts } from './prerequisites.ts';
import {
  addedColumnFacts,
  capturedTables,
  hasDdlTriggers,
  type PgTableRef,
  publicationScope,
  shapeOf,
  type TableShape,
} from './relations.ts';
import { startReplication } from './replication.ts';
import { type JournalDdl, type TxOut, TxStreamer } from './tx-streamer.ts';
import type { WalStream } from './walstream.ts';

const nowUs = () => BigInt(Date.now()) * 1000n;

/** source.skip_origins as a predicate: whether a transaction of this replication origin is left out. */
export function originSkipper(globs: readonly string[]): (origin: string) => boolean {
  const res = globs.map(globToRegExp);
  return (origin) => res.some((re) => re.test(origin));
}

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
    if (s.ddl === 'event-triggers' && !(await hasDdlTriggers(client))) {
      throw new TidemarkError(
        `source.ddl is event-triggers but tidemark's DDL event triggers are not installed in database "${s.database}"` +
          `: as a superuser run psql -v ON_ERROR_STOP=1 -d ${s.database} -f capture/postgres/ddl-triggers.sql ` +
          '(or set source.ddl: auto to fall back to Relation messages)',
        { code: 'PREREQUISITE', retriable: false, context: { database: s.database } },
      );
    }
    return { client, tables };
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
}

export class PgCapture implements SourceCapture, TxOut {
  readonly #o: CaptureOptions<PgSourceSection>;
  #phase: CaptureStatus['phase'] = 'starting';
  #position: SequencePosition | null;
  #read: SequencePosition | null;
  #nextSeq: bigint;
  #ws: WalStream | undefined;
  /** While streaming: commits in flight to the journal, confirms behind them (durable-acks.ts). */
  #acks: DurableAcks | undefined;

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
      readPosition: this.#readNow(),
      nextSeq: this.#nextSeq,
      reconnects: 0,
      pauses: this.#ws?.pauses ?? 0,
    };
  }

  /**
   * How far the source's WAL is read: the last transaction read, or further — what the stream reports to the server
   * (walstream.ts position(): every commit before it durable, or the keepalive's WAL end while idle). Without the
   * latter a quiet database whose WAL moves only by records capture never sees (checkpoints, running-xacts
   * snapshots) would never look caught up to `tidemark verify`/`status`, which compare with pg_current_wal_lsn().
   */
  #readNow(): SequencePosition | null {
    const r = this.#read;
    const at = this.#ws?.position() ?? 0n;
    return at !== 0n && (r === null || at > r.value) ? sequencePosition(POSITION_ENGINE, at) : r;
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
    const durable = this.#o.sink.commit(c);
    this.#position = position;
    this.#read = position;
    // Streaming: go on with the next transaction while the journal syncs; its confirm waits (DurableAcks).
    if (this.#acks && phase === 'stream') await this.#acks.track(durable, c.seq);
    else await durable;
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
    const acks = new DurableAcks((lsn) => ws.confirm(lsn));
    this.#acks = acks;
    const stopped = new Promise<null>((res) => {
      if (signal.aborted) res(null);
      else signal.addEventListener('abort', () => res(null), { once: true });
    });
    const decoder = new PgoutputDecoder();
    const triggers = s.ddl !== 'relations' && (await hasDdlTriggers(client));
    if (!triggers && s.ddl === 'auto') {
      this.#o.log.warn(
        { database: s.database },
        'DDL event triggers not installed (capture/postgres/ddl-triggers.sql): DDL is tracked from Relation messages only',
      );
    }
    const streamer = new TxStreamer({
      out: this,
      describe: (t, cols) => shapeOf(client, t, cols),
      addedColumns: (t, names) => addedColumnFacts(client, t.oid, names),
      scope: await publicationScope(client, s.publication),
      ddlMessages: s.ddl !== 'relations',
      tables,
      filter: createTableFilter(s.include, s.exclude),
      confirm: (lsn) => acks.confirmAfter(lsn),
      skipOrigin: originSkipper(s.skip_origins),
    });
    try {
      for (;;) {
        if (signal.aborted && !streamer.inTransaction) return await acks.drain();
        const x = ws.take() ?? (streamer.inTransaction ? await ws.next() : await Promise.race([ws.next(), stopped]));
        if (x === null) {
          if (signal.aborted) return await acks.drain();
          throw new TidemarkError('the replication stream ended', { code: 'PG_CONNECT', retriable: true });
        }
        const work = streamer.message(decoder.decode(x.payload), decoder);
        if (work !== undefined) await work;
      }
    } finally {
      this.#ws = undefined;
      this.#acks = undefined;
      await ws.close();
    }
  }

  /** TxOut (tx-streamer.ts): journal one rows entry / one commit. */
  appendRows(shape: TableShape, op: RowOp, rows: readonly RowImage[], txId: string): Promise<void> {
    return this.#rows(shape, op, rows, txId);
  }
  appendDdl(d: JournalDdl, txId: string): Promise<void> {
    const entry: DdlEntry = { kind: 'ddl', source: this.#o.source.name, seq: this.#nextSeq++, txId, ...d };
    return Promise.resolve(this.#o.sink.append(entry));
  }
  commitTx(txId: string, lsn: bigint, rowCount: bigint, commitTimeUs: bigint): Promise<void> {
    return this.#commit(txId, lsn, 'stream', rowCount, commitTimeUs);
  }
  /** A transaction with nothing captured was read up to `lsn`. */
  readTo(lsn: bigint): void {
    this.#read = sequencePosition(POSITION_ENGINE, lsn);
  }
}
