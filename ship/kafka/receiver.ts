/**
 * Reads one source's frames from Kafka (topic, partition 0) for one standby and hands them to `onFrames` in LSN
 * order, each exactly once per session, continuing the standby's durable LSN.
 *
 * Session (states as in ship/tcp):
 *   1. durableLsn() → the sequencer starts at durable + 1 (the standby's storage is the truth, not Kafka);
 *   2. a consumer in group `groupId` (one group per standby and source) joins and seeks to startOffset(): the
 *      group's committed offset when it has one (a hint), else the partition's start or end;
 *   3. every message is decoded and checked (codec.ts) and fed to the sequencer (sequencer.ts), which delivers
 *      the next frame, skips what is already durable, asks to seek back when it landed too far, and stops on a
 *      gap or a checksum failure (fatal: nothing after it is delivered);
 *   4. frames go to onFrames in batches; once it resolves (durable), their offsets are resolved and committed,
 *      as a hint for the next start and for operators' lag tools.
 * Any failure (broker gone, onFrames rejected, consumer crash) ends the session; the next one starts again at
 * step 1, after a backoff.
 */
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { sleep, TidemarkError } from '../../core/errors.ts';
import type { WireFrame } from '../frame.ts';
import {
  committedOffset,
  createKafka,
  type KafkaConnection,
  kafkaFailure,
  PARTITION,
  partitionOffsets,
} from './client.ts';
import { decodeMessage } from './codec.ts';
import { durableMarks, type HeldMarks, SessionLoop, type SessionStatus, withTimeout } from '../session.ts';
import { startOffset } from './resume.ts';
import { FrameSequencer, type Step } from './sequencer.ts';

export interface KafkaReceiverOptions {
  kafka: KafkaConnection;
  topic: string;
  source: string;
  /** Consumer group: one per standby and source, e.g. `tidemark.<standby site>.<source>`. */
  groupId: string;
  /** The LSN durably stored for this source (0n: nothing yet). Called at the start of every session. */
  durableLsn(): Promise<bigint>;
  /** Consecutive frames continuing the durable LSN; resolve once they are durable. Rejecting ends the session. */
  onFrames(source: string, frames: readonly WireFrame[]): Promise<void>;
  log: Logger;
  signal: AbortSignal;
  /** At most this many frames per onFrames call. Default 10 000. */
  maxFramesPerCall?: number;
  /** Group session timeout (the broker allows 6 s … 30 min by default). Default 10 s. */
  sessionTimeoutMs?: number;
  /** Connecting and joining must finish within this. Default 60 s. */
  requestTimeoutMs?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
}

/** ackedLsn: the highest LSN onFrames made durable (or the durable LSN a session started from). */
export interface KafkaReceiverStatus extends SessionStatus {
  /** Messages skipped because their frame was already durable (re-reads, duplicates). */
  readonly skipped: number;
  readonly seeks: number;
}

export interface KafkaReceiver {
  /** Resolves when stopped; rejects with a fatal error (a gap, damage, frames deleted by retention). */
  readonly finished: Promise<void>;
  status(): KafkaReceiverStatus;
}

export function startKafkaReceiver(opts: KafkaReceiverOptions): KafkaReceiver {
  const r = new KafkaReceiverLoop(opts);
  const finished = r.loop.run(() => r.session());
  finished.catch(() => undefined);
  return { finished, status: () => r.status() };
}

class KafkaReceiverLoop {
  readonly loop: SessionLoop;
  private readonly o: KafkaReceiverOptions;
  private readonly log: Logger;
  private readonly kafka: Kafka;
  private held: HeldMarks = { lsn: 0n, unitLsn: 0n, lastAckAt: null };
  private skipped = 0;
  private seeks = 0;

  constructor(o: KafkaReceiverOptions) {
    this.o = o;
    this.log = o.log.child({ component: 'kafka-receiver', source: o.source, topic: o.topic, group: o.groupId });
    this.kafka = createKafka(o.kafka, this.log);
    this.loop = new SessionLoop({
      log: this.log,
      signal: o.signal,
      what: 'kafka receiver',
      ...(o.reconnectBaseMs === undefined ? {} : { reconnectBaseMs: o.reconnectBaseMs }),
      ...(o.reconnectMaxMs === undefined ? {} : { reconnectMaxMs: o.reconnectMaxMs }),
    });
  }

  status(): KafkaReceiverStatus {
    return { ...this.loop.status(this.held), skipped: this.skipped, seeks: this.seeks };
  }

  /** Runs until the signal aborts (false) or the session fails (throws). */
  async session(): Promise<boolean> {
    const o = this.o;
    const timeoutMs = o.requestTimeoutMs ?? 60_000;
    const admin = this.kafka.admin();
    let consumer: Consumer | null = null;
    const over = new AbortController();
    let fail: (err: unknown) => void = () => undefined;
    const ended = new Promise<void>((resolve, reject) => {
      fail = reject;
      if (o.signal.aborted) resolve();
      o.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    ended.catch(() => undefined); // a late failure after the session ended must not go unhandled
    try {
      const durable = await o.durableLsn();
      this.held = { ...this.held, lsn: durable };
      const seq = new FrameSequencer(durable);
      await withTimeout(admin.connect(), timeoutMs, 'kafka admin connect', 'KAFKA_UNAVAILABLE');
      const offsets = await partitionOffsets(admin, o.topic);
      const hint = await committedOffset(admin, o.groupId, o.topic);
      const start = startOffset(offsets, hint, durable);
      const c = this.kafka.consumer({
        groupId: o.groupId,
        sessionTimeout: o.sessionTimeoutMs ?? 10_000,
        rebalanceTimeout: o.sessionTimeoutMs ?? 10_000,
        heartbeatInterval: 1000,
        maxWaitTimeInMs: 200,
        allowAutoTopicCreation: false,
        // A crash ends this session; the session loop decides what follows.
        retry: { retries: 5, restartOnFailure: async () => false },
      });
      consumer = c;
      c.on(c.events.CRASH, (e) => fail(kafkaFailure('kafka consumer crashed', e.payload.error)));
      c.on(c.events.GROUP_JOIN, () => seq.land());
      await withTimeout(c.connect(), timeoutMs, 'kafka consumer connect', 'KAFKA_UNAVAILABLE');
      await c.subscribe({ topic: o.topic, fromBeginning: true });
      await c.run({
        autoCommit: true,
        autoCommitInterval: 1000,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (p) => this.eachBatch(p, c, admin, seq).catch((err) => this.onBatchError(err, fail, over.signal)),
      });
      c.seek({ topic: o.topic, partition: PARTITION, offset: start.toString() });
      this.loop.setState('streaming', { durableLsn: String(durable), startOffset: String(start) });
      this.log.info(
        { durableLsn: String(durable), startOffset: String(start), hint: hint === null ? null : String(hint) },
        `kafka receiver: reading from LSN ${durable + 1n}`,
      );
      await ended;
      return false;
    } catch (err) {
      if (o.signal.aborted) return false;
      throw kafkaFailure('kafka receiver', err, { topic: o.topic });
    } finally {
      over.abort();
      await consumer?.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Errors inside eachBatch end the session: throwing them would let kafkajs retry the batch. */
  private async onBatchError(err: unknown, fail: (err: unknown) => void, over: AbortSignal): Promise<void> {
    fail(err instanceof TidemarkError ? err : kafkaFailure('kafka receiver', err));
    // Hold the batch until the session tears the consumer down: nothing more is delivered meanwhile.
    await sleep(60_000, over);
  }

  private async eachBatch(p: EachBatchPayload, c: Consumer, admin: Admin, seq: FrameSequencer): Promise<void> {
    const o = this.o;
    const { batch } = p;
    if (batch.partition !== PARTITION) return;
    const max = o.maxFramesPerCall ?? 10_000;
    let frames: WireFrame[] = [];
    let resolvable: string | null = null;
    const deliver = async () => {
      if (frames.length > 0) {
        const out = frames;
        frames = [];
        await o.onFrames(o.source, out);
        this.held = durableMarks(this.held, out);
      }
      if (resolvable !== null) p.resolveOffset(resolvable);
      resolvable = null;
      await p.heartbeat();
    };
    for (const m of batch.messages) {
      if (!p.isRunning() || p.isStale() || o.signal.aborted) break;
      let step: Step;
      try {
        step = seq.push(decodeMessage(m, o.source, o.topic));
      } catch (err) {
        // Damage or a gap: what came before it is delivered, nothing at or after it.
        await deliver();
        throw err;
      }
      if (step.kind === 'seek') {
        await deliver();
        const { low } = await partitionOffsets(admin, o.topic);
        if (step.offset < low) throw this.gone(seq.next, low);
        this.seeks++;
        this.log.info(
          { landedAt: m.offset, seekTo: String(step.offset), nextLsn: String(seq.next) },
          'kafka receiver: landed past the next frame; seeking back',
        );
        c.seek({ topic: o.topic, partition: PARTITION, offset: step.offset.toString() });
        return;
      }
      if (step.kind === 'skip') this.skipped++;
      if (step.kind === 'frame') frames.push(step.frame);
      if (seq.heldParts === 0) resolvable = m.offset;
      if (frames.length >= max) await deliver();
    }
    await deliver();
  }

  private gone(next: bigint, low: bigint): TidemarkError {
    return new TidemarkError(
      `kafka topic ${this.o.topic}: LSN ${next} is no longer in the topic (its first retained offset is ${low}: ` +
        `retention deleted what this standby still needs); rebaseline the standby or lengthen retention.ms`,
      { code: 'SHIP_GONE', retriable: false, context: { topic: this.o.topic, nextLsn: next, low } },
    );
  }
}
