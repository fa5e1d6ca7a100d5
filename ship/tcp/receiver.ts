/**
 * The receiving end of the ship link (standby site): a TLS server that accepts shippers, one session per source.
 *
 * Session, as a sequence of states (each transition logged):
 *   authorizing  TLS identity checked before anything is read (identity.ts clientRefusal) → refused: log line +
 *                ERROR AUTH, close
 *   hello        first message must be HELLO (within 3 heartbeats); protocol version and claimed site checked
 *                → refused: WELCOME with the reason, close
 *   takeover     an older session of the same source is closed and its in-flight onFrames awaited, so onFrames
 *                never runs twice at once for a source and onHello reads a settled durable LSN
 *   welcome      onHello decides: WELCOME(durableLsn) or WELCOME(refused, reason)
 *   streaming    FRAMES must continue exactly at durableLsn + 1 (an LSN already passed is dropped, a gap is a
 *                PROTOCOL error); consecutive FRAMES already received are handed to onFrames together; after
 *                onFrames resolves (frames durable), ACK(last LSN)
 *   closed       link lost, heartbeat timeout, damage (ERROR CORRUPT to the shipper), onFrames failure (ERROR
 *                INTERNAL): the shipper reconnects and resumes from what onHello reports then
 */
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { describeChain, TidemarkError } from '../../core/errors.ts';
import { MessageConnection } from './connection.ts';
import { certificateNames, clientRefusal, DEFAULT_HEARTBEAT_MS, type LinkSecurity, siteRefusal } from './identity.ts';
import type { FramesSink, ReceiverSessionInfo, WireFrame } from '../frame.ts';
import { type HelloMessage, PROTOCOL_VERSION } from './protocol.ts';

/** `onHello` and `onFrames` (FramesSink, ../frame.ts): a MirrorSink's `callbacks()`; the ACK follows onFrames. */
export interface ReceiverOptions extends FramesSink {
  /** Listen address; default all interfaces. */
  host?: string;
  /** 0 picks a free port (see ShipReceiver.port). */
  port: number;
  security: LinkSecurity;
  /** Default DEFAULT_HEARTBEAT_MS; the shipper's own interval may differ. */
  heartbeatMs?: number;
  log: Logger;
  maxBodyBytes?: number;
  /** Received bytes waiting for onFrames above which reading from that shipper pauses. Default 16 MiB. */
  maxQueuedBytes?: number;
  /** At most this many frames per onFrames call. Default 10 000. */
  maxFramesPerCall?: number;
}

interface Session {
  readonly conn: MessageConnection;
  readonly done: Promise<void>;
}

export class ShipReceiver {
  private readonly opts: ReceiverOptions;
  private readonly log: Logger;
  private readonly heartbeatMs: number;
  private readonly server: Server;
  /** Active session per source. */
  private readonly active = new Map<string, Session>();
  private readonly all = new Set<Promise<void>>();
  private closing = false;

  private constructor(opts: ReceiverOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const sec = opts.security;
    if (sec === 'plaintext') {
      this.log.warn('ship receiver: TLS is off (plaintext): shippers are not authenticated');
      this.server = createNetServer((s) => this.track(this.handle(s, null)));
    } else {
      // rejectUnauthorized false: clientRefusal() decides, so the refusal can be logged with its reason and told
      // to the shipper. Nothing is read from a connection before that check.
      const server = createTlsServer({
        ca: sec.ca,
        cert: sec.cert,
        key: sec.key,
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      });
      server.on('secureConnection', (s: TLSSocket) => this.track(this.handle(s, s)));
      server.on('tlsClientError', (err: NodeJS.ErrnoException, s: TLSSocket) => {
        const plain = err.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || err.code === 'ERR_SSL_HTTP_REQUEST';
        const reason = plain
          ? 'the client does not speak TLS (a shipper with ship.plaintext: true?); this receiver requires TLS'
          : err.message;
        this.log.warn(
          { peer: `${s.remoteAddress}:${s.remotePort}`, code: err.code, reason },
          `ship receiver: TLS handshake failed: ${reason}`,
        );
      });
      this.server = server;
    }
  }

  /** Starts listening; resolves once the port is bound. */
  static async listen(opts: ReceiverOptions): Promise<ShipReceiver> {
    const r = new ShipReceiver(opts);
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject);
      r.server.listen(opts.port, opts.host, () => {
        r.server.off('error', reject);
        resolve();
      });
    });
    r.log.info({ port: r.port, host: opts.host ?? '*' }, 'ship receiver: listening');
    return r;
  }

  get port(): number {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** Sources with an active session. */
  get sources(): string[] {
    return [...this.active.keys()].sort();
  }

  /** Stops accepting, closes every session and waits for in-flight onFrames calls. */
  async close(): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.active.values()) {
      s.conn.close(new TidemarkError('ship receiver: shutting down', { code: 'LINK_DOWN', retriable: true }));
    }
    await Promise.all([...this.all]);
    await stopped;
  }

  private track(p: Promise<void>): void {
    this.all.add(p);
    void p.finally(() => this.all.delete(p));
  }

  private refuse(conn: MessageConnection, peer: string, reason: string, code: string): void {
    this.log.warn({ peer, reason }, `ship receiver: refused connection from ${peer}: ${reason}`);
    conn.close(new TidemarkError(`refused: ${reason}`, { code: 'LINK_REFUSED', retriable: true }), {
      code,
      message: reason,
    });
  }

  private async handle(socket: Socket, tls: TLSSocket | null): Promise<void> {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const conn = new MessageConnection({
      socket,
      label: `shipper at ${peer}`,
      heartbeatMs: this.heartbeatMs,
      log: this.log,
      ...(this.opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: this.opts.maxBodyBytes }),
      ...(this.opts.maxQueuedBytes === undefined ? {} : { maxQueuedBytes: this.opts.maxQueuedBytes }),
    });
    if (this.closing) return conn.close(new TidemarkError('ship receiver: shutting down', { code: 'LINK_DOWN' }));
    if (tls) {
      const refusal = clientRefusal(tls);
      if (refusal) return this.refuse(conn, peer, refusal, 'AUTH');
    }
    let hello: HelloMessage;
    try {
      hello = await this.awaitHello(conn);
    } catch (err) {
      if (!conn.isClosed) this.refuse(conn, peer, describeChain(err), 'PROTOCOL');
      else this.log.info({ peer, reason: describeChain(err) }, 'ship receiver: connection ended before HELLO');
      return;
    }
    const info: ReceiverSessionInfo = {
      source: hello.source,
      site: hello.site,
      journalId: hello.journalId,
      truncations: hello.truncations,
      ...(hello.branch ? { branch: hello.branch } : {}),
      protocolVersion: hello.protocolVersion,
      peer,
      certificateNames: tls ? certificateNames(tls.getPeerCertificate()) : [],
    };
    const early =
      hello.protocolVersion !== PROTOCOL_VERSION
        ? `protocol version ${hello.protocolVersion} is not supported (this receiver speaks ${PROTOCOL_VERSION})`
        : siteRefusal(hello.site, tls);
    if (early) return this.refuseHello(conn, info, early);

    let release: () => void = () => undefined;
    const done = new Promise<void>((r) => {
      release = r;
    });
    const previous = this.active.get(hello.source);
    const me: Session = { conn, done };
    this.active.set(hello.source, me);
    try {
      if (previous) {
        this.log.info(
          { source: hello.source, peer },
          'ship receiver: new connection replaces the session of this source',
        );
        previous.conn.close(
          new TidemarkError(`replaced by a new connection from ${peer}`, { code: 'LINK_DOWN', retriable: true }),
        );
        await previous.done;
      }
      await this.session(conn, info);
    } finally {
      if (this.active.get(hello.source) === me) this.active.delete(hello.source);
      release();
    }
  }

  private async awaitHello(conn: MessageConnection): Promise<HelloMessage> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TidemarkError(`no HELLO within ${3 * this.heartbeatMs} ms`, { code: 'LINK_PROTOCOL' })),
        3 * this.heartbeatMs,
      );
    });
    try {
      const m = await Promise.race([conn.next(), timeout]);
      if (m.type !== 'hello') {
        throw new TidemarkError(`expected HELLO, got ${m.type.toUpperCase()}`, { code: 'LINK_PROTOCOL' });
      }
      return m;
    } finally {
      clearTimeout(timer);
    }
  }

  private refuseHello(conn: MessageConnection, info: ReceiverSessionInfo, reason: string): void {
    this.log.warn(
      { peer: info.peer, source: info.source, site: info.site, reason },
      `ship receiver: refused connection from ${info.peer}: ${reason}`,
    );
    conn.send({ type: 'welcome', durableLsn: null, reason }).catch(() => undefined);
    conn.socket.end();
    setTimeout(
      () => conn.close(new TidemarkError(`refused: ${reason}`, { code: 'LINK_REFUSED', retriable: true })),
      1000,
    ).unref();
  }

  private async session(conn: MessageConnection, info: ReceiverSessionInfo): Promise<void> {
    const log = this.log.child({ source: info.source, site: info.site, peer: info.peer });
    if (conn.isClosed) return;
    let decision: { durableLsn: bigint } | { refuse: string };
    try {
      decision = await this.opts.onHello(info);
    } catch (err) {
      log.error({ err: describeChain(err) }, 'ship receiver: onHello failed; closing');
      conn.close(new TidemarkError('onHello failed', { code: 'LINK_DOWN', retriable: true, cause: err }), {
        code: 'INTERNAL',
        message: `receiver could not look up its durable LSN: ${describeChain(err)}`,
      });
      return;
    }
    if ('refuse' in decision) return this.refuseHello(conn, info, decision.refuse);
    let next = decision.durableLsn + 1n;
    try {
      await conn.send({ type: 'welcome', durableLsn: decision.durableLsn });
      log.info({ durableLsn: String(decision.durableLsn) }, 'ship receiver: session started');
      const max = this.opts.maxFramesPerCall ?? 10_000;
      for (;;) {
        const batch: WireFrame[] = [];
        for (let m: ReturnType<MessageConnection['tryNext']> = await conn.next(); m; m = conn.tryNext()) {
          if (m.type === 'error') {
            throw new TidemarkError(`shipper reported ${m.code}: ${m.message}`, { code: 'LINK_DOWN', retriable: true });
          }
          if (m.type !== 'frames') {
            throw new TidemarkError(`unexpected ${m.type.toUpperCase()} while streaming`, { code: 'LINK_PROTOCOL' });
          }
          const first = (m.frames[0] as WireFrame).lsn;
          if (first > next) {
            throw new TidemarkError(`frames jump from LSN ${next - 1n} to ${first}`, { code: 'LINK_PROTOCOL' });
          }
          const fresh = first === next ? m.frames : m.frames.filter((f) => f.lsn >= next);
          if (fresh.length < m.frames.length) {
            log.warn({ first: String(first), expected: String(next) }, 'ship receiver: dropped frames received twice');
          }
          batch.push(...fresh);
          if (fresh.length > 0) next = (fresh[fresh.length - 1] as WireFrame).lsn + 1n;
          if (batch.length >= max) break;
        }
        if (batch.length === 0) continue;
        try {
          await this.opts.onFrames(info.source, batch);
        } catch (err) {
          conn.close(new TidemarkError('onFrames failed', { code: 'LINK_DOWN', retriable: true, cause: err }), {
            code: 'INTERNAL',
            message: `receiver could not store frames: ${describeChain(err)}`,
          });
          throw err;
        }
        if (conn.isClosed) throw await conn.closed;
        await conn.send({ type: 'ack', lsn: next - 1n });
      }
    } catch (err) {
      const code = err instanceof TidemarkError ? err.code : '';
      if (code === 'LINK_PROTOCOL') {
        log.error({ err: describeChain(err) }, 'ship receiver: protocol violation; closing');
        conn.close(err as TidemarkError, { code: 'PROTOCOL', message: (err as Error).message });
      } else {
        log.warn({ err: describeChain(err), lastLsn: String(next - 1n) }, 'ship receiver: session ended');
        conn.close(
          err instanceof TidemarkError ? err : new TidemarkError('session failed', { code: 'LINK_DOWN', cause: err }),
        );
      }
    }
  }
}
