/**
 * The transport-neutral journal ends' helpers (mirror.ts): the commit times noted for a standby's lag, the frames
 * of a session without a HELLO (brokers), and a broker's mirror opened without one. The journal ends shipped over
 * a real link are tested in ship/tcp/mirror*.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureLog, cleanupsAfterEach } from '../test/fixtures/ship-link.ts';
import { Source } from '../test/fixtures/ship-mirror.ts';
import type { FramesSource, TruncationMark, WireFrame } from './frame.ts';
import { MirrorSink, notingCommitTimes, sessionFrames } from './mirror.ts';

const cleanups = cleanupsAfterEach();

async function collect(it: AsyncIterable<WireFrame>): Promise<WireFrame[]> {
  const out: WireFrame[] = [];
  for await (const f of it) out.push(f);
  return out;
}

/** A FramesSource over `frames` that records the truncation epoch each session was given. */
function memory(frames: readonly WireFrame[], truncations?: readonly TruncationMark[]) {
  const epochs: number[] = [];
  const source: FramesSource = {
    journalId: 'j1',
    ...(truncations ? { truncations: () => truncations } : {}),
    async *frames(from, _signal, session) {
      epochs.push(session.truncationEpoch);
      yield* frames.filter((f) => f.lsn >= from);
    },
  };
  return { source, epochs };
}

describe('notingCommitTimes', () => {
  it('notes the commit time of every unit the frames end, and passes every frame on unchanged', async () => {
    const src = await Source.create();
    cleanups.push(() => src.close());
    await src.writeUnits(4);
    const frames = await src.frames();
    const times = new Map<bigint, bigint>();
    const noted = notingCommitTimes(memory(frames).source, times);
    expect(noted.journalId).toBe('j1');
    const out = await collect(noted.frames(1n, new AbortController().signal, { truncationEpoch: 0 }));
    expect(out).toEqual(frames);
    const ends = frames.filter((f) => f.endOfUnit).map((f) => f.lsn);
    expect([...times.keys()]).toEqual(ends);
    // The fixture's unit u commits at 1_700_000_000_000_000 + u µs.
    expect([...times.values()]).toEqual([0n, 1n, 2n, 3n].map((u) => 1_700_000_000_000_000n + u));
  });
});

describe('sessionFrames', () => {
  it("gives each session the source's latest truncation epoch, read when the session starts", async () => {
    const frames: WireFrame[] = [1n, 2n, 3n].map((lsn) => ({ lsn, endOfUnit: true, payload: new Uint8Array(1) }));
    const marks: TruncationMark[] = [
      { epoch: 2, toLsn: 5n },
      { epoch: 7, toLsn: 3n },
    ];
    const withMarks = memory(frames, marks);
    const got = await collect(sessionFrames(withMarks.source)(2n, new AbortController().signal));
    expect(got.map((f) => f.lsn)).toEqual([2n, 3n]);
    expect(withMarks.epochs).toEqual([7]);
    const none = memory(frames);
    await collect(sessionFrames(none.source)(1n, new AbortController().signal));
    expect(none.epochs).toEqual([0]);
  });
});

describe('MirrorSink.resumePoint', () => {
  it("opens a broker's mirror without a HELLO, and refuses another journal naming the standby", async () => {
    const root = await mkdtemp(join(tmpdir(), 'tidemark-resume-'));
    const sink = new MirrorSink({ root, sources: ['orders'], log: captureLog().log });
    cleanups.push(async () => {
      await sink.close();
      await rm(root, { recursive: true, force: true });
    });
    const at = { source: 'orders', site: 'primary', what: 'standby dr2' };
    expect(await sink.resumePoint({ ...at, journalId: 'kafka:tidemark.orders.dr2' })).toBe(0n);
    await sink.onFrames('orders', [{ lsn: 1n, endOfUnit: true, payload: new Uint8Array([1, 2]) }]);
    expect(await sink.resumePoint({ ...at, journalId: 'kafka:tidemark.orders.dr2' })).toBe(1n);
    await expect(sink.resumePoint({ ...at, journalId: 'redis:other' })).rejects.toMatchObject({
      code: 'SHIP_REFUSED',
      message: expect.stringMatching(/^standby dr2: journal identity changed/),
    });
  });
});
