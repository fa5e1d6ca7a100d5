/**
 * A TCP proxy for fault tests: listens on a port and forwards each connection to an upstream address, byte for
 * byte, with faults on demand:
 *
 *   pause()       stop forwarding in both directions without closing anything (a cut link: TCP stays up, no
 *                 data moves; connections accepted meanwhile hang too); resume() forwards again
 *   closeAll()    destroy every current connection (both sides)
 *   flipByte(n)   XOR one byte (mask, default 0x01) at offset n of the client→upstream stream, once: in the
 *                 first connection whose client→upstream byte count reaches n
 *
 * Backpressure is kept: a side whose write buffer is full stops the other side's reading until 'drain'.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export interface FaultProxyOptions {
  upstreamHost: string;
  upstreamPort: number;
  /** Default 127.0.0.1. */
  listenHost?: string;
  /** Default 0 (a free port). */
  listenPort?: number;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Client→upstream bytes forwarded so far. */
  sent: number;
  /** Directions held back by a full write buffer on the other side. */
  clientHeld: boolean;
  upstreamHeld: boolean;
}

export class FaultProxy {
  private readonly server: Server;
  private readonly opts: FaultProxyOptions;
  private readonly pairs = new Set<Pair>();
  private paused = false;
  private flip: { offset: number; mask: number } | null = null;
  private flips = 0;
  private accepted = 0;
  private bytesUp = 0;

  private constructor(opts: FaultProxyOptions) {
    this.opts = opts;
    this.server = createServer((client) => this.accept(client));
  }

  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const p = new FaultProxy(opts);
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(opts.listenPort ?? 0, opts.listenHost ?? '127.0.0.1', () => resolve());
    });
    return p;
  }

  get port(): number {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.accepted;
  }

  /** Connections open now. */
  get open(): number {
    return this.pairs.size;
  }

  /** Bytes flipped so far. */
  get flipped(): number {
    return this.flips;
  }

  /** Client→upstream bytes forwarded so far, all connections together. */
  get bytesForwarded(): number {
    return this.bytesUp;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  pause(): void {
    this.paused = true;
    for (const p of this.pairs) {
      p.client.pause();
      p.upstream.pause();
    }
  }

  resume(): void {
    this.paused = false;
    for (const p of this.pairs) this.flow(p);
  }

  closeAll(): void {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
  }

  flipByte(offset: number, mask = 0x01): void {
    if (!Number.isInteger(offset) || offset < 0 || mask < 1 || mask > 0xff) {
      throw new RangeError('flipByte: offset must be a whole number ≥ 0 and mask 1..255');
    }
    this.flip = { offset, mask };
  }

  async close(): Promise<void> {
    this.closeAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private flow(p: Pair): void {
    if (this.paused) return;
    if (!p.clientHeld) p.client.resume();
    if (!p.upstreamHeld) p.upstream.resume();
  }

  private accept(client: Socket): void {
    this.accepted++;
    client.pause();
    const upstream = tcpConnect({ host: this.opts.upstreamHost, port: this.opts.upstreamPort });
    upstream.pause();
    const p: Pair = { client, upstream, sent: 0, clientHeld: false, upstreamHeld: false };
    this.pairs.add(p);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(p);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    client.on('data', (chunk: Buffer) => {
      const out = this.maybeFlip(p, chunk);
      p.sent += chunk.length;
      this.bytesUp += chunk.length;
      if (!upstream.write(out)) {
        p.clientHeld = true;
        client.pause();
        upstream.once('drain', () => {
          p.clientHeld = false;
          this.flow(p);
        });
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) {
        p.upstreamHeld = true;
        upstream.pause();
        client.once('drain', () => {
          p.upstreamHeld = false;
          this.flow(p);
        });
      }
    });
    upstream.once('connect', () => this.flow(p));
  }

  private maybeFlip(p: Pair, chunk: Buffer): Buffer {
    const f = this.flip;
    if (!f || f.offset < p.sent || f.offset >= p.sent + chunk.length) return chunk;
    this.flip = null;
    this.flips++;
    const out = Buffer.from(chunk);
    const i = f.offset - p.sent;
    out[i] = (out[i] as number) ^ f.mask;
    return out;
  }
}
