/**
 * kafkajs plumbing shared by the Kafka shipper and receiver: the client with its log bridged into pino, the
 * topic (one partition per source), the partition's offsets, and reading the message at an offset.
 */
import { randomUUID } from 'node:crypto';
import kafkajs, { type Admin, type Kafka, type KafkaConfig, type KafkaMessage, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';

/** The one partition a source's frames go to (see README: ordering). */
export const PARTITION = 0;

/** How to reach the cluster: kafkajs options except logging, which goes to the caller's pino logger. */
export type KafkaConnection = Omit<KafkaConfig, 'logLevel' | 'logCreator'>;

/** kafkajs logLevel values (an enum in its typings; plain numbers here). */
const KAFKAJS_ERROR = 1;
const KAFKAJS_WARN = 2;
const KAFKAJS_INFO = 4;

let warningFilter = false;

/**
 * kafkajs 2.2.4, its last release, hands setTimeout `throttledUntil - Date.now()` with no throttle set whenever a
 * request completes, and Node 24 prints "TimeoutNegativeWarning: -1796649245922 is a negative number" on stderr for
 * it at every connection (tulios/kafkajs#1751; Node uses 1 ms, which is what kafkajs meant). Drops that warning
 * when kafkajs's code raised it; every other warning, and this one from anywhere else, is printed as before.
 */
export function dropKafkajsTimeoutWarnings(): void {
  if (warningFilter) return;
  warningFilter = true;
  const emit = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const opt = rest[0];
    const type = typeof opt === 'string' ? opt : (opt as { type?: unknown } | undefined)?.type;
    if (type === 'TimeoutNegativeWarning' && /[\\/]kafkajs[\\/]/.test(new Error().stack ?? '')) return;
    return (emit as (...a: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
}

export function createKafka(conn: KafkaConnection, log: Logger): Kafka {
  dropKafkajsTimeoutWarnings();
  const kafkaLog = log.child({ library: 'kafkajs' });
  return new kafkajs.Kafka({
    requestTimeout: 15_000,
    ...conn,
    logLevel: KAFKAJS_WARN as KafkaConfig['logLevel'],
    // kafkajs logs broker outages at ERROR while it retries them; the shipper and receiver report what matters.
    logCreator:
      () =>
      ({ namespace, level, log: entry }: LogEntry) => {
        const { message, timestamp: _t, ...extra } = entry;
        const obj = { ns: namespace, ...extra };
        // Our producer's retries are finite on purpose, and its sessions resume from the partition (shipper.ts).
        const expected = message.startsWith('Limiting retries for the idempotent producer');
        if ((level === KAFKAJS_ERROR || level === KAFKAJS_WARN) && !expected) kafkaLog.warn(obj, `kafkajs: ${message}`);
        else if (level === KAFKAJS_INFO) kafkaLog.info(obj, `kafkajs: ${message}`);
        else kafkaLog.debug(obj, `kafkajs: ${message}`);
      },
  });
}

/** Retriable wrapper for a kafkajs failure (the cluster may come back). */
export function kafkaFailure(what: string, err: unknown, context: Record<string, string> = {}): TidemarkError {
  if (err instanceof TidemarkError) return err;
  return new TidemarkError(`${what}: ${(err as Error)?.message ?? String(err)}`, {
    code: 'KAFKA_UNAVAILABLE',
    retriable: true,
    cause: err,
    context,
  });
}

export interface TopicSettings {
  /** Replication factor when the shipper creates the topic; -1 (default): the broker's default.replication.factor. */
  replicationFactor?: number;
  /** Topic min.insync.replicas when created; unset: the broker's default. Production: 2 with 3 replicas. */
  minInsyncReplicas?: number;
  /** Topic retention.ms when created. Default -1 (keep forever): trimming is the operator's decision. */
  retentionMs?: number;
  /** Topic max.message.bytes when created; must exceed chunkBytes + headers. Default 2 MiB. */
  maxMessageBytes?: number;
}

/**
 * Creates the topic with one partition if it does not exist. An existing topic is used as it is, but it must
 * not be compacted (compaction would drop frames) and only partition 0 is used.
 */
export async function ensureTopic(admin: Admin, topic: string, s: TopicSettings, log: Logger): Promise<void> {
  const configEntries = [
    { name: 'cleanup.policy', value: 'delete' },
    { name: 'retention.ms', value: String(s.retentionMs ?? -1) },
    { name: 'max.message.bytes', value: String(s.maxMessageBytes ?? 2 << 20) },
    ...(s.minInsyncReplicas === undefined ? [] : [{ name: 'min.insync.replicas', value: String(s.minInsyncReplicas) }]),
  ];
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 1, replicationFactor: s.replicationFactor ?? -1, configEntries }],
  });
  if (created) {
    log.info({ topic }, `kafka: created topic ${topic} (1 partition)`);
    return;
  }
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  const parts = meta.topics[0]?.partitions.length ?? 0;
  if (parts > 1)
    log.warn({ topic, partitions: parts }, `kafka: topic ${topic} has ${parts} partitions; only 0 is used`);
  const cfg = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['cleanup.policy'] }],
  });
  const policy = cfg.resources[0]?.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue ?? '';
  if (policy.includes('compact')) {
    throw new TidemarkError(
      `kafka topic ${topic} has cleanup.policy=${policy}: compaction would drop frames; use cleanup.policy=delete`,
      { code: 'CONFIG', retriable: false, context: { topic } },
    );
  }
}

export interface PartitionOffsets {
  /** First retained offset. */
  readonly low: bigint;
  /** Offset the next message will get (high watermark). */
  readonly high: bigint;
}

export async function partitionOffsets(admin: Admin, topic: string): Promise<PartitionOffsets> {
  const all = await admin.fetchTopicOffsets(topic);
  const p = all.find((o) => o.partition === PARTITION);
  if (!p) throw new TidemarkError(`kafka topic ${topic} has no partition ${PARTITION}`, { code: 'KAFKA_TOPIC' });
  return { low: BigInt(p.low), high: BigInt(p.high) };
}

/** The group's committed offset on partition 0 (a hint only), or null. */
export async function committedOffset(admin: Admin, groupId: string, topic: string): Promise<bigint | null> {
  const r = await admin.fetchOffsets({ groupId, topics: [topic] });
  const o = r[0]?.partitions.find((p) => p.partition === PARTITION)?.offset;
  return o === undefined || o === '-1' || o === '' ? null : BigInt(o);
}

/**
 * The message at `offset` of partition 0. kafkajs reads only through consumer groups, so this joins a throwaway
 * group (never committed; deleted afterwards), seeks and takes the first message. Used once per shipper session.
 */
export async function readMessageAt(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  offset: bigint,
  timeoutMs: number,
): Promise<KafkaMessage> {
  const groupId = `tidemark-probe-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, sessionTimeout: 10_000, retry: { retries: 3 } });
  let timer: NodeJS.Timeout | undefined;
  try {
    const got = new Promise<KafkaMessage>((resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TidemarkError(`kafka: no message at offset ${offset} of ${topic} within ${timeoutMs} ms`, {
              code: 'KAFKA_UNAVAILABLE',
              retriable: true,
            }),
          ),
        timeoutMs,
      );
      consumer.on(consumer.events.CRASH, (e) => reject(kafkaFailure('kafka probe consumer crashed', e.payload.error)));
      const run = async () => {
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch }) => {
            if (batch.partition !== PARTITION) return;
            const m = batch.messages.find((x) => BigInt(x.offset) >= offset);
            if (m) resolve(m);
          },
        });
        consumer.seek({ topic, partition: PARTITION, offset: offset.toString() });
      };
      run().catch(reject);
    });
    return await got;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
}
