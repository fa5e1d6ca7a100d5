/**
 * A backup store at another site (I/O), reached over the ship transport's mutual-TLS connections: the other
 * site's `tidemark run` (or `tidemark backup serve`) serves one of its own stores (site-server.ts), and this
 * client is a BackupStore like the directory and S3 ones — so a copy job copies into it with the same code that
 * copies into a second local store, and restore reads from it. The protocol is in site-protocol.ts.
 *
 * Each operation takes an idle connection or dials a new one (certificates from `tidemark certs`; the server's
 * certificate must name the site), so concurrent operations never wait on each other. A connection is reused
 * only after an operation that ended cleanly; any failure closes it. A link cut mid-put fails that put with a
 * retriable error and the server discards the partial object: the store contract holds across sites. The
 * contract is tested in site.test.ts over real TLS.
 */
import { addAbortSignal, Readable } from 'node:stream';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { dial, type LinkSecurity, type Message, MessageConnection } from '../../ship/tcp/index.ts';
import type { BackupStore, GetRange, StoredObject } from '../store.ts';
import { DATA_CHUNK, errorOf, parseReply, type Reply, type Request, SITE_STORE_VERSION } from './site-protocol.ts';

export interface SiteStoreOptions {
  /** The site serving the store (its certificate must name it). */
  readonly site: string;
  /** This site's name (the server checks our certificate names it). */
  readonly self: string;
  readonly host: string;
  readonly port: number;
  readonly security: LinkSecurity;
  readonly log: Logger;
  readonly timeoutMs?: number;
  readonly heartbeatMs?: number;
}

type Ok = Extract<Reply, { op: 'ok' }>;

export class SiteStore implements BackupStore {
  readonly name: string;
  readonly #o: SiteStoreOptions;
  readonly #idle: MessageConnection[] = [];
  readonly #ac = new AbortController();

  private constructor(o: SiteStoreOptions, storeName: string) {
    this.#o = o;
    this.name = `site:${o.site}/${storeName}`;
  }

  /** Connects once (so a wrong address, certificate or site fails here, with the reason). */
  static async open(o: SiteStoreOptions): Promise<SiteStore> {
    const probe = new SiteStore(o, '?');
    const { conn, store } = await probe.#dial();
    const s = new SiteStore(o, store);
    s.#idle.push(conn);
    return s;
  }

  async #dial(): Promise<{ conn: MessageConnection; store: string }> {
    const o = this.#o;
    const label = `backup store at site ${o.site} (${o.host}:${o.port})`;
    const socket = await dial({
      host: o.host,
      port: o.port,
      security: o.security,
      targetSite: o.site,
      timeoutMs: o.timeoutMs ?? 10_000,
      signal: this.#ac.signal,
      label,
      log: o.log,
    });
    const conn = new MessageConnection({ socket, label, heartbeatMs: o.heartbeatMs ?? 1000, log: o.log });
    try {
      await send(conn, { op: 'hello', v: SITE_STORE_VERSION, site: o.self });
      const r = await this.#ok(conn);
      return { conn, store: r.store ?? '?' };
    } catch (err) {
      conn.close(asLink(err));
      throw err;
    }
  }

  async #reply(conn: MessageConnection): Promise<{ reply: Reply; data: Uint8Array }> {
    const m: Message = await conn.next();
    if (m.type === 'error') {
      throw new TidemarkError(`${this.name}: the server refused: ${m.message}`, {
        code: m.code === 'AUTH' ? 'SHIP_REFUSED' : 'LINK_PROTOCOL',
        retriable: m.code !== 'AUTH',
      });
    }
    if (m.type !== 'blob')
      throw new TidemarkError(`${this.name}: unexpected ${m.type} message`, { code: 'LINK_PROTOCOL', retriable: true });
    return { reply: parseReply(m.head), data: m.data };
  }

  async #ok(conn: MessageConnection): Promise<Ok> {
    const { reply } = await this.#reply(conn);
    if (reply.op === 'fail') throw errorOf(reply, this.name);
    if (reply.op !== 'ok')
      throw new TidemarkError(`${this.name}: expected ok, got ${reply.op}`, { code: 'LINK_PROTOCOL', retriable: true });
    return reply;
  }

  /** Runs one operation on a connection; returns it to the pool only when the operation ended cleanly. */
  async #with<T>(op: (conn: MessageConnection) => Promise<T>): Promise<T> {
    const conn = this.#idle.pop() ?? (await this.#dial()).conn;
    try {
      const out = await op(conn);
      if (!conn.isClosed) this.#idle.push(conn);
      return out;
    } catch (err) {
      // a store's own refusal (a missing key, a bad key) leaves the connection in step; anything else does not
      if (err instanceof TidemarkError && err.context['remoteCode'] !== undefined && !conn.isClosed)
        this.#idle.push(conn);
      else conn.close(asLink(err));
      throw err;
    }
  }

  put(key: string, body: Readable, opts: { readonly signal?: AbortSignal } = {}): Promise<StoredObject> {
    return this.#with(async (conn) => {
      await send(conn, { op: 'put', key });
      if (opts.signal !== undefined) addAbortSignal(opts.signal, body); // a body that stalls ends on abort
      let size = 0n;
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
          for (let at = 0; at < chunk.length; at += DATA_CHUNK) {
            const part = chunk.subarray(at, Math.min(chunk.length, at + DATA_CHUNK));
            await send(conn, { op: 'data' }, part);
            size += BigInt(part.length);
          }
        }
        if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      } catch (err) {
        // tell the server to discard the object, and wait until it has: nothing is under the key afterwards
        await send(conn, { op: 'abort', reason: String((err as Error)?.message ?? err).slice(0, 2000) });
        await this.#reply(conn);
        throw err;
      }
      await send(conn, { op: 'end', size: size.toString() });
      const r = await this.#ok(conn);
      return { key, size: BigInt(r.size ?? '0') };
    });
  }

  putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    return this.#with(async (conn) => {
      await send(conn, { op: 'putIfAbsent', key }, body);
      return (await this.#ok(conn)).written === true;
    });
  }

  async get(key: string, range?: GetRange): Promise<Readable> {
    const conn = this.#idle.pop() ?? (await this.#dial()).conn;
    try {
      await send(conn, {
        op: 'get',
        key,
        ...(range === undefined ? {} : { start: range.start.toString() }),
        ...(range?.end === undefined ? {} : { end: range.end.toString() }),
      });
      await this.#ok(conn);
    } catch (err) {
      if (err instanceof TidemarkError && err.context['remoteCode'] !== undefined) this.#idle.push(conn);
      else conn.close(asLink(err));
      throw err;
    }
    let done = false;
    const reader = async (): Promise<Buffer | null> => {
      const { reply, data } = await this.#reply(conn);
      if (reply.op === 'eof') return null;
      if (reply.op === 'fail') throw errorOf(reply, this.name);
      if (reply.op !== 'data')
        throw new TidemarkError(`${this.name}: expected data, got ${reply.op}`, {
          code: 'LINK_PROTOCOL',
          retriable: true,
        });
      return Buffer.from(data.buffer, data.byteOffset, data.length); // a view: each socket chunk is fresh
    };
    return new Readable({
      highWaterMark: DATA_CHUNK,
      read() {
        reader().then(
          (b) => {
            if (b === null) done = true;
            this.push(b);
          },
          (err: unknown) => this.destroy(err as Error),
        );
      },
      destroy: (err, cb) => {
        // a get read to its end leaves the connection in step; one given up half-way does not
        if (done && err === null && !conn.isClosed) this.#idle.push(conn);
        else conn.close(asLink(err ?? new Error('get stopped before its end')));
        cb(err);
      },
    });
  }

  head(key: string): Promise<StoredObject | null> {
    return this.#with(async (conn) => {
      await send(conn, { op: 'head', key });
      const r = await this.#ok(conn);
      return r.size === null || r.size === undefined ? null : { key, size: BigInt(r.size) };
    });
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    // pages are collected first: a caller may use the store while iterating, and this connection is busy
    const all = await this.#with(async (conn) => {
      await send(conn, { op: 'list', prefix });
      const out: StoredObject[] = [];
      for (;;) {
        const r = await this.#ok(conn);
        for (const [key, size] of r.objects ?? []) out.push({ key, size: BigInt(size) });
        if (r.more !== true) return out;
      }
    });
    yield* all;
  }

  delete(key: string): Promise<void> {
    return this.#with(async (conn) => {
      await send(conn, { op: 'delete', key });
      await this.#ok(conn);
    });
  }

  async close(): Promise<void> {
    this.#ac.abort();
    for (const c of this.#idle.splice(0)) {
      c.close(new TidemarkError(`${this.name}: closed`, { code: 'LINK_DOWN', retriable: true }));
    }
  }
}

function send(conn: MessageConnection, head: Request, data: Uint8Array = EMPTY): Promise<void> {
  return conn.send({ type: 'blob', head: JSON.stringify(head), data });
}

const EMPTY = new Uint8Array(0);

function asLink(err: unknown): TidemarkError {
  return err instanceof TidemarkError
    ? err
    : new TidemarkError(`site store: ${String((err as Error)?.message ?? err)}`, {
        code: 'LINK_DOWN',
        retriable: true,
        cause: err,
      });
}
