/**
 * Trimming a Redis standby's stream from the primary site: every TRIM_EVERY_MS, below what the standby's consumer
 * group acknowledged as part of a complete unit (ship/redis/trim.ts: never below what a group still needs). The
 * journal at the primary keeps everything above the standby's cursor anyway; the stream only needs what the
 * standby has not made durable.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { describeChain } from '../core/errors.ts';
import { withTimeout } from '../ship/session.ts';
import type { RedisStandby } from '../config/config-sites.ts';
import type { Config } from '../config/config.ts';
import { redisConnection, redisKey } from './ship-transports.ts';

const TRIM_EVERY_MS = 30_000;
/** A round that gets no answer within this is abandoned (its connection closed) and tried again later. */
const TRIM_TIMEOUT_MS = 20_000;

export function redisTrimmer(config: Config, s: RedisStandby, log: Logger) {
  let last = Date.now();
  let redis: Redis | null = null;
  let busy = false;
  return {
    /** Trims when TRIM_EVERY_MS passed since the last round and no round is under way. Never throws. */
    async maybe(): Promise<void> {
      if (busy || Date.now() - last < TRIM_EVERY_MS) return;
      busy = true;
      last = Date.now();
      try {
        const { connectRedis, trimSafely } = await import('../ship/redis/index.ts');
        redis ??= await connectRedis(redisConnection(s), `tidemark-trim-${s.name}`);
        const r = await withTimeout(
          trimSafely(redis, { source: config.source.name, key: redisKey(config, s), expectGroups: [s.name], log }),
          TRIM_TIMEOUT_MS,
          `redis trim of standby ${s.name}`,
          'REDIS_UNAVAILABLE',
        );
        if (r.removed > 0) log.debug({ below: String(r.below), removed: r.removed }, 'redis stream trimmed');
      } catch (err) {
        log.warn({ err: describeChain(err) }, 'redis stream trim failed (retried later)');
        redis?.disconnect();
        redis = null;
      } finally {
        busy = false;
      }
    },
    async close(): Promise<void> {
      redis?.disconnect();
      redis = null;
    },
  };
}
