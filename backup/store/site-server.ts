/**
 * The store server (I/O): serves one of this site's backup stores to the other sites' copy jobs and restores,
 * over the ship transport's mutual TLS (site-protocol.ts has the messages; site.ts is the client). Every
 * connection is authorized before anything is read (a certificate from our CA), its HELLO must name a site the
 * certificate names, and, when `sites` is given, one of those. Operations run one at a time per connection,
 * straight into the local store: a put streams into store.put (never buffered whole), so a link cut or an abort
 * mid-put destroys the body and the store keeps nothing under the key (the store contract).
 */
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { describeChain, TidemarkError } from '../../core/errors.ts';
import { certificateNames, clientRefusal, type LinkSecurity, MessageConnection } from '../../ship/tcp/index.ts';
import type { BackupStore, StoredObject } from '../store.ts';
import { DATA_CHUNK, failOf, LIST_PAGE, parseRequest, type Reply, type Request } from './site-protocol.ts';

export interface StoreServerOptions {
  readonly store: BackupStore;
  /** A name for the store in replies and logs. */
  readonly storeName: string;
  readonly host?: string;
  /** 0 picks a free port (see `port`). */
  readonly port: number;
  readonly security: LinkSecurity;
  /** Sites allowed to use the store; absent: any site with a certificate from our CA. */
  readonly sites?: readonly string[];
  readonly log: Logger;
  readonly heartbeatMs?: number;
}

export class StoreServer {
  readonly #o: StoreServerOptions;
  readonly #server: Server;
  readonly #conns = new Set<MessageConnection>();

  private constructor(o: StoreServerOptions) {
    this.#o = o;
    const sec = o.security;
    if (sec === 'plaintext') {
      o.log.warn('backup store server: TLS is off (plaintext): clients are not authenticated');
      this.#server = createNetServer((s) => void this.#handle(s, null));
    } else {
      const server = createTlsServer({
        ca: sec.ca,
        cert: sec.cert,
        key: sec.key,
        requestCert: true,
        rejectUnauthorized: false, // clientRefusal() decides, with a reason to log
        minVersion: 'TLSv1.3',
      });
      server.on('secureConnection', (s: TLSSocket) => void this.#handle(s, s));
      server.on('tlsClientError', (err) =>
        o.log.warn({ err: err.message }, 'backup store server: TLS handshake failed'),
      );
      this.#server = server;
    }
  }

  static async listen(o: StoreServerOptions): Promise<StoreServer> {
    const s = new StoreServer(o);
    s.#server.listen(o.port, o.host);
    await once(s.#server, 'listening');
    o.log.info({ port: s.port, store: o.storeName }, 'backup store server: listening');
    return s;
  }

  get port(): number {
    const a = this.#server.address();
    return a !== null && typeof a === 'object' ? a.port : 0;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((res) => this.#server.close(() => res()));
    for (const c of this.#conns)
      c.close(new TidemarkError('backup store server: shutting down', { code: 'LINK_DOWN' }));
    await closed;
  }

  async #handle(socket: Socket, tls: TLSSocket | null): Promise<void> {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const log = this.#o.log.child({ peer });
    const conn = new MessageConnection({
      socket,
      label: `store client ${peer}`,
      heartbeatMs: this.#o.heartbeatMs ?? 1000,
      log,
    });
    this.#conns.add(conn);
    try {
      const refused = tls === null ? null : clientRefusal(tls);
      if (refused !== null) {
        log.warn({ reason: refused }, 'backup store server: refused a client');
        return conn.close(new TidemarkError(refused, { code: 'SHIP_REFUSED' }), { code: 'AUTH', message: refused });
      }
      const hello = await this.#request(conn);
      const site = hello.req.op === 'hello' ? hello.req.site : null;
      const why = this.#siteRefusal(site, tls);
      if (why !== null) {
        log.warn({ reason: why }, 'backup store server: refused a client');
        return conn.close(new TidemarkError(why, { code: 'SHIP_REFUSED' }), { code: 'AUTH', message: why });
      }
      await reply(conn, { op: 'ok', store: this.#o.storeName });
      log.info({ site }, 'backup store server: client connected');
      for (;;) await this.#serve(conn, await this.#request(conn));
    } catch (err) {
      if (!conn.isClosed) log.warn({ err: describeChain(err) }, 'backup store server: connection ended');
      conn.close(err instanceof TidemarkError ? err : new TidemarkError(String(err), { code: 'LINK_DOWN' }));
    } finally {
      this.#conns.delete(conn);
    }
  }

  #siteRefusal(site: string | null, tls: TLSSocket | null): string | null {
    if (site === null) return 'the first message must be hello';
    if (tls !== null && !certificateNames(tls.getPeerCertificate()).includes(site.toLowerCase())) {
      return `hello says site "${site}" but the client certificate does not name it`;
    }
    const allowed = this.#o.sites;
    if (allowed !== undefined && !allowed.includes(site)) {
      return `site "${site}" may not use this store (allowed: ${allowed.join(', ')})`;
    }
    return null;
  }

  async #request(conn: MessageConnection): Promise<{ req: Request; data: Uint8Array }> {
    const m = await conn.next();
    if (m.type !== 'blob') throw new TidemarkError(`unexpected ${m.type} message`, { code: 'LINK_PROTOCOL' });
    return { req: parseRequest(m.head), data: m.data };
  }

  async #serve(conn: MessageConnection, { req, data }: { req: Request; data: Uint8Array }): Promise<void> {
    const store = this.#o.store;
    try {
      switch (req.op) {
        case 'put':
          return await this.#put(conn, req.key);
        case 'putIfAbsent':
          return await reply(conn, { op: 'ok', written: await store.putIfAbsent(req.key, Buffer.from(data)) });
        case 'get':
          return await this.#get(conn, req);
        case 'head': {
          const h = await store.head(req.key);
          return await reply(conn, { op: 'ok', size: h === null ? null : h.size.toString() });
        }
        case 'list':
          return await this.#list(conn, req.prefix);
        case 'delete':
          await store.delete(req.key);
          return await reply(conn, { op: 'ok' });
        default:
          throw new TidemarkError(`unexpected '${req.op}' outside a put`, { code: 'LINK_PROTOCOL' });
      }
    } catch (err) {
      if (conn.isClosed || (err instanceof TidemarkError && err.code.startsWith('LINK_'))) throw err;
      await reply(conn, failOf(err));
    }
  }

  /** data × N then end (or abort): streamed into the store; an abort or a lost link leaves nothing. */
  async #put(conn: MessageConnection, key: string): Promise<void> {
    const body = new PassThrough({ highWaterMark: DATA_CHUNK });
    body.on('error', () => undefined); // destroyed on purpose below: the put's own rejection carries it
    const put: Promise<StoredObject> = this.#o.store.put(key, body);
    put.catch(() => undefined);
    let size = 0n;
    for (;;) {
      let next: { req: Request; data: Uint8Array };
      try {
        next = await this.#request(conn);
      } catch (err) {
        body.destroy(err as Error);
        await put.catch(() => undefined);
        throw err;
      }
      const { req, data } = next;
      if (req.op === 'data') {
        size += BigInt(data.length);
        if (!body.write(Buffer.from(data.buffer, data.byteOffset, data.length)))
          await Promise.race([once(body, 'drain'), put]);
        continue;
      }
      if (req.op === 'abort' || req.op !== 'end' || BigInt(req.size) !== size) {
        const what =
          req.op === 'abort'
            ? `put of '${key}' aborted by the client: ${req.reason}`
            : req.op === 'end'
              ? `put of '${key}': the client sent ${req.size} bytes, ${size} arrived`
              : `unexpected '${req.op}' inside the put of '${key}'`;
        body.destroy(new TidemarkError(what, { code: 'BACKUP_STORE', retriable: true }));
        await put.catch(() => undefined);
        return reply(
          conn,
          failOf(new TidemarkError(what, { code: 'BACKUP_STORE', retriable: true, context: { key } })),
        );
      }
      body.end();
      const stored = await put;
      return reply(conn, { op: 'ok', size: stored.size.toString() });
    }
  }

  async #get(conn: MessageConnection, req: Extract<Request, { op: 'get' }>): Promise<void> {
    const range =
      req.start === undefined
        ? undefined
        : { start: BigInt(req.start), ...(req.end === undefined ? {} : { end: BigInt(req.end) }) };
    const stream = await this.#o.store.get(req.key, range);
    await reply(conn, { op: 'ok' });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        for (let at = 0; at < chunk.length; at += DATA_CHUNK) {
          await reply(conn, { op: 'data' }, chunk.subarray(at, Math.min(chunk.length, at + DATA_CHUNK)));
        }
      }
    } catch (err) {
      if (conn.isClosed) throw err;
      return reply(conn, failOf(err));
    }
    await reply(conn, { op: 'eof' });
  }

  async #list(conn: MessageConnection, prefix: string): Promise<void> {
    let page: Array<[string, string]> = [];
    for await (const o of this.#o.store.list(prefix)) {
      page.push([o.key, o.size.toString()]);
      if (page.length === LIST_PAGE) {
        await reply(conn, { op: 'ok', objects: page, more: true });
        page = [];
      }
    }
    await reply(conn, { op: 'ok', objects: page, more: false });
  }
}

function reply(conn: MessageConnection, r: Reply, data: Uint8Array = new Uint8Array(0)): Promise<void> {
  return conn.send({ type: 'blob', head: JSON.stringify(r), data });
}
