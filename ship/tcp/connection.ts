/**
 * One ship connection: a socket (TLS or plain) carrying protocol.ts messages. I/O only: bytes go to a
 * MessageDecoder, messages come out of next(); send() encodes and writes.
 *
 *   Heartbeats  A HEARTBEAT is sent whenever nothing was sent for heartbeatMs (and the socket is not blocked).
 *               No bytes from the peer for 3 × heartbeatMs closes the connection as dead (LINK_DEAD). Bytes, not
 *               whole messages, count: a large FRAMES message on a slow link is progress, not silence. While
 *               this side stopped reading on purpose (backpressure), silence is not held against the peer.
 *               HEARTBEAT messages are consumed here; next() never returns them.
 *   Backpressure  send() resolves once the socket took the bytes, waiting for 'drain' when its buffer is full.
 *               Reading pauses while more than maxQueuedBytes of decoded messages wait for next().
 *   Errors      Damage or a protocol violation in the incoming stream closes the connection, after telling the
 *               peer with an ERROR message (CORRUPT or PROTOCOL). The close reason is always a retriable
 *               TidemarkError (LINK_DOWN, LINK_DEAD, LINK_CORRUPT, LINK_PROTOCOL) with the original as cause.
 *
 * dial() opens the shipper's socket: TCP, then TLS 1.3 with our certificate, checking that the receiver's
 * certificate comes from our CA and names the site we ship to.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Logger } from 'pino';
import { CorruptionError, type ErrorCode, TidemarkError } from '../../core/errors.ts';
import { handshakeRefusal, type LinkSecurity, serverIdentityCheck } from './identity.ts';
import { encodeMessage, type Message, MessageDecoder } from './protocol.ts';

export interface ConnectionOptions {
  socket: Socket;
  /** For log lines and errors, e.g. "receiver dc2 at 10.0.0.2:7400". */
  label: string;
  heartbeatMs: number;
  log: Logger;
  maxBodyBytes?: number;
  /** Decoded bytes waiting for next() above which reading pauses. Default 16 MiB. */
  maxQueuedBytes?: number;
  /** Called whenever bytes arrive from the peer (heartbeats included): the takeover guard's "last contact". */
  onData?: () => void;
}

function messageBytes(m: Message): number {
  if (m.type === 'frames') return m.frames.reduce((n, f) => n + f.payload.length + 13, 0);
  return m.type === 'blob' ? m.data.length + m.head.length + 16 : 32;
}

export class MessageConnection {
  readonly label: string;
  readonly socket: Socket;
  /** Resolves with the close reason once the connection is closed (never rejects). */
  readonly closed: Promise<TidemarkError>;
  private readonly log: Logger;
  private readonly heartbeatMs: number;
  private readonly maxQueued: number;
  private readonly decoder: MessageDecoder;
  private readonly queue: Message[] = [];
  private queuedBytes = 0;
  private waiter: { resolve: (m: Message) => void; reject: (e: Error) => void } | null = null;
  private drain: Promise<void> | null = null;
  private reason: TidemarkError | null = null;
  private resolveClosed: (e: TidemarkError) => void = () => undefined;
  private lastReceived = performance.now();
  private lastSent = performance.now();
  private readPaused = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onReceive: (() => void) | undefined;

  constructor(opts: ConnectionOptions) {
    this.onReceive = opts.onData;
    this.label = opts.label;
    this.socket = opts.socket;
    this.log = opts.log;
    this.heartbeatMs = opts.heartbeatMs;
    this.maxQueued = opts.maxQueuedBytes ?? 16 << 20;
    this.decoder = new MessageDecoder(opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: opts.maxBodyBytes });
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    const s = this.socket;
    s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', (err) => this.close(this.linkError('LINK_DOWN', `connection error: ${err.message}`, err)));
    s.on('end', () => this.close(this.linkError('LINK_DOWN', 'connection closed by the peer')));
    s.on('close', () => this.close(this.linkError('LINK_DOWN', 'connection closed')));
    this.timer = setInterval(() => this.tick(), Math.max(5, Math.floor(this.heartbeatMs / 2)));
  }

  get isClosed(): boolean {
    return this.reason !== null;
  }

  private linkError(code: ErrorCode, what: string, cause?: unknown): TidemarkError {
    return new TidemarkError(`${this.label}: ${what}`, { code, retriable: true, cause });
  }

  /** The next message (never a HEARTBEAT); rejects with the close reason once the connection is closed. */
  next(): Promise<Message> {
    const m = this.tryNext();
    if (m) return Promise.resolve(m);
    if (this.reason) return Promise.reject(this.reason);
    if (this.waiter) throw new TidemarkError(`${this.label}: next() called twice concurrently`, { code: 'USAGE' });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** A message already received, or null. */
  tryNext(): Message | null {
    const m = this.queue.shift();
    if (!m) return null;
    this.queuedBytes -= messageBytes(m);
    if (this.readPaused && this.queuedBytes <= this.maxQueued / 2 && !this.reason) {
      this.readPaused = false;
      this.lastReceived = performance.now();
      this.socket.resume();
    }
    return m;
  }

  /** Writes a message; resolves once the socket accepted it (after 'drain' when its buffer was full). */
  async send(msg: Message): Promise<void> {
    if (this.reason) throw this.reason;
    this.lastSent = performance.now();
    if (!this.socket.write(encodeMessage(msg))) await this.waitDrain();
  }

  private waitDrain(): Promise<void> {
    this.drain ??= new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        this.socket.off('drain', onDrain);
        this.drain = null;
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      this.socket.on('drain', onDrain);
      void this.closed.then((reason) => done(reason));
    });
    return this.drain;
  }

  /**
   * Closes the connection (idempotent). With `notify`, an ERROR message goes to the peer first, and the socket
   * is ended gracefully (destroyed after a second at most).
   */
  close(reason: TidemarkError, notify?: { code: string; message: string }): void {
    if (this.reason) return;
    this.reason = reason;
    clearInterval(this.timer);
    const s = this.socket;
    if (notify && !s.destroyed && s.writable) {
      try {
        s.write(encodeMessage({ type: 'error', code: notify.code, message: notify.message.slice(0, 4000) }));
        s.end();
        setTimeout(() => s.destroy(), 1000).unref();
      } catch {
        s.destroy();
      }
    } else {
      s.destroy();
    }
    const w = this.waiter;
    this.waiter = null;
    w?.reject(reason);
    this.resolveClosed(reason);
  }

  private onData(chunk: Buffer): void {
    if (this.reason) return;
    this.lastReceived = performance.now();
    this.onReceive?.();
    try {
      this.decoder.push(chunk);
      for (let m = this.decoder.next(); m; m = this.decoder.next()) {
        if (m.type === 'heartbeat') continue;
        const w = this.waiter;
        if (w) {
          this.waiter = null;
          w.resolve(m);
        } else {
          this.queue.push(m);
          this.queuedBytes += messageBytes(m);
        }
      }
    } catch (err) {
      const corrupt = err instanceof CorruptionError;
      const msg = (err as Error).message;
      this.log.error(
        { peer: this.label, err: msg, ...(err as TidemarkError).context },
        'ship link: bad incoming stream; closing',
      );
      this.close(this.linkError(corrupt ? 'LINK_CORRUPT' : 'LINK_PROTOCOL', msg, err), {
        code: corrupt ? 'CORRUPT' : 'PROTOCOL',
        message: `received from you: ${msg}`,
      });
      return;
    }
    if (!this.readPaused && this.queuedBytes > this.maxQueued) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  private tick(): void {
    if (this.reason) return;
    const now = performance.now();
    const silent = now - this.lastReceived;
    if (!this.readPaused && silent > 3 * this.heartbeatMs) {
      this.log.warn(
        { peer: this.label, silentMs: Math.round(silent) },
        'ship link: peer silent for 3 heartbeats; closing',
      );
      this.close(
        this.linkError(
          'LINK_DEAD',
          `no data for ${Math.round(silent)} ms (3 heartbeat intervals of ${this.heartbeatMs} ms): link declared dead`,
        ),
      );
      return;
    }
    if (this.drain === null && now - this.lastSent >= this.heartbeatMs) {
      this.send({ type: 'heartbeat', sentAtMs: Date.now() }).catch(() => undefined);
    }
  }
}

export interface DialOptions {
  host: string;
  port: number;
  security: LinkSecurity;
  /** The receiver's certificate must name this site. */
  targetSite: string;
  /** TCP connect + TLS handshake within this. */
  timeoutMs: number;
  signal: AbortSignal;
  label: string;
  log: Logger;
}

/**
 * Connects (TCP, then TLS unless 'plaintext'). Rejects with a retriable LINK_DOWN for network trouble, and with
 * a non-retriable SHIP_REFUSED (logged with its reason) when a certificate is wrong: another CA, expired, or
 * naming another site.
 */
export async function dial(o: DialOptions): Promise<Socket> {
  const sec = o.security;
  const socket: Socket =
    sec === 'plaintext'
      ? netConnect({ host: o.host, port: o.port })
      : tlsConnect({
          host: o.host,
          port: o.port,
          ca: sec.ca,
          cert: sec.cert,
          key: sec.key,
          servername: o.targetSite,
          checkServerIdentity: serverIdentityCheck(o.targetSite),
          minVersion: 'TLSv1.3',
        });
  const ready = sec === 'plaintext' ? 'connect' : 'secureConnect';
  await new Promise<void>((resolve, reject) => {
    const down = (what: string, cause?: unknown) =>
      new TidemarkError(`${o.label}: ${what}`, { code: 'LINK_DOWN', retriable: true, cause });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(down(`no connection within ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    const onAbort = () => socket.destroy();
    o.signal.addEventListener('abort', onAbort, { once: true });
    const settle = (err?: Error) => {
      clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort);
      socket.off(ready, ok);
      socket.off('error', bad);
      socket.off('close', closed);
      if (err) reject(err);
      else resolve();
    };
    const ok = () => settle();
    const bad = (err: NodeJS.ErrnoException) => {
      const { reason, fatal } = handshakeRefusal(err);
      if (!fatal) return settle(down(reason, err));
      o.log.error({ code: err.code, reason }, `ship: ${o.label} refused: ${reason}`);
      settle(new TidemarkError(`${o.label}: ${reason}`, { code: 'SHIP_REFUSED', retriable: false, cause: err }));
    };
    const closed = () => settle(down('connection closed during set-up'));
    socket.once(ready, ok);
    socket.once('error', bad);
    socket.once('close', closed);
  });
  return socket;
}
