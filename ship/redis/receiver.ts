/**
 * Reads one source's stream for one standby, through the standby's consumer group, and hands frames to
 * `onFrames` in LSN order, continuing the standby's durable LSN.
 *
 * Session (states as in ship/tcp):
 *   1. durableLsn() → the standby's storage is the truth, not the group;
 *   2. the group is created if missing, and its last-delivered ID set to `<durable>-0` (XGROUP SETID), so that
 *      XREADGROUP ">" delivers exactly what follows; pending entries at or below the durable LSN (delivered, made
 *      durable, but the XACK was lost in a crash) are acknowledged; the stream must still hold durable + 1
 *      (checkReadable: trimmed frames are an error, never skipped);
 *   3. XREADGROUP … BLOCK → entries checked (codec.ts: CRC, source, ID) and required to be consecutive (a gap is
 *      fatal) → onFrames → XACK, and the group's unit marker (HSET <key>:acked <group> <unitLsn>) that
 *      trimSafely() trims by.
 * Any failure (connection lost, Redis restarting, onFrames rejected) ends the session; the next one starts again
 * at step 1, after a backoff.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CorruptionError, TidemarkError } from '../../core/errors.ts';
import { lastUnitEnd, type WireFrame } from '../frame.ts';
import { durableMarks, type HeldMarks, SessionLoop, type SessionStatus } from '../session.ts';
import { connectRedis, type RedisConnection, redisFailure, streamInfo, streamKeys } from './client.ts';
import { checkReadable, decodeEntry, entryId, parseReadReply } from './codec.ts';

export interface RedisReceiverOptions {
  redis: RedisConnection;
  source: string;
  /** Consumer group: one per standby (e.g. its site name). */
  group: string;
  /** Consumer name within the group. Default "receiver". */
  consumer?: string;
  /** Stream key; default `tidemark:{<source>}`. Markers go to `<key>:acked`. */
  key?: string;
  durableLsn(): Promise<bigint>;
  onFrames(source: string, frames: readonly WireFrame[]): Promise<void>;
  log: Logger;
  signal: AbortSignal;
  /** Entries per XREADGROUP. Default 1000. */
  maxFramesPerCall?: number;
  /** XREADGROUP BLOCK. Default 1000 ms. */
  blockMs?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
}

export interface RedisReceiver {
  readonly finished: Promise<void>;
  status(): SessionStatus;
}

export function startRedisReceiver(opts: RedisReceiverOptions): RedisReceiver {
  const r = new RedisReceiverLoop(opts);
  const finished = r.loop.run(() => r.session());
  finished.catch(() => undefined);
  return { finished, status: () => r.status() };
}

class RedisReceiverLoop {
  readonly loop: SessionLoop;
  private readonly o: RedisReceiverOptions;
  private readonly log: Logger;
  private readonly key: string;
  private readonly markers: string;
  private held: HeldMarks = { lsn: 0n, unitLsn: 0n, lastAckAt: null };

  constructor(o: RedisReceiverOptions) {
    this.o = o;
    this.key = o.key ?? streamKeys(o.source).key;
    this.markers = `${this.key}:acked`;
    this.log = o.log.child({ component: 'redis-receiver', source: o.source, stream: this.key, group: o.group });
    this.loop = new SessionLoop({
      log: this.log,
      signal: o.signal,
      what: 'redis receiver',
      ...(o.reconnectBaseMs === undefined ? {} : { reconnectBaseMs: o.reconnectBaseMs }),
      ...(o.reconnectMaxMs === undefined ? {} : { reconnectMaxMs: o.reconnectMaxMs }),
    });
  }

  status(): SessionStatus {
    return this.loop.status(this.held);
  }

  async session(): Promise<boolean> {
    const o = this.o;
    let redis: Redis | null = null;
    const onAbort = () => redis?.disconnect();
    o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const durable = await o.durableLsn();
      this.held = { ...this.held, lsn: durable };
      redis = await connectRedis(o.redis, `tidemark-receiver-${o.group}`);
      if (o.signal.aborted) return false;
      await this.position(redis, durable);
      this.loop.setState('streaming', { durableLsn: String(durable) });
      await this.stream(redis, durable);
      return false;
    } catch (err) {
      if (o.signal.aborted) return false;
      throw redisFailure('redis receiver', err);
    } finally {
      o.signal.removeEventListener('abort', onAbort);
      redis?.disconnect();
    }
  }

  /** Group at `<durable>-0`, stale pending entries acknowledged, durable + 1 still in the stream. */
  private async position(redis: Redis, durable: bigint): Promise<void> {
    const { key, o } = this;
    const id = entryId(durable);
    try {
      await redis.call('XGROUP', 'CREATE', key, o.group, id, 'MKSTREAM');
      this.log.info({ at: id }, `redis receiver: created group ${o.group}`);
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
      await redis.call('XGROUP', 'SETID', key, o.group, id);
    }
    for (;;) {
      const pending = (await redis.call('XPENDING', key, o.group, '-', id, 1000)) as [string, ...unknown[]][];
      if (pending.length === 0) break;
      await redis.call('XACK', key, o.group, ...pending.map((p) => String(p[0])));
    }
    const info = await streamInfo(redis, key);
    if (info) checkReadable(info, durable, key);
    this.log.info(
      { durableLsn: String(durable), streamLast: info ? String(info.lastLsn) : null },
      `redis receiver: reading from LSN ${durable + 1n}`,
    );
  }

  private async stream(redis: Redis, durable: bigint): Promise<void> {
    const { key, o } = this;
    let next = durable + 1n;
    const count = o.maxFramesPerCall ?? 1000;
    const block = o.blockMs ?? 1000;
    const consumer = o.consumer ?? 'receiver';
    while (!o.signal.aborted) {
      const reply = await redis.callBuffer(
        'XREADGROUP',
        'GROUP',
        o.group,
        consumer,
        'COUNT',
        count,
        'BLOCK',
        block,
        'STREAMS',
        key,
        '>',
      );
      const entries = parseReadReply(reply, key);
      if (entries.length === 0) continue;
      const frames: WireFrame[] = [];
      let failure: TidemarkError | null = null;
      for (const e of entries) {
        try {
          const f = decodeEntry(e, o.source, key);
          if (f.lsn !== next) {
            throw new TidemarkError(
              `redis stream ${key}: entry LSN ${f.lsn} where ${next} was due: frames are missing; nothing after ` +
                `it is delivered`,
              { code: 'SHIP_GAP', retriable: false, context: { key, expected: next, found: f.lsn } },
            );
          }
          frames.push(f);
          next++;
        } catch (err) {
          failure = err instanceof TidemarkError ? err : new CorruptionError(String(err));
          break;
        }
      }
      if (frames.length > 0) await this.deliver(redis, frames);
      if (failure) throw failure;
    }
  }

  /** onFrames, then XACK and the unit marker. */
  private async deliver(redis: Redis, frames: WireFrame[]): Promise<void> {
    const { key, o } = this;
    await o.onFrames(o.source, frames);
    const last = (frames[frames.length - 1] as WireFrame).lsn;
    this.held = durableMarks(this.held, frames);
    const unit = lastUnitEnd(frames);
    const p = redis.multi();
    p.call('XACK', key, o.group, ...frames.map((f) => entryId(f.lsn)));
    if (unit !== null) p.call('HSET', this.markers, o.group, unit.toString());
    const r = await p.exec();
    const err = r?.find((x) => x[0])?.[0];
    if (err || !r)
      throw redisFailure(`redis receiver: XACK up to LSN ${last}`, err ?? new Error('transaction aborted'));
  }
}
