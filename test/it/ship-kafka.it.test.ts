/**
 * The Kafka ship backend against a real Kafka 3.9 broker (single-node KRaft, compose/local/kafka.sh): frames from
 * a real journal through the shipper, the topic and the receiver into a standby store, checked frame by frame.
 * Faults: the broker SIGKILLed and restarted mid-stream, a shipper restarted, a standby whose durable LSN went
 * back, a gap and a damaged message in the topic.
 */
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, ensureTopic } from '../../ship/kafka/client.ts';
import { encodeFrame } from '../../ship/kafka/codec.ts';
import { type KafkaReceiver, startKafkaReceiver } from '../../ship/kafka/receiver.ts';
import { type KafkaShipper, startKafkaShipper } from '../../ship/kafka/shipper.ts';
import type { WireFrame } from '../../ship/frame.ts';
import { duplicateLsns, type KafkaBroker, killKafka, readTopic, startKafka, stopKafka } from '../fixtures/kafka.ts';
import { captureLog, frameDiff, MemoryStore, until } from '../fixtures/ship-link.ts';
import { entriesOf, SourceJournal } from '../fixtures/ship-journal.ts';

const NAME = 'ship-kafka';
const PORT = 3531;
// TIDEMARK_TEST_LOG=<file>: every log line (kafkajs's too) to that file, for a failure's post-mortem.
const logFile = process.env['TIDEMARK_TEST_LOG'];
const log = logFile ? pino({ level: 'debug' }, pino.destination({ dest: logFile, sync: true })) : captureLog().log;
let broker: KafkaBroker;

beforeAll(() => {
  const t0 = Date.now();
  broker = startKafka(NAME, PORT, { fresh: true });
  console.log(`kafka broker (install if needed + format + start): ${Date.now() - t0} ms`);
}, 600_000);
afterAll(() => {
  stopKafka(NAME);
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function source(): Promise<SourceJournal> {
  const s = await SourceJournal.create();
  cleanups.push(() => s.close());
  return s;
}

/** `impatient`: give up a produce request after about a second (client and send retries 1) instead of ~15 s. */
function shipper(topic: string, src: SourceJournal, impatient = false): KafkaShipper & { stop(): Promise<void> } {
  const ac = new AbortController();
  const s = startKafkaShipper({
    kafka: {
      brokers: broker.brokers,
      clientId: 'tm-test-shipper',
      ...(impatient ? { retry: { retries: 1, initialRetryTime: 200 } } : {}),
    },
    topic,
    source: 'src',
    frames: src.frames,
    log,
    signal: ac.signal,
    chunkBytes: 64 << 10,
    batchBytes: 256 << 10,
    reconnectBaseMs: 200,
    reconnectMaxMs: 2000,
    requestTimeoutMs: 30_000,
    ...(impatient ? { sendRetries: 1 } : {}),
  });
  const stop = async () => {
    ac.abort();
    await s.finished;
  };
  cleanups.push(stop);
  return { ...s, stop };
}

function receiver(topic: string, group: string, store: MemoryStore): KafkaReceiver & { stop(): Promise<void> } {
  const ac = new AbortController();
  const r = startKafkaReceiver({
    kafka: { brokers: broker.brokers, clientId: 'tm-test-receiver' },
    topic,
    source: 'src',
    groupId: group,
    durableLsn: async () => store.durable,
    onFrames: (s, f) => store.onFrames(s, f),
    log,
    signal: ac.signal,
    reconnectBaseMs: 200,
    reconnectMaxMs: 2000,
    requestTimeoutMs: 30_000,
  });
  const stop = async () => {
    ac.abort();
    await r.finished.catch(() => undefined);
  };
  cleanups.push(stop);
  return { ...r, stop };
}

/** Writes units in the background until stopped. */
function writeLoad(src: SourceJournal): { stop(): Promise<void> } {
  let on = true;
  const done = (async () => {
    while (on) {
      await src.writeUnits(5, { bigEvery: 40, bigBytes: 200_000 });
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const stop = async () => {
    on = false;
    await done;
  };
  cleanups.push(stop);
  return { stop };
}

async function expectSame(store: MemoryStore, src: SourceJournal): Promise<void> {
  expect(store.violations).toEqual([]);
  const want = await src.all();
  expect(frameDiff(store.frames, want)).toBe('');
  expect(entriesOf(store.frames)).toEqual(await src.entries());
}

describe('kafka ship backend (real broker)', () => {
  it('ships multi-frame units, some frames split into chunks, exactly once and in order', async () => {
    const t0 = Date.now();
    const src = await source();
    await src.writeUnits(150, { bigEvery: 25, bigBytes: 300_000 });
    const store = new MemoryStore();
    const s = shipper('tm.basic', src);
    const r = receiver('tm.basic', 'tm.dc2.basic', store);
    await src.writeUnits(150, { bigEvery: 30, bigBytes: 150_000 });
    await until(() => store.durable === src.headLsn, 60_000, `receiver at LSN ${src.headLsn}`);
    await expectSame(store, src);
    await until(() => s.status().ackedLsn === src.headLsn, 10_000, 'shipper acked everything');
    expect(s.status().ackedUnitLsn).toBe(src.headLsn);
    expect(r.status().state).toBe('streaming');
    const topic = await readTopic(broker.brokers, 'tm.basic', 'src', log);
    expect(duplicateLsns(topic)).toEqual([]);
    expect(topic.some((c) => c.parts > 1)).toBe(true);
    console.log(`kafka basic: ${src.headLsn} frames in ${Date.now() - t0} ms`);
  });

  it('survives a broker SIGKILL + restart mid-stream: no loss, no duplicate, in order', async () => {
    const t0 = Date.now();
    const src = await source();
    const store = new MemoryStore();
    // An impatient shipper: the longer outage makes it end its session and resume from what the partition holds
    // (kafkajs may ride out the short one by retrying).
    const s = shipper('tm.crash', src, true);
    const r = receiver('tm.crash', 'tm.dc2.crash', store);
    const load = writeLoad(src);
    const killedAt: bigint[] = [];
    for (const downMs of [1500, 6000]) {
      const before = store.durable;
      await until(() => store.durable > before + 200n, 120_000, 'frames flowing');
      killKafka(NAME);
      killedAt.push(store.durable);
      await new Promise((res) => setTimeout(res, downMs));
      startKafka(NAME, PORT);
    }
    await until(() => store.durable > (killedAt[1] as bigint) + 200n, 120_000, 'flow again');
    await load.stop();
    await until(() => store.durable === src.headLsn, 120_000, `receiver at LSN ${src.headLsn}`);
    await expectSame(store, src);
    await until(() => s.status().ackedLsn === src.headLsn, 30_000, 'shipper acked everything');
    expect(duplicateLsns(await readTopic(broker.brokers, 'tm.crash', 'src', log))).toEqual([]);
    expect(s.status().sessions).toBeGreaterThan(1);
    console.log(
      `kafka broker crash: ${src.headLsn} frames, killed at ${killedAt.join(', ')}, shipper sessions ${s.status().sessions}, ` +
        `receiver sessions ${r.status().sessions}, ${Date.now() - t0} ms`,
    );
  });

  it('a restarted shipper resumes at the end of the partition: every LSN once in the topic', async () => {
    const src = await source();
    const store = new MemoryStore();
    const r = receiver('tm.resume', 'tm.dc2.resume', store);
    const load = writeLoad(src);
    const a = shipper('tm.resume', src);
    await until(() => a.status().ackedLsn > 150n, 60_000, 'first shipper under way');
    await a.stop();
    const stoppedAt = a.status().ackedLsn;
    const b = shipper('tm.resume', src);
    await until(() => b.status().ackedLsn > stoppedAt + 100n, 60_000, 'second shipper under way');
    await load.stop();
    await until(() => store.durable === src.headLsn, 60_000, `receiver at LSN ${src.headLsn}`);
    await expectSame(store, src);
    expect(b.status().resumedAt).toBe(stoppedAt + 1n);
    const topic = await readTopic(broker.brokers, 'tm.resume', 'src', log);
    expect(duplicateLsns(topic)).toEqual([]);
    expect(topic.filter((c) => c.part === 0).map((c) => c.lsn)).toEqual(
      Array.from({ length: Number(src.headLsn) }, (_, i) => BigInt(i + 1)),
    );
    expect(r.status().skipped).toBe(0);

    // A standby whose durable LSN went back (its recovery cut an unfinished unit) while its group's committed
    // offset stayed at the end: the receiver seeks back by LSN and delivers from durable + 1.
    await r.stop();
    const back = src.headLsn - 37n;
    const store2 = new MemoryStore(back);
    const r2 = receiver('tm.resume', 'tm.dc2.resume', store2);
    await until(() => store2.durable === src.headLsn, 60_000, 'second receiver caught up');
    expect(store2.violations).toEqual([]);
    expect(store2.frames[0]?.lsn).toBe(back + 1n);
    expect(frameDiff(store2.frames, (await src.all()).slice(Number(back)))).toBe('');
    expect(r2.status().seeks).toBeGreaterThanOrEqual(1);
  });

  it('a gap or a damaged message in the topic stops the receiver; nothing after it is delivered', async () => {
    const kafka = createKafka({ brokers: broker.brokers }, log);
    const admin = kafka.admin();
    await admin.connect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const frame = (lsn: number): WireFrame => ({ lsn: BigInt(lsn), endOfUnit: true, payload: Buffer.from(`f${lsn}`) });
    const put = async (topic: string, frames: WireFrame[], tamper?: (h: Record<string, string>) => void) => {
      await ensureTopic(admin, topic, {}, log);
      const messages = frames.flatMap((f) => encodeFrame('src', f)).map((m) => ({ ...m, partition: 0 }));
      if (tamper) tamper((messages[messages.length - 1] as { headers: Record<string, string> }).headers);
      await producer.send({ topic, acks: -1, messages });
    };
    await put('tm.gap', [frame(1), frame(2), frame(3), frame(5), frame(6)]);
    await put('tm.damage', [frame(1), frame(2)], (h) => {
      h['tm-crc'] = String((Number(h['tm-crc']) + 1) % 2 ** 32);
    });
    await producer.disconnect();
    await admin.disconnect();

    const gapStore = new MemoryStore();
    const g = receiver('tm.gap', 'tm.dc2.gap', gapStore);
    await expect(g.finished).rejects.toMatchObject({ code: 'SHIP_GAP' });
    expect(gapStore.frames.map((f) => f.lsn)).toEqual([1n, 2n, 3n]);
    expect(g.status().state).toBe('failed');

    const badStore = new MemoryStore();
    const b = receiver('tm.damage', 'tm.dc2.damage', badStore);
    await expect(b.finished).rejects.toMatchObject({ code: 'CORRUPT' });
    expect(badStore.frames.map((f) => f.lsn)).toEqual([1n]);
  });
});
