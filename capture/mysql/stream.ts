/**
 * Binlog streaming: one replication connection (zongji) from a start position, decoded events queued, the
 * assembler turning them into entries, and the SinkWriter handing those to the journal.
 *
 * Backpressure: zongji emits events synchronously from the socket. Each event is decoded at once (events.ts) and
 * queued; when the queue holds more than `highItems` items or `highRows` rows, the binlog connection is paused
 * (mysql2 Connection.pause(): the socket stops being read, the server's send blocks) and resumed once the
 * consumer has drained it below half. The consumer awaits the sink's append (its backpressure) and keeps a
 * bounded number of commits in flight (SinkWriter), so memory stays bounded whatever the transaction size:
 * rows of a transaction go to the sink as they arrive, nothing buffers a whole transaction.
 * The session's net_write_timeout is raised to an hour so the server does not drop a paused connection after
 * its default 60 s; should it drop it anyway, capture reconnects from the last commit (time, not data, lost).
 *
 * Liveness: the connection asks for heartbeat events every `heartbeatMs` while the binlog is idle; when neither
 * events nor heartbeats arrive for three periods (and capture is not pausing the connection itself), the stream
 * fails with a retriable CONNECT error.
 *
 * On failure the stream reports where to restart (`resumePoint`): the end of the last complete event group and,
 * if a transaction was cut after some of its entries reached the sink, that transaction as `replay`.
 */
import ZongJi, { type AnyBinlogEvent, type HeartbeatEvent } from '@vlasky/zongji';
import type { Logger } from 'pino';
import { type BinlogPosition, compareBinlog, formatPosition, type MysqlPosition } from '../../record/position.ts';
import { TidemarkError } from '../../core/errors.ts';
import { isSequenceState } from '../../record/sequence.ts';
import { type AssemblerOutput, TransactionAssembler } from './assembler.ts';
import type { BinlogItem } from './binlog-item.ts';
import { connectionOptions, endpointOf } from './connection.ts';
import { binlogPurgedError, isBinlogUnavailable, sourceError } from './errors.ts';
import { EventDecoder } from './events.ts';
import { useRowImages } from './zongji-rows.ts';
import { useTableMapCache } from './zongji-tablemap.ts';
import { parseAccountList } from '../../mysql/accounts.ts';
import { PkCache } from './pk-cache.ts';
import { SourceWatch } from './source-watch.ts';
import { DEFAULT_STREAM_TUNING, type ResumePoint, type StreamOptions, type StreamTuning } from './stream-options.ts';

const INCLUDE_EVENTS = [
  'rotate',
  'mariadbgtid',
  'gtid',
  'query',
  'xid',
  'xaprepare',
  'tablemap',
  'writerows',
  'updaterows',
  'deleterows',
  'heartbeat',
  'unknown',
];

function rowsOf(item: BinlogItem): number {
  return item.type === 'rows' ? item.rows.length : 0;
}

export class BinlogStream {
  private readonly o: StreamOptions;
  private readonly t: StreamTuning;
  private readonly log: Logger;
  private readonly assembler: TransactionAssembler;
  private readonly decoder: EventDecoder;
  private readonly pkCache: PkCache;
  private readonly watch: SourceWatch;
  private zongji: ZongJi | null = null;
  private readonly queue: BinlogItem[] = [];
  private queuedRows = 0;
  private paused = false;
  private failure: TidemarkError | null = null;
  private waker: (() => void) | null = null;
  private stopDeadline: number | null = null;
  private lastEventAt = Date.now();
  private progressed = false;
  private ticks = 0;
  private pauseCount = 0;
  /** Items queued and processed so far, and the last heartbeat with the count queued before it (readPosition). */
  private queued = 0;
  private processed = 0;
  private heartbeat: { at: BinlogPosition; after: number } | null = null;

  constructor(opts: StreamOptions) {
    this.o = opts;
    this.t = { ...DEFAULT_STREAM_TUNING, ...opts.tuning };
    this.log = opts.log;
    this.assembler = new TransactionAssembler({
      source: opts.source.name,
      filter: opts.filter,
      start: opts.from.start,
      nextSeq: opts.from.nextSeq,
      replay: opts.from.replay,
      ...(opts.from.copied ? { copied: opts.from.copied } : {}),
      onSkippedStatement: (statement, schema) => this.log.debug({ statement, schema }, 'binlog statement skipped'),
      accounts: parseAccountList(opts.source.accounts ?? []),
      onMixedAccounts: (statement, listed) =>
        this.log.warn(
          { statement, accounts: listed },
          `${statement} names listed accounts (source.accounts) and others: not replicated, so these accounts may ` +
            'now differ on the replicas; run the statement for the listed accounts alone on the source',
        ),
      lastCommitTimeUs: opts.writer.lastCommitted?.commitTimeUs ?? opts.lastCommitTimeUs,
    });
    this.decoder = new EventDecoder({
      includesTable: (s, t) => opts.filter.includesTable(s, t),
      headerBytes: () => 19 + ((this.zongji as { useChecksum?: boolean } | null)?.useChecksum ? 4 : 0),
    });
    this.pkCache = new PkCache(opts.source);
    this.watch = new SourceWatch(opts.source, this.log);
  }

  /** Did this stream hand at least one entry group to the sink (used to reset reconnect backoff)? */
  get madeProgress(): boolean {
    return this.progressed;
  }

  /** How often the binlog connection was paused for backpressure. */
  get pauses(): number {
    return this.pauseCount;
  }

  /** Position after the last event group read, captured or filtered out. */
  get position(): MysqlPosition {
    return this.assembler.position;
  }

  /**
   * How far the binlog was read: `position`, or the source's position in the last heartbeat once every event
   * before that heartbeat was processed (heartbeats come only while the dump is idle at the binlog's end, so
   * they also cover events that end no group: a rotation's format and GTID-list events after FLUSH LOGS).
   */
  get readPosition(): MysqlPosition {
    const pos = this.assembler.position;
    const hb = this.heartbeat;
    if (!hb || this.processed < hb.after || this.assembler.partial() !== null) return pos;
    return compareBinlog(hb.at, pos.binlog) > 0 ? { ...pos, binlog: hb.at } : pos;
  }

  /** Where a new stream must start to continue exactly after this one. */
  resumePoint(): ResumePoint {
    const partial = this.assembler.partial();
    return {
      start: this.assembler.position,
      nextSeq: partial ? partial.seq : this.assembler.nextSeq,
      replay: partial,
      copied: this.assembler.copyWindows,
    };
  }

  /** Streams until `signal` aborts (resolves) or the source fails (rejects with a classified TidemarkError). */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = () => {
      this.stopDeadline = Date.now() + this.t.stopGraceMs;
      this.wake();
    };
    if (signal.aborted) return;
    signal.addEventListener('abort', onAbort, { once: true });
    const watchdog = setInterval(() => this.checkLiveness(), this.t.heartbeatMs);
    const settings = setInterval(() => void this.watch.reportSettings(), this.t.settingsCheckMs);
    try {
      this.startZongji();
      await this.consume();
    } finally {
      clearInterval(watchdog);
      clearInterval(settings);
      signal.removeEventListener('abort', onAbort);
      await this.stopZongji();
      await this.pkCache.close();
      await this.watch.close();
    }
  }

  private startZongji(): void {
    const start = this.o.from.start.binlog;
    if (start.offset > 0xffffffffn) {
      throw new TidemarkError(`binlog offset ${start.offset} exceeds what the replication protocol can request`, {
        code: 'POSITION',
        retriable: false,
      });
    }
    const z = new ZongJi(connectionOptions(this.o.source));
    this.zongji = z;
    // Decode only tables capture wants: table maps of other tables are dropped inside zongji, so their rows
    // are never parsed. (zongji consults _skipSchema for every TableMap; includeSchema cannot express globs.)
    const internals = z as unknown as { _skipSchema?: (db: string, table: string) => boolean };
    if (typeof internals._skipSchema === 'function') {
      internals._skipSchema = (db, table) => !this.o.filter.includesTable(db, table);
    }
    // A table map equal to its table id's last one reuses that parse (zongji-tablemap.ts).
    if (!useTableMapCache(z)) this.log.debug('table maps are parsed in full each time: zongji internals not found');
    z.on('binlog', (ev: AnyBinlogEvent) => this.onEvent(ev));
    z.on('error', (err: Error) => this.fail(this.classify(err)));
    z.on('ready', () => this.log.info({ from: formatPosition(this.o.from.start) }, 'binlog streaming started'));
    z.start({
      serverId: this.o.source.server_id,
      filename: start.file,
      position: Number(start.offset),
      includeEvents: INCLUDE_EVENTS,
    });
    // Row images of captured tables are decoded once, into journal values (row-image.ts, zongji-rows.ts); after
    // start(), which creates the connection whose options this checks, and before any rows event is read.
    if (!useRowImages(z, (tableId) => this.decoder.cellReaders(tableId))) {
      this.log.warn(
        'row images are converted by zongji, then normalized (slower): its internals were not found, or the ' +
          'connection does not use dateStrings with timezone Z',
      );
    }
    // Queued before zongji's own setup queries, so they are in force when the dump starts: heartbeats while
    // idle, and patience while capture pauses the connection for backpressure.
    z.connection?.query(`SET @master_heartbeat_period = ${this.t.heartbeatMs * 1_000_000}`, () => {});
    z.connection?.query('SET SESSION net_write_timeout = 3600', () => {});
    z.connection?.on('end', () => {
      if (this.zongji === z && !this.failure) {
        this.fail(
          sourceError(
            { code: 'PROTOCOL_CONNECTION_LOST', message: 'binlog connection closed' },
            endpointOf(this.o.source),
            'read the binlog',
          ),
        );
      }
    });
  }

  /**
   * Stops zongji and waits until it has KILLed its dump thread on the server (zongji gives up after 1 s), so a
   * following stream with the same server_id is not refused as a duplicate replica.
   */
  private async stopZongji(): Promise<void> {
    const z = this.zongji;
    this.zongji = null;
    if (!z) return;
    z.removeAllListeners('binlog');
    z.on('error', () => {});
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 3_000);
      z.once('stopped', () => {
        clearTimeout(t);
        resolve();
      });
      z.stop();
    });
  }

  private classify(err: unknown): TidemarkError {
    const ep = endpointOf(this.o.source);
    if (isBinlogUnavailable(err)) return binlogPurgedError(err, ep, this.assembler.position);
    return sourceError(err, ep, 'read the binlog');
  }

  private fail(err: TidemarkError): void {
    this.failure ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waker;
    this.waker = null;
    w?.();
  }

  private checkLiveness(): void {
    // Keep zongji's otherwise idle control connection (used for KILL on stop) from hitting wait_timeout.
    if (++this.ticks % 60 === 0) this.zongji?.ctrlConnection?.ping(() => {});
    if (this.paused) {
      this.lastEventAt = Date.now();
      return;
    }
    const idle = Date.now() - this.lastEventAt;
    if (idle > 3 * this.t.heartbeatMs) {
      this.fail(
        new TidemarkError(`no binlog events or heartbeats from the source for ${Math.round(idle / 1000)} s`, {
          code: 'CONNECT',
          retriable: true,
          context: { host: this.o.source.host, port: this.o.source.port },
        }),
      );
    }
  }

  private onEvent(ev: AnyBinlogEvent): void {
    if (this.failure || this.zongji === null) return;
    this.lastEventAt = Date.now();
    if (ev.getEventName() === 'heartbeat') {
      const h = ev as HeartbeatEvent;
      const offset = h.position !== undefined ? BigInt(h.position) : BigInt(h.nextPosition);
      if (h.binlogName && offset > 0n) this.heartbeat = { at: { file: h.binlogName, offset }, after: this.queued };
      return;
    }
    let item: BinlogItem | null;
    try {
      item = this.decoder.decode(ev);
    } catch (err) {
      this.fail(err instanceof TidemarkError ? err : sourceError(err, endpointOf(this.o.source), 'decode the binlog'));
      return;
    }
    if (!item) return;
    this.queue.push(item);
    this.queued++;
    this.queuedRows += rowsOf(item);
    if (!this.paused && (this.queue.length >= this.t.highItems || this.queuedRows >= this.t.highRows)) {
      this.paused = true;
      this.pauseCount++;
      this.zongji.connection?.pause();
    }
    this.wake();
  }

  private maybeResume(): void {
    if (!this.paused) return;
    if (this.queue.length > this.t.highItems / 2 || this.queuedRows > this.t.highRows / 2) return;
    this.paused = false;
    this.lastEventAt = Date.now();
    this.zongji?.connection?.resume();
  }

  private stopNow(): boolean {
    if (this.stopDeadline === null) return false;
    if (this.assembler.partial() === null) return true;
    return Date.now() >= this.stopDeadline;
  }

  private async consume(): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.stopNow()) return;
      const item = this.queue.shift();
      if (!item) {
        await new Promise<void>((resolve) => {
          this.waker = resolve;
          if (this.stopDeadline !== null) setTimeout(resolve, Math.max(0, this.stopDeadline - Date.now()));
        });
        continue;
      }
      this.queuedRows -= rowsOf(item);
      this.maybeResume();
      await this.process(item);
      this.processed++;
    }
  }

  /** Runs a `copy` output (tables moved into the include set) and opens their copy windows. */
  private async copy(
    out: Extract<AssemblerOutput, { kind: 'copy' }>,
    shift: bigint,
  ): Promise<{ seqs: bigint; rows: bigint }> {
    const names = out.tables.map((t) => `${t.schema}.${t.table}`);
    if (!this.o.copyTable) {
      throw new TidemarkError(`table(s) ${names.join(', ')} moved into the captured tables and cannot be copied here`, {
        code: 'TABLE_COPY',
        retriable: false,
      });
    }
    this.log.info({ tables: names, txId: out.txId }, 'table moved into the captured tables: copying it');
    const r = await this.o.copyTable({ tables: out.tables, txId: out.txId, nextSeq: out.seq + shift });
    this.assembler.copied(
      out.tables.map((t) => ({ schema: t.schema, table: t.table, at: r.at })),
      r.seqs,
    );
    this.pkCache.clear();
    return r;
  }

  private async process(input: BinlogItem): Promise<void> {
    let item = input;
    if (item.type === 'opaque') {
      const resolved = await this.watch.resolveOpaque(item, this.assembler.currentFile, this.assembler.position);
      if (!resolved) return;
      item = resolved;
    }
    if (item.type === 'rows' && item.pk === null && this.o.filter.includesTable(item.schema, item.table)) {
      item = { ...item, pk: await this.pkCache.get(item.schema, item.table) };
    }
    // A table copy inside the group (a `copy` output) takes seqs: the group's later entries move up by as many.
    let shift = 0n;
    let copiedRows = 0n;
    for (const out of this.assembler.feed(item)) {
      if (out.kind === 'copy') {
        const r = await this.copy(out, shift);
        shift += r.seqs;
        copiedRows += r.rows;
      } else if (out.kind === 'append') {
        const e = shift === 0n ? out.entry : { ...out.entry, seq: out.entry.seq + shift };
        if (e.kind === 'rows' && e.pk.length === 0 && !isSequenceState(e)) this.o.onNoPrimaryKey?.(e.schema, e.table);
        if (e.kind === 'ddl') this.pkCache.clear();
        await this.o.writer.append(e);
      } else {
        let c = out.entry;
        if (shift > 0n || copiedRows > 0n) {
          const copied = this.assembler.copyWindows;
          c = { ...c, seq: c.seq + shift, rowCount: c.rowCount + copiedRows, ...(copied.length ? { copied } : {}) };
        }
        await this.o.writer.commit(c);
        this.progressed = true;
      }
    }
  }
}
