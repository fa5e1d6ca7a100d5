/**
 * A 200k-row single transaction (~50 MB of row events) streams through a slow journal with bounded memory:
 * the binlog connection is paused while the queue is full and rows reach the sink as they arrive, so the heap
 * never holds the transaction.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommitEntry } from '../../record/record.ts';
import { binlogOf } from '../../record/position.ts';
import { MysqlCapture } from '../../capture/mysql/capture.ts';
import { sourceStatus } from '../../capture/mysql/status.ts';
import { MemorySink, memoryLogger, sourceConfig } from '../fixtures/capture-kit.ts';
import { admin, resetSchemas, startInstance, stopInstance } from '../fixtures/mariadb.ts';

const NAME = 'capbig';
const PORT = 3415;
const ROWS = 200_000;
const MB = 1024 * 1024;

// Full GCs on demand, so the samples measure what is retained, not garbage V8 has not collected yet.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('capture: one 200k-row transaction', () => {
  beforeAll(async () => {
    startInstance(NAME, PORT);
    const a = await admin(PORT);
    await resetSchemas(a);
    await a.query('CREATE DATABASE app');
    await a.query('CREATE TABLE app.big (id INT PRIMARY KEY, n BIGINT, pad VARCHAR(255))');
    await a.end();
  }, 120_000);

  afterAll(() => {
    stopInstance(NAME);
  });

  it('streams with bounded heap while the sink applies backpressure', async () => {
    const sink = new MemorySink({ keepRows: false, appendDelayMs: 2, appendDelayEvery: 5 });
    const ac = new AbortController();
    const { log } = memoryLogger('warn');
    const capture = new MysqlCapture({ source: sourceConfig(PORT), sink, resume: null, log });
    const run = capture.run(ac.signal);
    await sink.waitFor((c) => c.some((x) => x.phase === 'baseline-end'));

    const a = await admin(PORT);
    await a.query(
      `INSERT INTO app.big SELECT seq, seq * 1000003, REPEAT(CHAR(65 + seq % 26), 200) FROM app.seq_1_to_${ROWS}`,
    );
    const end = await sourceStatus(a);
    await a.end();

    gc();
    const heapAtStart = process.memoryUsage().heapUsed;
    let peakHeap = heapAtStart;
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      gc();
      const m = process.memoryUsage();
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakRss = Math.max(peakRss, m.rss);
    }, 50);
    const t0 = Date.now();
    await sink.waitFor((c) => binlogOf(c.at(-1)?.position)?.offset === end.binlog.offset, 240_000);
    const ms = Date.now() - t0;
    clearInterval(sampler);
    const pauses = capture.status().pauses;
    ac.abort();
    await run;

    const commit = sink.commits.at(-1) as CommitEntry;
    expect(commit).toMatchObject({ phase: 'stream', rowCount: BigInt(ROWS) });
    expect(sink.rowCount).toBe(ROWS);
    const growth = (peakHeap - heapAtStart) / MB;
    console.info(
      `200k-row tx: ${ms} ms, ${pauses} pauses, retained heap at start ${Math.round(heapAtStart / MB)} MB, ` +
        `peak ${Math.round(peakHeap / MB)} MB (+${Math.round(growth)} MB), peak rss ${Math.round(peakRss / MB)} MB`,
    );
    // the sink was slow enough that the connection had to be paused many times over
    expect(ms).toBeGreaterThan(1_000);
    expect(pauses).toBeGreaterThan(10);
    expect(peakHeap).toBeLessThan(100 * MB);
    expect(growth).toBeLessThan(30);
    expect(peakRss).toBeLessThan(250 * MB);
  }, 300_000);
});
