/**
 * Publishes one source's journal frames to a Redis stream, each frame an entry with ID `<lsn>-0` (codec.ts).
 *
 * Session (states as in ship/tcp: connecting → streaming → backoff …, done, stopped, failed):
 *   1. connect; check the server's durability settings (refused unless appendonly yes + appendfsync always and
 *      no eviction, or only logged with durability: 'warn');
 *   2. resume at the stream's last-generated-id + 1 (XINFO STREAM: it survives trimming), or firstLsn for a
 *      stream never written;
 *   3. XADD batches of frames(resume) in one pipeline; with appendfsync always Redis replies only once the AOF
 *      is fsynced, so a reply is an acknowledgement: onAck({ lsn, unitLsn }).
 * XADD refuses an ID at or below the stream's top, so a frame can never be added twice, and because every
 * writer continues from the top, the stream never has a gap. Any failed XADD ends the session (the next one
 * re-reads the top): a second shipper of the same source, a restart of Redis, a full memory.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { lastUnitEnd, type WireFrame } from '../frame.ts';
import { type Ack, AckReporter, batchFrames, SessionLoop, type SessionShipperStatus } from '../session.ts';
import {
  checkDurability,
  connectRedis,
  type DurabilityCheck,
  type RedisConnection,
  redisFailure,
  streamInfo,
  streamKeys,
} from './client.ts';
import { xaddArgs } from './codec.ts';

export interface RedisShipperOptions {
  redis: RedisConnection;
  source: string;
  /** Stream key; default `tidemark:{<source>}`. */
  key?: string;
  frames(fromLsn: bigint, signal: AbortSignal): AsyncIterable<WireFrame>;
  /** Every frame up to `lsn` is in the stream (fsynced); `unitLsn`: the highest of them that ends a unit. */
  onAck?(ack: Ack): void | Promise<void>;
  ackedUnitLsn?: bigint;
  /** The LSN a stream never written starts with. Default 1n. */
  firstLsn?: bigint;
  /** What to do with a server that is not configured durably. Default 'refuse'. */
  durability?: DurabilityCheck;
  log: Logger;
  signal: AbortSignal;
  /** Payload bytes per pipeline. Default 1 MiB. */
  batchBytes?: number;
  /** Frames per pipeline. Default 1000. */
  batchFrames?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
}

export interface RedisShipper {
  readonly finished: Promise<void>;
  status(): SessionShipperStatus;
}

export function startRedisShipper(opts: RedisShipperOptions): RedisShipper {
  const s = new RedisShipperLoop(opts);
  const finished = s.loop.run(() => s.session());
  finished.catch(() => undefined);
  return { finished, status: () => s.status() };
}

class RedisShipperLoop {
  readonly loop: SessionLoop;
  private readonly o: RedisShipperOptions;
  private readonly log: Logger;
  private readonly key: string;
  private readonly acks: AckReporter;
  private resumedAt = 0n;

  constructor(o: RedisShipperOptions) {
    this.o = o;
    this.key = o.key ?? streamKeys(o.source).key;
    this.log = o.log.child({ component: 'redis-shipper', source: o.source, stream: this.key });
    this.acks = new AckReporter(o.onAck, o.ackedUnitLsn ?? 0n, this.log);
    this.loop = new SessionLoop({
      log: this.log,
      signal: o.signal,
      what: 'redis shipper',
      ...(o.reconnectBaseMs === undefined ? {} : { reconnectBaseMs: o.reconnectBaseMs }),
      ...(o.reconnectMaxMs === undefined ? {} : { reconnectMaxMs: o.reconnectMaxMs }),
    });
  }

  status(): SessionShipperStatus {
    return { ...this.loop.status(this.acks), resumedAt: this.resumedAt };
  }

  async session(): Promise<boolean> {
    const o = this.o;
    const where = `${o.redis.host ?? '127.0.0.1'}:${o.redis.port ?? 6379}`;
    let redis: Redis | null = null;
    const stop = new AbortController();
    const onAbort = () => {
      stop.abort();
      redis?.disconnect();
    };
    o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      redis = await connectRedis(o.redis, `tidemark-shipper-${o.source}`);
      await checkDurability(redis, o.durability ?? 'refuse', this.log, where);
      const info = await streamInfo(redis, this.key);
      const from = info && info.lastLsn > 0n ? info.lastLsn + 1n : (o.firstLsn ?? 1n);
      this.resumedAt = from;
      this.acks.resumed(from - 1n, info?.lastUnitLsn ?? null);
      this.loop.setState('streaming', { resumeLsn: String(from) });
      this.log.info({ resumeLsn: String(from) }, `redis shipper: resuming at LSN ${from}`);
      for await (const batch of batchFrames(
        o.frames(from, stop.signal),
        from,
        o.batchBytes ?? 1 << 20,
        o.batchFrames ?? 1000,
      )) {
        await this.add(redis, batch.frames);
        if (stop.signal.aborted) return false;
      }
      return !stop.signal.aborted;
    } catch (err) {
      if (o.signal.aborted) return false;
      throw redisFailure('redis shipper', err);
    } finally {
      stop.abort();
      o.signal.removeEventListener('abort', onAbort);
      redis?.disconnect();
    }
  }

  private async add(redis: Redis, frames: readonly WireFrame[]): Promise<void> {
    const p = redis.pipeline();
    for (const f of frames) p.xadd(this.key, ...(xaddArgs(this.o.source, f) as [string, ...(string | Buffer)[]]));
    const results = (await p.exec()) ?? [];
    for (let i = 0; i < frames.length; i++) {
      const err = results[i]?.[0];
      if (err || results[i] === undefined) {
        const lsn = (frames[i] as WireFrame).lsn;
        const other = err && /equal or smaller/i.test(err.message);
        throw redisFailure(
          other
            ? `redis stream ${this.key}: XADD of LSN ${lsn} refused, the stream is already past it: another ` +
                `shipper of source ${this.o.source} writes here? resuming from the stream's top`
            : `redis stream ${this.key}: XADD of LSN ${lsn} failed`,
          err ?? new Error('no reply'),
        );
      }
    }
    this.acks.note((frames[frames.length - 1] as WireFrame).lsn, lastUnitEnd(frames));
  }
}
