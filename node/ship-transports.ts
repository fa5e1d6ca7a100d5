/**
 * One standby's transport, both ends, behind one shape, so the ship and receive loops do not care which:
 *
 *   startTransportShipper   the primary end: tcp (ship/tcp startShipper), kafka, redis
 *   startTransportReceiver  the standby end: tcp (ShipReceiver + MirrorSink), kafka and redis consumers into a
 *                           MirrorSink
 *
 * Kafka and Redis carry frames, not the journal's identity: their mirrors are tied to the topic or stream
 * (`kafka:<topic>`, `redis:<key>`) instead, and a journal replaced at the primary needs a new topic or stream.
 */
import type { Logger } from 'pino';
import { TidemarkError } from '../core/errors.ts';
import type { LinkStatus } from '../ship/link-status.ts';
import { journalSource, MirrorSink, notingCommitTimes, sessionFrames } from '../ship/mirror.ts';
import { type LinkSecurity, loadSiteTls, ShipReceiver, startShipper } from '../ship/tcp/index.ts';
import type { KafkaStandby, RedisStandby, StandbyConfig } from '../config/config-sites.ts';
import { hostOf, portOf } from '../config/config-sites.ts';
import type { Config } from '../config/config.ts';

/** One running end, whatever the transport; its status is the one link status (ship/link-status.ts). */
export interface Running {
  /** Settles when the end stops: resolves when stopped, rejects with a fatal error. */
  readonly finished: Promise<void>;
  status(): LinkStatus;
}

export const kafkaTopic = (config: Config, s: KafkaStandby): string =>
  s.topic ?? `tidemark.${config.source.name}.${s.name}`;
export const redisKey = (config: Config, s: RedisStandby): string =>
  s.key ?? `tidemark:{${config.source.name}.${s.name}}`;

/** TLS material of `site` from ship.certs_dir, or plaintext when so configured. */
export async function linkSecurity(config: Config, site: string, log: Logger): Promise<LinkSecurity> {
  if (config.ship.plaintext) return 'plaintext';
  const dir = config.ship.certs_dir;
  if (dir === undefined) throw new TidemarkError('ship.certs_dir is not set', { code: 'CONFIG' });
  return loadSiteTls(dir, site, log);
}

export function redisConnection(s: RedisStandby) {
  const password = s.password_env === undefined ? undefined : process.env[s.password_env];
  if (s.password_env !== undefined && password === undefined) {
    throw new TidemarkError(`standbys ${s.name}: environment variable ${s.password_env} is not set`, {
      code: 'CONFIG',
    });
  }
  return {
    host: hostOf(s.address),
    port: portOf(s.address),
    db: s.db,
    connectTimeout: 10_000,
    ...(password === undefined ? {} : { password }),
  };
}

export interface ShipperStart {
  config: Config;
  standby: StandbyConfig;
  /** unitLsn the standby acknowledged before (its cursor). */
  ackedUnitLsn: bigint;
  /** `commitTimeUs`: the source commit time of the unit ending at unitLsn, when this session shipped it. */
  onAck(ack: { lsn: bigint; unitLsn: bigint; commitTimeUs: bigint | null }): void | Promise<void>;
  /** tcp: bytes arrived from the standby (node/link-contact.ts). */
  onHeard?(): void;
  log: Logger;
  signal: AbortSignal;
}

/**
 * Reconnect backoff ceiling of every transport end: a standby that comes back is reached within this (the
 * transports' own default, 30 s, is meant for their library use; a site link is worth a cheap retry).
 */
const RECONNECT_MAX_MS = 5000;

export async function startTransportShipper(o: ShipperStart): Promise<Running> {
  const { config, standby: s } = o;
  const times = new Map<bigint, bigint>();
  const src = notingCommitTimes(await journalSource(config.journal.dir), times);
  const onAck = (a: { lsn: bigint; unitLsn: bigint }) => o.onAck({ ...a, commitTimeUs: times.get(a.unitLsn) ?? null });
  const common = {
    source: config.source.name,
    ackedUnitLsn: o.ackedUnitLsn,
    onAck,
    log: o.log,
    reconnectMaxMs: RECONNECT_MAX_MS,
  };
  if (s.transport === 'tcp') {
    return startShipper({
      ...src,
      ...common,
      signal: o.signal,
      host: hostOf(s.address),
      port: portOf(s.address),
      security: await linkSecurity(config, config.site, o.log),
      site: config.site,
      targetSite: s.name,
      ...(o.onHeard ? { onHeard: o.onHeard } : {}),
      heartbeatMs: config.ship.heartbeat_ms,
      batchBytes: config.ship.batch_bytes,
      windowBytes: config.ship.window_bytes,
      ...(config.ship.connect_timeout_ms === undefined ? {} : { connectTimeoutMs: config.ship.connect_timeout_ms }),
    });
  }
  const frames = sessionFrames(src);
  // Kafka's and Redis's clients load only for a link that uses them (~50 ms of start-up for every other run).
  return s.transport === 'kafka'
    ? (await import('../ship/kafka/index.ts')).startKafkaShipper({
        ...common,
        frames,
        signal: o.signal,
        kafka: { brokers: s.brokers, clientId: s.client_id },
        topic: kafkaTopic(config, s),
        batchBytes: Math.min(config.ship.batch_bytes, 768 << 10),
      })
    : (await import('../ship/redis/index.ts')).startRedisShipper({
        ...common,
        frames,
        signal: o.signal,
        redis: redisConnection(s),
        key: redisKey(config, s),
        durability: s.durability,
        batchBytes: config.ship.batch_bytes,
      });
}

export interface ReceiverStart {
  config: Config;
  standby: StandbyConfig;
  log: Logger;
  signal: AbortSignal;
}

/** The standby end: the mirror journal `<journal_dir>/<source>` fed by the standby's transport. */
export async function startTransportReceiver(o: ReceiverStart): Promise<Running & { sink: MirrorSink }> {
  const { config, standby: s, log, signal } = o;
  const source = config.source.name;
  const sink = new MirrorSink({ root: s.journal_dir, sources: [source], log });
  if (s.transport === 'tcp') {
    const listen = s.listen ?? `0.0.0.0:${portOf(s.address)}`;
    const receiver = await ShipReceiver.listen({
      ...sink.callbacks(),
      host: hostOf(listen),
      port: portOf(listen),
      security: await linkSecurity(config, s.name, log),
      heartbeatMs: config.ship.heartbeat_ms,
      log: log.child({ component: 'receiver' }),
    });
    log.info({ listen }, `standby ${s.name}: receiver listening`);
    const finished = new Promise<void>((resolve) => {
      signal.addEventListener(
        'abort',
        () => {
          void receiver
            .close()
            .then(() => sink.close())
            .then(resolve, resolve);
        },
        { once: true },
      );
    });
    let acked = 0n;
    return {
      sink,
      finished,
      status: () => {
        const m = sink.status().find((x) => x.source === source);
        if (m) acked = m.syncedLsn;
        return {
          // "streaming" while the shipper's session is alive (it dies after 3 silent heartbeats).
          state: receiver.sources.includes(source) ? 'streaming' : 'listening',
          ackedLsn: acked,
          ackedUnitLsn: m?.durableLsn ?? 0n,
          lastAckAt: null,
          connects: 0,
          lastError: null,
        };
      },
    };
  }
  // Brokers: open the mirror as a HELLO would, then feed it. Its synced LSN is where every session resumes.
  const journalId = s.transport === 'kafka' ? `kafka:${kafkaTopic(config, s)}` : `redis:${redisKey(config, s)}`;
  const durableLsn = () => sink.resumePoint({ source, site: config.site, journalId, what: `standby ${s.name}` });
  const common = {
    source,
    durableLsn,
    onFrames: sink.onFrames.bind(sink),
    log,
    signal,
    reconnectMaxMs: RECONNECT_MAX_MS,
  };
  const running =
    s.transport === 'kafka'
      ? (await import('../ship/kafka/index.ts')).startKafkaReceiver({
          ...common,
          kafka: { brokers: s.brokers, clientId: s.client_id },
          topic: kafkaTopic(config, s),
          groupId: `tidemark.${s.name}.${source}`,
        })
      : (await import('../ship/redis/index.ts')).startRedisReceiver({
          ...common,
          redis: redisConnection(s),
          key: redisKey(config, s),
          group: s.name,
        });
  const finished = running.finished.finally(() => sink.close());
  return {
    sink,
    finished,
    status: () => ({ ...running.status(), ackedUnitLsn: sink.status()[0]?.durableLsn ?? 0n }),
  };
}
