/**
 * The logical replication stream of one slot: START_REPLICATION over a `pg` replication connection, the CopyBoth
 * framing (XLogData in, keepalives in, standby status updates out), acknowledgement and backpressure. No parsing
 * beyond that framing: each XLogData payload goes to the consumer as bytes (capture/postgres/pgoutput.ts decodes).
 *
 * Messages (PostgreSQL "Streaming Replication Protocol"; big-endian, times in µs since 2000-01-01):
 *   XLogData          'w' Int64 walStart, Int64 walEnd, Int64 sendTime, Byte[] payload
 *   Primary keepalive 'k' Int64 walEnd, Int64 sendTime, Byte1 replyRequested
 *   Standby status    'r' Int64 write, Int64 flush, Int64 apply, Int64 clientTime, Byte1 replyRequested (sent)
 *
 * Acknowledgement (PostgreSQL's own apply worker is the model; the traps of others are avoided by design):
 *   - write = flush = apply = the position we REPORT, which is only what the consumer declared durable with
 *     `confirm(lsn)` (a Commit's end LSN as is, never +1). Receiving, queueing or handing out a message never
 *     moves it (postgres.js and pg-logical-replication confirm what they received).
 *   - Idle: when every XLogData received so far starts at or before the confirmed LSN (nothing received is still
 *     pending), the report moves to the last keepalive's walEnd, so a captured database with no published
 *     changes does not pin WAL written elsewhere. Mid-transaction it never does.
 *   - A keepalive that asks for a reply is answered at once, from the socket handler, whatever the consumer is
 *     doing (an fsync in progress included): the walsender kills a silent client after wal_sender_timeout.
 *     A keepalive that does not ask is answered when the report moved.
 *   - A status update also goes out every `statusIntervalMs`, from a timer, even while reading is paused.
 *   - The report never goes backwards, and is never 0 (0 = "no information" to the server).
 * Backpressure: when the undelivered XLogData exceed `highWaterBytes`, the socket is paused; it resumes below
 * half of it. Keepalive answers and the status timer do not depend on reading.
 */
import { TidemarkError } from '../../core/errors.ts';

/** One XLogData message. The payload is a view into the received chunk. */
export interface XLogData {
  readonly walStart: bigint;
  readonly walEnd: bigint;
  readonly sendTime: bigint;
  readonly payload: Uint8Array;
}

/** What WalStream needs from a connection in CopyBoth mode (the `pg` one: replication.ts; tests: a fake). */
export interface ReplicationTransport {
  /** Registers the handler of every CopyData message from the server. */
  onCopyData(handler: (chunk: Uint8Array) => void): void;
  /** Registers the handler called once when the stream ends (an error, or the server ended it). */
  onEnd(handler: (err?: unknown) => void): void;
  sendCopyData(chunk: Uint8Array): void;
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

export interface WalStreamOptions {
  /** The position the consumer already holds durably (the START_REPLICATION position); the first report. */
  readonly startLsn: bigint;
  /** Status update period; default 10 s (keep it well under the server's wal_sender_timeout, default 60 s). */
  readonly statusIntervalMs?: number;
  /** Pause reading above this many undelivered payload bytes; default 16 MiB. */
  readonly highWaterBytes?: number;
  /** The clock for clientTime, ms since the Unix epoch (tests). */
  readonly now?: () => number;
}

/** µs between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_MS = 946_684_800_000;

export function encodeStatusUpdate(lsn: bigint, nowMs: number, replyRequested = false): Buffer {
  const b = Buffer.alloc(34);
  b.write('r', 0, 'latin1');
  b.writeBigUInt64BE(lsn, 1);
  b.writeBigUInt64BE(lsn, 9);
  b.writeBigUInt64BE(lsn, 17);
  b.writeBigInt64BE(BigInt(Math.round((nowMs - PG_EPOCH_MS) * 1000)), 25);
  b.writeUInt8(replyRequested ? 1 : 0, 33);
  return b;
}

function protocolError(what: string, chunk: Uint8Array): TidemarkError {
  const kind = chunk.length > 0 ? String.fromCharCode(chunk[0] as number) : '';
  return new TidemarkError(`replication stream: ${what}`, {
    code: 'PG_PROTOCOL',
    context: { kind, length: chunk.length },
  });
}

export class WalStream {
  private readonly transport: ReplicationTransport;
  private readonly now: () => number;
  private readonly high: number;
  /** Undelivered XLogData from `head` on (an index, not shift(): shift is O(n) on a queue of 100k messages). */
  private queue: XLogData[] = [];
  private head = 0;
  private queuedBytes = 0;
  private paused = false;
  private pauseCount = 0;
  private waiter: { resolve: (m: XLogData | null) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private failure: unknown;
  private readonly timer: NodeJS.Timeout;

  /** The highest LSN the consumer declared durable. */
  private confirmed: bigint;
  /** walStart of the last XLogData received (queued or handed out); -1 before any. */
  private lastDataStart = -1n;
  /** walEnd of the last keepalive. */
  private keepaliveEnd = 0n;
  /** The last position reported to the server. */
  private reported = 0n;
  private sentUpdates = 0;

  constructor(transport: ReplicationTransport, o: WalStreamOptions) {
    this.transport = transport;
    this.now = o.now ?? Date.now;
    this.high = o.highWaterBytes ?? 16 * 1024 * 1024;
    this.confirmed = o.startLsn;
    transport.onCopyData((chunk) => this.onCopyData(chunk));
    transport.onEnd((err) => this.finish(err));
    this.timer = setInterval(() => this.sendStatus(), o.statusIntervalMs ?? 10_000);
    this.timer.unref();
  }

  /** The next queued message, without a promise: the capture loop's fast path while data is buffered. */
  take(): XLogData | undefined {
    const m = this.queue[this.head];
    if (m) {
      this.head++;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      } else if (this.head >= 4096 && this.head * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.queuedBytes -= m.payload.length;
      if (this.paused && this.queuedBytes <= this.high / 2) {
        this.paused = false;
        this.transport.resume();
      }
    }
    return m;
  }

  /** The next XLogData, or null once the stream ended cleanly; rejects with the stream's error. */
  next(): Promise<XLogData | null> {
    const m = this.take();
    if (m) return Promise.resolve(m);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve(null);
    if (this.waiter) return Promise.reject(new TidemarkError('WalStream.next() called twice', { code: 'INTERNAL' }));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<XLogData> {
    for (;;) {
      const m = await this.next();
      if (m === null) return;
      yield m;
    }
  }

  /**
   * The consumer holds everything up to `lsn` durably (a Commit's endLsn). Lower than an earlier confirm: ignored.
   * Beyond what was received: a bug, refused (INTERNAL). Reported on the next status update.
   */
  confirm(lsn: bigint): void {
    if (lsn <= this.confirmed) return;
    const received = this.lastDataStart > this.keepaliveEnd ? this.lastDataStart : this.keepaliveEnd;
    if (lsn > received) {
      throw new TidemarkError(`confirm(${lsn}) is beyond the last position received (${received})`, {
        code: 'INTERNAL',
      });
    }
    this.confirmed = lsn;
  }

  /** What the next status update reports (see the file comment). */
  position(): bigint {
    const idle = this.lastDataStart <= this.confirmed;
    let p = idle && this.keepaliveEnd > this.confirmed ? this.keepaliveEnd : this.confirmed;
    if (p < this.reported) p = this.reported;
    return p;
  }

  /** How many times reading was paused for backpressure (tests, metrics). */
  get pauses(): number {
    return this.pauseCount;
  }

  /** How many status updates were sent (tests, metrics). */
  get statusUpdates(): number {
    return this.sentUpdates;
  }

  /** Sends a status update now (e.g. right after a confirm the server should see at once). */
  flush(): void {
    this.sendStatus();
  }

  /** Sends a last status update, stops the timer and closes the connection. */
  async close(): Promise<void> {
    if (!this.ended) this.sendStatus();
    clearInterval(this.timer);
    this.finish();
    await this.transport.close();
  }

  /** Reports position() to the server (not before anything is known: 0 means "no information" to it). */
  private sendStatus(): void {
    if (this.ended) return;
    const p = this.position();
    if (p === 0n) return;
    this.reported = p;
    this.sentUpdates++;
    try {
      this.transport.sendCopyData(encodeStatusUpdate(p, this.now()));
    } catch (err) {
      this.finish(err);
    }
  }

  private onCopyData(chunk: Uint8Array): void {
    if (this.ended) return;
    try {
      const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const kind = chunk[0];
      if (kind === 0x77 /* 'w' */) {
        if (chunk.length < 25) throw protocolError(`XLogData ('w') of ${chunk.length} bytes, needs at least 25`, chunk);
        const m: XLogData = {
          walStart: view.getBigUint64(1),
          walEnd: view.getBigUint64(9),
          sendTime: view.getBigInt64(17),
          payload: chunk.subarray(25),
        };
        if (m.walStart > this.lastDataStart) this.lastDataStart = m.walStart;
        this.deliver(m);
      } else if (kind === 0x6b /* 'k' */) {
        if (chunk.length !== 18) throw protocolError(`keepalive ('k') of ${chunk.length} bytes, needs 18`, chunk);
        const walEnd = view.getBigUint64(1);
        if (walEnd > this.keepaliveEnd) this.keepaliveEnd = walEnd;
        const replyRequested = chunk[17] === 1;
        // Answer at once when asked; otherwise only when the report moved (the idle ack).
        if (replyRequested || this.position() !== this.reported) this.sendStatus();
      } else {
        throw protocolError(`unknown CopyData message kind (byte ${kind})`, chunk);
      }
    } catch (err) {
      this.finish(err);
    }
  }

  private deliver(m: XLogData): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(m);
      return;
    }
    this.queue.push(m);
    this.queuedBytes += m.payload.length;
    if (!this.paused && this.queuedBytes > this.high) {
      this.paused = true;
      this.pauseCount++;
      this.transport.pause();
    }
  }

  private finish(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    if (err !== undefined) this.failure = err;
    const w = this.waiter;
    this.waiter = undefined;
    if (!w) return;
    if (err !== undefined) w.reject(err);
    else w.resolve(null);
  }
}
