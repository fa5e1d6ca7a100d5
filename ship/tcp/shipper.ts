/**
 * The sending end of the ship link (primary site): connects to one receiver and streams one source's frames.
 *
 * Loop (the SessionLoop of ../session.ts), as states, each transition logged: connecting (then HELLO, await
 * WELCOME) → streaming → backoff → connecting … until the signal aborts (stopped), the frames run out and are
 * all acknowledged (done), or a fatal error (failed: the receiver refused us, our certificate or its
 * certificate is wrong, the frames source failed for good). After WELCOME(durableLsn) it reads `frames(durableLsn + 1)` and sends them in FRAMES
 * batches: a batch is flushed at batchBytes, or as soon as the source has no frame ready. At most windowBytes
 * of frames are unacknowledged at once. Every ACK goes to onAck (coalesced: a slow onAck sees the latest LSN).
 *
 * Acknowledged LSNs are the receiver's word and may go back: a receiver whose journal recovery cut an unfinished
 * unit reports a lower durable LSN in its next WELCOME, and streaming resumes from there. So that a source cursor
 * never passes what a standby could still ask for, onAck also reports unitLsn: the highest acknowledged LSN that
 * ends a unit (a receiver's recovery keeps complete units).
 */
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { type FramesSource, lastUnitEnd, type WireFrame } from '../frame.ts';
import type { LinkStatus } from '../link-status.ts';
import { AckCoalescer, batchFrames, SessionLoop } from '../session.ts';
import { dial, MessageConnection } from './connection.ts';
import { DEFAULT_HEARTBEAT_MS, type LinkSecurity } from './identity.ts';
import { FRAME_OVERHEAD, type Message, PROTOCOL_VERSION } from './protocol.ts';

/** The journal side (FramesSource, ../frame.ts) comes from journalSource() (../mirror.ts). */
export interface ShipperOptions extends FramesSource {
  host: string;
  port: number;
  security: LinkSecurity;
  /** This (primary) site: must be named by our certificate. */
  site: string;
  /** The receiver's site: its certificate must name it. */
  targetSite: string;
  source: string;
  /**
   * Every frame up to `lsn` is durable at the receiver (also called with the LSN a WELCOME reports); `unitLsn`
   * is the highest of them known to end a unit: set the source's cursor for this standby from unitLsn.
   */
  onAck?(ack: { lsn: bigint; unitLsn: bigint }): void | Promise<void>;
  /** Bytes arrived from the receiver (an ACK, a heartbeat…): the primary's guard counts it as contact. */
  onHeard?(): void;
  /** unitLsn to start from (the source cursor's value); default 0n. */
  ackedUnitLsn?: bigint;
  log: Logger;
  signal: AbortSignal;
  heartbeatMs?: number;
  /** TCP connect + TLS handshake + WELCOME must complete within this. Default 3 heartbeats, at least 2 s. */
  connectTimeoutMs?: number;
  /** Flush a FRAMES message at this size. Default 1 MiB. */
  batchBytes?: number;
  /** Unacknowledged frame bytes at most. Default 8 MiB. */
  windowBytes?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
}

/** The link status (../link-status.ts; ackedLsn: what the receiver reported durable) and what was sent. */
export interface ShipperStatus extends LinkStatus {
  /** Highest LSN sent on the current or last connection. */
  readonly sentLsn: bigint;
}

export interface Shipper {
  /** Settles when the shipper stops: resolves when stopped or done, rejects with the fatal error. */
  readonly finished: Promise<void>;
  status(): ShipperStatus;
}

/** Starts shipping; see the module comment. */
export function startShipper(opts: ShipperOptions): Shipper {
  const s = new ShipperLoop(opts);
  const finished = s.loop.run(() => s.session());
  finished.catch(() => undefined);
  return { finished, status: () => s.status() };
}

function fatal(message: string, cause?: unknown): TidemarkError {
  return new TidemarkError(message, { code: 'SHIP_REFUSED', retriable: false, cause });
}

class ShipperLoop {
  private readonly o: ShipperOptions;
  private readonly log: Logger;
  private readonly hb: number;
  /** Connections, states, backoff (../session.ts): connecting → streaming → backoff → connecting … */
  readonly loop: SessionLoop;
  private acked = 0n;
  private ackedUnit: bigint;
  private sent = 0n;
  private lastAckAt: Date | null = null;
  /** Unacknowledged batches: last LSN and bytes. */
  private inflight: { lsn: bigint; bytes: number; unitEnd: bigint | null }[] = [];
  private inflightBytes = 0;
  private ackWake: (() => void) | null = null;
  private readonly acks: AckCoalescer | null;
  /** Latest truncation epoch sent in this connection's HELLO. */
  private epoch = 0;

  constructor(opts: ShipperOptions) {
    this.o = opts;
    this.hb = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.ackedUnit = opts.ackedUnitLsn ?? 0n;
    this.log = opts.log.child({ component: 'shipper', source: opts.source, target: opts.targetSite });
    this.acks = opts.onAck ? new AckCoalescer(opts.onAck, this.log) : null;
    this.loop = new SessionLoop({
      log: this.log,
      signal: opts.signal,
      what: 'ship',
      retryMessage: 'link lost; reconnecting',
      ...(opts.reconnectBaseMs === undefined ? {} : { reconnectBaseMs: opts.reconnectBaseMs }),
      ...(opts.reconnectMaxMs === undefined ? {} : { reconnectMaxMs: opts.reconnectMaxMs }),
    });
  }

  status(): ShipperStatus {
    const held = { lsn: this.acked, unitLsn: this.ackedUnit, lastAckAt: this.lastAckAt };
    return { ...this.loop.linkStatus(held), sentLsn: this.sent };
  }

  /** One connection: connect → HELLO/WELCOME → stream; true when the frames ended and are all acknowledged. */
  async session(): Promise<boolean> {
    let conn: MessageConnection | null = null;
    try {
      conn = await this.connect();
      const durable = await this.hello(conn);
      if (!(await this.stream(conn, durable))) return false;
      this.loop.setState('done', { ackedLsn: String(this.acked) });
      return true;
    } finally {
      conn?.close(new TidemarkError('session over', { code: 'LINK_DOWN', retriable: true }));
    }
  }

  private timeoutMs(): number {
    return this.o.connectTimeoutMs ?? Math.max(2000, 3 * this.hb);
  }

  /** TCP (+ TLS) connection, with the handshake's failure explained. */
  private async connect(): Promise<MessageConnection> {
    const { host, port, security } = this.o;
    const label = `receiver ${this.o.targetSite} at ${host}:${port}`;
    const socket = await dial({
      host,
      port,
      security,
      targetSite: this.o.targetSite,
      timeoutMs: this.timeoutMs(),
      signal: this.o.signal,
      label,
      log: this.log,
    });
    const onHeard = this.o.onHeard;
    return new MessageConnection({
      socket,
      label,
      heartbeatMs: this.hb,
      log: this.log,
      ...(onHeard ? { onData: () => onHeard() } : {}),
    });
  }

  /** HELLO → WELCOME: the receiver's durable LSN. */
  private async hello(conn: MessageConnection): Promise<bigint> {
    const o = this.o;
    const truncations = (await o.truncations?.()) ?? [];
    this.epoch = truncations.reduce((m, t) => Math.max(m, t.epoch), 0);
    await conn.send({
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      source: o.source,
      site: o.site,
      journalId: o.journalId,
      truncations,
      ...(o.branch ? { branch: o.branch } : {}),
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new TidemarkError(`${conn.label}: no WELCOME within ${this.timeoutMs()} ms`, {
          code: 'LINK_DOWN',
          retriable: true,
        });
        conn.close(err);
        reject(err);
      }, this.timeoutMs());
    });
    let m: Message;
    try {
      m = await Promise.race([conn.next(), timeout]);
    } catch (err) {
      // A TLS receiver drops a plaintext client without a word: say what is likely wrong.
      if (o.security === 'plaintext' && err instanceof TidemarkError && err.code === 'LINK_DOWN') {
        throw new TidemarkError(
          `${err.message} before its WELCOME: this shipper runs without TLS (plaintext); if the receiver requires ` +
            'TLS, set ship.plaintext: false and give ship.certs_dir',
          { code: 'LINK_DOWN', retriable: true, cause: err },
        );
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (m.type === 'error') throw this.receiverError(conn, m.code, m.message);
    if (m.type !== 'welcome')
      throw new TidemarkError(`${conn.label}: expected WELCOME, got ${m.type}`, {
        code: 'LINK_PROTOCOL',
        retriable: true,
      });
    if (m.durableLsn === null) {
      this.log.error({ reason: m.reason }, `ship: ${conn.label} refused this shipper: ${m.reason}`);
      throw fatal(`${conn.label} refused this shipper: ${m.reason}`);
    }
    this.loop.setState('streaming', { durableLsn: String(m.durableLsn), connects: this.loop.sessions });
    if (m.durableLsn < this.acked) {
      this.log.warn(
        { durableLsn: String(m.durableLsn), ackedBefore: String(this.acked) },
        'ship: the receiver reports less than it acknowledged before (its recovery cut an unfinished unit?)',
      );
    }
    this.acked = m.durableLsn;
    if (this.ackedUnit > m.durableLsn) this.ackedUnit = m.durableLsn;
    this.noteAck(m.durableLsn);
    return m.durableLsn;
  }

  private receiverError(conn: MessageConnection, code: string, message: string): TidemarkError {
    if (code === 'AUTH' || code === 'REFUSED') {
      this.log.error({ code, reason: message }, `ship: ${conn.label} refused this shipper: ${message}`);
      return fatal(`${conn.label} refused this shipper: ${message}`);
    }
    return new TidemarkError(`${conn.label} reported ${code}: ${message}`, { code: 'LINK_DOWN', retriable: true });
  }

  private noteAck(lsn: bigint): void {
    this.acked = lsn;
    this.lastAckAt = new Date();
    for (let b = this.inflight[0]; b && b.lsn <= lsn; b = this.inflight[0]) {
      this.inflight.shift();
      this.inflightBytes -= b.bytes;
      if (b.unitEnd !== null && b.unitEnd > this.ackedUnit) this.ackedUnit = b.unitEnd;
    }
    this.ackWake?.();
    this.acks?.report({ lsn, unitLsn: this.ackedUnit });
  }

  /** Resolves when the next ACK arrives, or rejects when the connection closes. */
  private async ackOrClose(conn: MessageConnection): Promise<void> {
    const woke = new Promise<void>((resolve) => {
      this.ackWake = resolve;
    });
    const reason = await Promise.race([woke.then(() => null), conn.closed]);
    this.ackWake = null;
    if (reason) throw reason;
  }

  /** Streams until the frames end and are all acknowledged (true), or the session fails (throws). */
  private async stream(conn: MessageConnection, durable: bigint): Promise<boolean> {
    this.inflight = [];
    this.inflightBytes = 0;
    this.sent = durable;
    const stop = new AbortController();
    // Stopping does not wait for outstanding ACKs: what is unacknowledged is sent again next time.
    const onAbort = () => {
      stop.abort();
      conn.close(new TidemarkError(`${conn.label}: stopped`, { code: 'LINK_DOWN', retriable: true }));
    };
    this.o.signal.addEventListener('abort', onAbort, { once: true });
    // Aborted during connect or HELLO: the event has fired already.
    if (this.o.signal.aborted) onAbort();
    const acks = this.readAcks(conn);
    acks.catch(() => undefined);
    const sending = this.send(conn, durable + 1n, stop.signal);
    sending.catch(() => undefined);
    try {
      await Promise.race([sending, acks]);
      while (this.acked < this.sent) await Promise.race([this.ackOrClose(conn), acks]);
      return !this.o.signal.aborted;
    } finally {
      stop.abort();
      this.o.signal.removeEventListener('abort', onAbort);
      conn.close(new TidemarkError(`${conn.label}: session over`, { code: 'LINK_DOWN', retriable: true }));
      // The send loop shares the in-flight accounting: it must be over before another session starts. It ends
      // promptly: the frames source honours the abort, and waits for ACKs or 'drain' end with the connection.
      await sending.catch(() => undefined);
    }
  }

  private async readAcks(conn: MessageConnection): Promise<never> {
    for (;;) {
      const m = await conn.next();
      if (m.type === 'error') throw this.receiverError(conn, m.code, m.message);
      if (m.type !== 'ack' || m.lsn < this.acked || m.lsn > this.sent) {
        const what = m.type === 'ack' ? `ACK ${m.lsn} outside ${this.acked}..${this.sent}` : `unexpected ${m.type}`;
        const err = new TidemarkError(`${conn.label}: ${what}`, { code: 'LINK_PROTOCOL', retriable: true });
        conn.close(err, { code: 'PROTOCOL', message: what });
        throw err;
      }
      this.noteAck(m.lsn);
    }
  }

  private async send(conn: MessageConnection, from: bigint, signal: AbortSignal): Promise<void> {
    const batchBytes = this.o.batchBytes ?? 1 << 20;
    const windowBytes = this.o.windowBytes ?? 8 << 20;
    const source = this.o.frames(from, signal, { truncationEpoch: this.epoch });
    for await (const { frames, bytes } of batchFrames(source, from, batchBytes, Infinity, FRAME_OVERHEAD)) {
      if (conn.isClosed) throw await conn.closed;
      while (this.inflightBytes > 0 && this.inflightBytes + bytes > windowBytes) await this.ackOrClose(conn);
      if (conn.isClosed) throw await conn.closed;
      const last = (frames[frames.length - 1] as WireFrame).lsn;
      this.inflight.push({ lsn: last, bytes, unitEnd: lastUnitEnd(frames) });
      this.inflightBytes += bytes;
      // Before the write: the ACK may arrive before a full socket buffer drains.
      this.sent = last;
      await conn.send({ type: 'frames', frames });
    }
  }
}
