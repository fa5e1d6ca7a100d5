/**
 * ioredis plumbing shared by the Redis Streams shipper, receiver and trimming: a client that fails fast instead
 * of queueing (the session loops reconnect), the durability check, and stream/group state.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import {
  type DurabilitySettings,
  durabilityProblems,
  flatMap,
  type GroupState,
  lsnOfId,
  parseStreamInfo,
  type StreamInfo,
} from './codec.ts';

/** How to reach the server. */
export type RedisConnection = Pick<
  RedisOptions,
  'host' | 'port' | 'username' | 'password' | 'db' | 'tls' | 'connectTimeout' | 'family'
>;

/** refuse: a server that is not durable is an error (default); warn: log loudly and go on. */
export type DurabilityCheck = 'refuse' | 'warn';

/** The default stream key of a source, and the hash of its groups' unit markers (same hash slot). */
export function streamKeys(source: string): { key: string; markers: string } {
  return { key: `tidemark:{${source}}`, markers: `tidemark:{${source}}:acked` };
}

/**
 * A connected client. No offline queue and no automatic reconnection: a lost connection rejects what is in
 * flight, and the caller's session loop starts over (re-reading where the stream stands).
 */
export async function connectRedis(conn: RedisConnection, what: string): Promise<Redis> {
  const redis = new Redis({
    ...conn,
    protocol: 2,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectionName: what,
  });
  redis.on('error', () => undefined); // reported through the rejected commands
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw redisFailure(`${what}: cannot connect to ${conn.host ?? '127.0.0.1'}:${conn.port ?? 6379}`, err);
  }
  return redis;
}

/** Retriable wrapper for a Redis failure (connection lost, LOADING after a restart…). */
export function redisFailure(what: string, err: unknown): TidemarkError {
  if (err instanceof TidemarkError) return err;
  return new TidemarkError(`${what}: ${(err as Error)?.message ?? String(err)}`, {
    code: 'REDIS_UNAVAILABLE',
    retriable: true,
    cause: err,
  });
}

/** A setting's value; null when the server refuses to say (CONFIG renamed, disabled or not permitted). */
async function configGet(redis: Redis, name: string): Promise<string | null> {
  try {
    const r = (await redis.call('CONFIG', 'GET', name)) as unknown[];
    return r.length >= 2 ? String(r[1]) : null;
  } catch (err) {
    // A refusal is the server's answer; a lost connection or a server still loading its AOF is not.
    const e = err as Error;
    if (e?.name === 'ReplyError' && !/^(LOADING|BUSY|MASTERDOWN|TRYAGAIN)/.test(e.message)) return null;
    throw err;
  }
}

export async function readDurability(redis: Redis): Promise<DurabilitySettings> {
  return {
    appendonly: await configGet(redis, 'appendonly'),
    appendfsync: await configGet(redis, 'appendfsync'),
    maxmemory: await configGet(redis, 'maxmemory'),
    maxmemoryPolicy: await configGet(redis, 'maxmemory-policy'),
  };
}

/**
 * Checks the server's settings (codec.ts durabilityProblems). `refuse`: a non-retriable CONFIG error naming the
 * settings; `warn`: an error-level log line, every session.
 */
export async function checkDurability(redis: Redis, mode: DurabilityCheck, log: Logger, where: string) {
  const problems = durabilityProblems(await readDurability(redis));
  if (problems.length === 0) return;
  const msg =
    `redis at ${where} is not configured for durable shipping: ${problems.join('; ')}. Set appendonly yes and ` +
    `appendfsync always (redis.conf, or CONFIG SET), or accept the risk with durability: 'warn'`;
  if (mode === 'refuse') {
    throw new TidemarkError(msg, { code: 'CONFIG', retriable: false, context: { where } });
  }
  log.error({ problems }, `UNSAFE: ${msg}`);
}

/** XINFO STREAM, or null when the key does not exist. */
export async function streamInfo(redis: Redis, key: string): Promise<StreamInfo | null> {
  try {
    return parseStreamInfo(await redis.call('XINFO', 'STREAM', key), key);
  } catch (err) {
    if (/no such key/i.test((err as Error).message)) return null;
    throw err;
  }
}

/** Every group of the stream with its acknowledgement state and unit marker. */
export async function groupStates(redis: Redis, key: string, markers: string): Promise<GroupState[]> {
  let raw: unknown[];
  try {
    raw = (await redis.call('XINFO', 'GROUPS', key)) as unknown[];
  } catch (err) {
    if (/no such key/i.test((err as Error).message)) return [];
    throw err;
  }
  const marks = flatMap(await redis.call('HGETALL', markers));
  const out: GroupState[] = [];
  for (const g of raw) {
    const m = flatMap(g);
    const name = String(m.get('name'));
    const pending = Number(m.get('pending') ?? 0);
    let lowest: bigint | null = null;
    if (pending > 0) {
      const summary = (await redis.call('XPENDING', key, name)) as unknown[];
      lowest = summary[1] ? lsnOfId(String(summary[1]), key) : null;
    }
    const mark = marks.get(name);
    out.push({
      name,
      pending,
      lastDeliveredLsn: lsnOfId(String(m.get('last-delivered-id') ?? '0-0'), key),
      lowestPendingLsn: lowest,
      unitLsn: mark === undefined ? null : BigInt(String(mark)),
    });
  }
  return out;
}
