/**
 * Publishes one source's journal frames to Kafka: topic `topic`, partition 0, in LSN order.
 *
 * Session (states as in ship/tcp: connecting → streaming → backoff …, done, stopped, failed):
 *   1. connect the admin client; create the topic (one partition) unless it exists;
 *   2. resume: read the partition's last message (its LSN, and whether its frame is complete) → resumeLsn;
 *   3. an idempotent producer (acks=all, one request in flight, finite retries) sends batches of frames(resumeLsn): each
 *      frame as one message or several chunks (codec.ts), a batch as one produce request. Every append's base
 *      offset must continue the previous one: anything else means another writer touched the partition, and
 *      the session starts over from step 2;
 *   4. after each batch is acknowledged (in the in-sync replicas), onAck({ lsn, unitLsn }).
 * Any failure ends the session; the next one resumes from what the partition really holds, so a restart or an
 * uncertain send never duplicates or skips a frame (but see README: a dead shipper's last request). A session
 * never abandons a produce request that may still land: kafkajs retries are finite and the request is awaited
 * (also when stopping), because a request retried behind the next session's back would append duplicates.
 */
import { type Admin, type Kafka, Partitioners, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { lastUnitEnd, type WireFrame } from '../frame.ts';
import {
  createKafka,
  ensureTopic,
  type KafkaConnection,
  kafkaFailure,
  PARTITION,
  partitionOffsets,
  readMessageAt,
  type TopicSettings,
} from './client.ts';
import { DEFAULT_CHUNK_BYTES, decodeMessage, encodeFrame, type OutgoingMessage } from './codec.ts';
import { type Ack, AckReporter, batchFrames, SessionLoop, type SessionShipperStatus } from '../session.ts';
import { resumeLsn, resumeUnitLsn } from './resume.ts';

export interface KafkaShipperOptions {
  kafka: KafkaConnection;
  topic: string;
  source: string;
  /** Frames from `fromLsn` on, consecutive; end the iteration when `signal` aborts. */
  frames(fromLsn: bigint, signal: AbortSignal): AsyncIterable<WireFrame>;
  /** Every frame up to `lsn` is in Kafka (acks=all); `unitLsn`: the highest of them that ends a unit. */
  onAck?(ack: Ack): void | Promise<void>;
  /** unitLsn known before this start (the source cursor). Default 0n. */
  ackedUnitLsn?: bigint;
  /** The LSN an empty partition starts with. Default 1n. */
  firstLsn?: bigint;
  log: Logger;
  signal: AbortSignal;
  /** Create the topic when missing (default true), with these settings. */
  createTopic?: boolean;
  topicSettings?: TopicSettings;
  /** Largest payload slice per message. Default 512 KiB. */
  chunkBytes?: number;
  /** Payload bytes per produce request. Default 768 KiB; keep below the topic's max.message.bytes. */
  batchBytes?: number;
  /** Frames per produce request at most. Default 2000. */
  batchFrames?: number;
  /** The resume read (the partition's last message) must finish within this. Default 60 s. */
  requestTimeoutMs?: number;
  /**
   * kafkajs retries per produce request (backoff 0.3 s doubling to 5 s: 6 ≈ 15 s). A request that fails them
   * ends the session; the next one resumes from the partition's end. Stopping waits for the request in flight.
   */
  sendRetries?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
}

export interface KafkaShipper {
  /** Resolves when stopped, or when the frames ended and all are in Kafka; rejects with a fatal error. */
  readonly finished: Promise<void>;
  status(): SessionShipperStatus;
}

export function startKafkaShipper(opts: KafkaShipperOptions): KafkaShipper {
  const s = new KafkaShipperLoop(opts);
  const finished = s.loop.run(() => s.session());
  finished.catch(() => undefined);
  return { finished, status: () => s.status() };
}

class KafkaShipperLoop {
  readonly loop: SessionLoop;
  private readonly o: KafkaShipperOptions;
  private readonly log: Logger;
  private readonly kafka: Kafka;
  private readonly acks: AckReporter;
  private resumedAt = 0n;

  constructor(o: KafkaShipperOptions) {
    this.o = o;
    this.log = o.log.child({ component: 'kafka-shipper', source: o.source, topic: o.topic });
    this.kafka = createKafka(o.kafka, this.log);
    this.acks = new AckReporter(o.onAck, o.ackedUnitLsn ?? 0n, this.log);
    this.loop = new SessionLoop({
      log: this.log,
      signal: o.signal,
      what: 'kafka shipper',
      ...(o.reconnectBaseMs === undefined ? {} : { reconnectBaseMs: o.reconnectBaseMs }),
      ...(o.reconnectMaxMs === undefined ? {} : { reconnectMaxMs: o.reconnectMaxMs }),
    });
  }

  status(): SessionShipperStatus {
    return { ...this.loop.status(this.acks), resumedAt: this.resumedAt };
  }

  private get timeoutMs(): number {
    return this.o.requestTimeoutMs ?? 60_000;
  }

  /** One session: true when the frames ended and all are in Kafka. */
  async session(): Promise<boolean> {
    const o = this.o;
    const admin = this.kafka.admin();
    let producer: Producer | null = null;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const { from, nextOffset, unitLsn } = await this.resume(admin);
      this.resumedAt = from;
      this.acks.resumed(from - 1n, unitLsn);
      producer = this.kafka.producer({
        // Every message names partition 0 itself; an explicit partitioner also silences kafkajs's warning about
        // its v2 default.
        createPartitioner: Partitioners.DefaultPartitioner,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // Finite retries, so that a send always settles: a session ends only once its last request can no longer
        // land, and the next one reads the partition's end after it (an abandoned request that kept retrying
        // could append behind the new session's back: duplicates).
        retry: { retries: o.sendRetries ?? 6, initialRetryTime: 300, maxRetryTime: 5000 },
      });
      await producer.connect();
      this.loop.setState('streaming', { resumeLsn: String(from) });
      return await this.stream(producer, from, nextOffset, stop.signal);
    } catch (err) {
      throw o.signal.aborted ? err : kafkaFailure('kafka shipper', err, { topic: o.topic });
    } finally {
      stop.abort();
      o.signal.removeEventListener('abort', onAbort);
      await producer?.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** The LSN to publish next and the offset it will get (no side effects: the caller applies them). */
  private async resume(admin: Admin): Promise<{ from: bigint; nextOffset: bigint; unitLsn: bigint | null }> {
    const o = this.o;
    await admin.connect();
    if (o.createTopic ?? true) await ensureTopic(admin, o.topic, o.topicSettings ?? {}, this.log);
    const offsets = await partitionOffsets(admin, o.topic);
    let last = null;
    if (offsets.high > offsets.low) {
      const m = await readMessageAt(this.kafka, admin, o.topic, offsets.high - 1n, this.timeoutMs);
      last = decodeMessage(m, o.source, o.topic);
    }
    const from = resumeLsn(offsets, last, o.firstLsn ?? 1n, o.topic);
    this.log.info(
      { high: String(offsets.high), lastLsn: last ? String(last.lsn) : null, resumeLsn: String(from) },
      `kafka shipper: resuming at LSN ${from}`,
    );
    return { from, nextOffset: offsets.high, unitLsn: resumeUnitLsn(last, from) };
  }

  private async stream(producer: Producer, from: bigint, nextOffset: bigint, signal: AbortSignal): Promise<boolean> {
    const o = this.o;
    const chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const maxBytes = o.batchBytes ?? 768 << 10;
    let expected = nextOffset;
    // A frame larger than a batch is split over several requests: send what is ready whenever the batch is full.
    let messages: OutgoingMessage[] = [];
    let bytes = 0;
    let complete: WireFrame[] = [];
    const send = async () => {
      if (messages.length === 0) return;
      // Awaited even when stopping: a request is never abandoned while it may still land.
      const meta = await producer.send({
        topic: o.topic,
        acks: -1,
        messages: messages.map((m) => ({ ...m, partition: PARTITION })),
      });
      const base = meta.find((r) => r.partition === PARTITION)?.baseOffset;
      if (base === undefined || BigInt(base) !== expected) {
        throw new TidemarkError(
          `kafka topic ${o.topic}: our batch was appended at offset ${base}, not ${expected}: another writer ` +
            `appended to partition ${PARTITION} (a second shipper for source ${o.source}?); resuming from its end`,
          { code: 'KAFKA_OTHER_WRITER', retriable: true, context: { topic: o.topic } },
        );
      }
      expected += BigInt(messages.length);
      if (complete.length > 0) {
        this.acks.note((complete[complete.length - 1] as WireFrame).lsn, lastUnitEnd(complete));
      }
      messages = [];
      bytes = 0;
      complete = [];
    };
    for await (const batch of batchFrames(o.frames(from, signal), from, maxBytes, o.batchFrames ?? 2000)) {
      for (const f of batch.frames) {
        for (const m of encodeFrame(o.source, f, chunkBytes)) {
          if (bytes > 0 && bytes + m.value.length > maxBytes) await send();
          messages.push(m);
          bytes += m.value.length;
        }
        complete.push(f);
      }
      await send();
      if (signal.aborted) return false;
    }
    return !signal.aborted;
  }
}
