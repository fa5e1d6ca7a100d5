/**
 * A real journal shipped over mutual TLS into a mirror journal (journalSource → startShipper → ShipReceiver →
 * MirrorSink): same LSNs, same bytes, same entries; durable frames only; identity; a mirror that starts late.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureLog, frameDiff, until, cleanupsAfterEach, useTestPki } from '../../test/fixtures/ship-link.ts';
import { followUnits, mirrorStandby, readFrames, Source } from '../../test/fixtures/ship-mirror.ts';
import { CursorStore } from '../../journal/cursors.ts';
import { readEntries } from '../../journal/entries.ts';
import { readIdentity } from '../../journal/identity.ts';
import { JournalReader } from '../../journal/reader.ts';
import { applyRetention } from '../../journal/retention.ts';
import { listSegments } from '../../journal/segments.ts';
import { journalSource, type MirrorSinkOptions } from '../mirror.ts';
import { type ShipperOptions, startShipper } from './index.ts';

const pki = useTestPki();

const cleanups = cleanupsAfterEach();

async function newSource(segmentBytes?: number): Promise<Source> {
  const s = await Source.create(segmentBytes);
  cleanups.push(() => s.close());
  return s;
}

/** A standby: a receiver storing into mirrors under a fresh root. */
async function standby(extra: Partial<MirrorSinkOptions> = {}) {
  const root = await mkdtemp(join(tmpdir(), 'tidemark-mirror-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  return { root, ...(await mirrorStandby({ root, security: pki().dc2, cleanups, sink: extra })) };
}

async function ship(src: Source, port: number, opts: Partial<ShipperOptions> = {}) {
  const cap = captureLog();
  const ac = new AbortController();
  const s = startShipper({
    host: '127.0.0.1',
    port,
    security: pki().dc1,
    site: 'dc1',
    targetSite: 'dc2',
    source: 'orders',
    ...(await journalSource(src.dir, { pollMs: 10 })),
    log: cap.log,
    signal: ac.signal,
    heartbeatMs: 200,
    reconnectBaseMs: 20,
    reconnectMaxMs: 200,
    batchBytes: 32 << 10,
    windowBytes: 256 << 10,
    ...opts,
  });
  cleanups.push(async () => {
    ac.abort();
    await s.finished.catch(() => undefined);
  });
  return { s, cap, ac };
}

describe('shipping a journal into a mirror over TLS', () => {
  it('the mirror holds the source frames byte for byte at the same LSNs, and the same entries', async () => {
    const src = await newSource();
    await src.writeUnits(150);
    const sb = await standby();
    const applier = followUnits(sb.dir);
    cleanups.push(() => applier.stop());
    const { s } = await ship(src, sb.r.port);
    // Live: more units while shipping, with big units (6 frames of 120 kB: 720 kB > the 256 KiB window) and a
    // single frame larger than the window.
    await src.writeUnits(300, { bigEvery: 50, bigFrames: 6, bigBytes: 120_000 });
    await src.writeUnits(1, { bigEvery: 1, bigFrames: 1, bigBytes: 400_000 });
    await src.writeUnits(50);
    const head = src.headLsn;
    await until(() => sb.sink.status()[0]?.syncedLsn === head, 15_000, 'the mirror to catch up');
    await until(() => s.status().ackedLsn === head, 5000, 'the last ACK');

    const want = await src.frames();
    expect(frameDiff(await readFrames(sb.dir), want)).toBe('');
    const mirrored: unknown[] = [];
    for await (const e of readEntries(new JournalReader({ dir: sb.dir, fromLsn: 1n, follow: false }))) {
      mirrored.push(e.entry);
    }
    expect(mirrored).toEqual(await src.entries());
    // The applier of the mirror saw every unit once, complete.
    await until(() => applier.lastLsn === head, 5000, 'the applier');
    expect(applier.violations).toEqual([]);
    expect(applier.units.flatMap((u) => u.lsns)).toEqual(want.map((f) => f.lsn));
    expect(applier.units.length).toBe(501);
    // Identity: the mirror names the source journal; its segments are its own (another size).
    const srcId = await readIdentity(src.dir);
    expect((await readIdentity(sb.dir))?.mirror).toEqual({ of: srcId?.id, sourceEpoch: 0 });
    expect(sb.sink.status()).toMatchObject([
      { source: 'orders', mirrorOf: srcId?.id, durableLsn: head, headLsn: head },
    ]);
    expect((await listSegments(sb.dir)).length).toBeGreaterThan((await listSegments(src.dir)).length);
  });

  it('ships durable frames only: an unfinished unit, even synced, stays at the source until its commit', async () => {
    const src = await newSource();
    await src.writeUnits(20);
    const sb = await standby();
    await ship(src, sb.r.port);
    const committed = src.headLsn;
    await until(() => sb.sink.status()[0]?.syncedLsn === committed, 5000, 'the committed units');
    await src.unfinished(3);
    expect(src.writer.syncedLsn).toBe(committed + 3n);
    await new Promise((r) => setTimeout(r, 400));
    expect(sb.sink.status()[0]?.headLsn).toBe(committed);
    await src.writeUnits(1, { rowsFrames: 0 }); // the commit completes the unit
    await until(() => sb.sink.status()[0]?.syncedLsn === committed + 4n, 5000, 'the completed unit');
    expect(frameDiff(await readFrames(sb.dir), await src.frames())).toBe('');
  });

  it('refuses a shipper of another journal under the same source name, saying why at both ends', async () => {
    const a = await newSource();
    await a.writeUnits(5);
    const sb = await standby();
    await ship(a, sb.r.port);
    await until(() => sb.sink.status()[0]?.syncedLsn === a.headLsn, 5000, 'source A');
    const b = await newSource();
    await b.writeUnits(5);
    const { s, cap } = await ship(b, sb.r.port);
    const err = await s.finished.then(
      () => null,
      (e: unknown) => e,
    );
    expect(String(err)).toMatch(
      /refused this shipper: journal identity changed: the mirror .* mirrors journal .*rebaseline/,
    );
    expect(cap.text()).toMatch(/journal identity changed/);
    expect(sb.cap.text()).toMatch(/mirror: refusing the shipper: journal identity changed/);
    expect(sb.sink.status()[0]?.headLsn).toBe(a.headLsn);
  });

  it('a mirror started empty at LSN 1000 after the source retention removed earlier segments', async () => {
    const src = await newSource(4096);
    await src.writeUnits(500, { rowsFrames: 2 }); // units of 3 frames: LSN 999 ends one, 1000 starts the next
    await new CursorStore(src.dir).set('ship:dc2', 999n);
    const ret = await applyRetention({ dir: src.dir, keepHours: 0 });
    const oldest = (await listSegments(src.dir))[0] as bigint;
    expect(ret.deleted.length).toBeGreaterThan(10);
    expect(oldest).toBeGreaterThan(500n);
    expect(oldest).toBeLessThanOrEqual(1000n);

    // Without a start, an empty mirror asks for LSN 1, which the source no longer has: the shipper stops, saying so.
    const lost = await standby();
    const failed = await ship(src, lost.r.port);
    await expect(failed.s.finished).rejects.toThrow(/LSN 1 is no longer retained \(the oldest segment starts at \d+\)/);

    const sb = await standby({ startLsn: () => 1000n });
    await ship(src, sb.r.port);
    await src.writeUnits(20, { rowsFrames: 2 });
    await until(() => sb.sink.status()[0]?.syncedLsn === src.headLsn, 5000, 'the mirror from 1000');
    expect((await listSegments(sb.dir))[0]).toBe(1000n);
    const want = (await src.frames()).filter((f) => f.lsn >= 1000n);
    expect(frameDiff(await readFrames(sb.dir), want)).toBe('');
    const entries: unknown[] = [];
    for await (const e of readEntries(new JournalReader({ dir: sb.dir, fromLsn: 1n, follow: false }))) {
      entries.push(e.entry);
    }
    expect(entries).toEqual(await src.entries(1000n));
  });
});
