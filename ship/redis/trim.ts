/**
 * Trimming a source's stream without removing anything a standby still needs: `trimSafely()` reads every
 * group's state (XINFO GROUPS, XPENDING, the groups' unit markers) and trims (XTRIM MINID) only below the lowest
 * LSN that every group acknowledged as part of a complete unit (codec.ts trimPoint). A group that acknowledged
 * nothing, or a group named in `expectGroups` that does not exist yet, holds everything.
 *
 * A standby that is gone for good holds the stream forever: remove its group (XGROUP DESTROY <key> <group>, and
 * HDEL <key>:acked <group>) to release it. Redis memory is the cap here: watch the stream's length.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { groupStates, redisFailure, streamKeys } from './client.ts';
import { entryId, type GroupState, trimPoint } from './codec.ts';

export interface TrimOptions {
  source: string;
  /** Stream key; default `tidemark:{<source>}`. */
  key?: string;
  /** Groups that must exist before anything is trimmed (the configured standbys). */
  expectGroups?: readonly string[];
  /** XTRIM MINID ~ (whole macro nodes: cheaper, may keep a few more entries) instead of exact. Default false. */
  approximate?: boolean;
  log?: Logger;
}

export interface TrimResult {
  /** Entries below this LSN were trimmed (null: nothing could be). */
  readonly below: bigint | null;
  readonly removed: number;
  /** Why nothing (more) could be trimmed, when below is null. */
  readonly reason: string | null;
  readonly groups: readonly GroupState[];
}

export async function trimSafely(redis: Redis, opts: TrimOptions): Promise<TrimResult> {
  const key = opts.key ?? streamKeys(opts.source).key;
  try {
    const groups = await groupStates(redis, key, `${key}:acked`);
    const point = trimPoint(groups, opts.expectGroups ?? []);
    if ('none' in point) {
      opts.log?.info({ stream: key, reason: point.none }, `redis trim: nothing trimmed: ${point.none}`);
      return { below: null, removed: 0, reason: point.none, groups };
    }
    const removed = Number(await redis.call('XTRIM', key, 'MINID', opts.approximate ? '~' : '=', entryId(point.below)));
    opts.log?.info({ stream: key, below: String(point.below), removed }, `redis trim: removed ${removed} entries`);
    return { below: point.below, removed, reason: null, groups };
  } catch (err) {
    throw redisFailure(`redis trim of ${key}`, err);
  }
}
