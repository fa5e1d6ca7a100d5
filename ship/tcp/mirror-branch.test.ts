/**
 * Following a promoted standby over TLS: the new primary's journal continues the old one (journal/branch.ts)
 * and its HELLO says so. A mirror of the old journal at or below the branch point adopts it and receives the new
 * frames from its head on; one past it (errant frames) is refused, naming the LSNs; the old primary is refused
 * once a mirror adopted the new journal.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import { appendUnits, copyAsMirror, marker, unitEnds } from '../../test/fixtures/lineage.ts';
import { captureLog, cleanupsAfterEach, frameDiff, until, useTestPki } from '../../test/fixtures/ship-link.ts';
import { followUnits, mirrorStandby, readFrames, Source } from '../../test/fixtures/ship-mirror.ts';
import { promoteMirror } from '../../journal/branch.ts';
import { readIdentity } from '../../journal/identity.ts';
import { JournalWriter } from '../../journal/writer.ts';
import { journalSource } from '../mirror.ts';
import { startShipper } from './index.ts';

const pki = useTestPki();
const cleanups = cleanupsAfterEach();

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'tidemark-branch-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  return root;
}

/** A standby: a receiver storing into mirrors under `root` (mirror of source "orders" at root/orders). */
function standby(root: string) {
  return mirrorStandby({ root, security: pki().dc2, cleanups, sink: { segmentBytes: 16 << 10 } });
}

/** Ships the journal at `journalDir`; with `upTo`, its frames only up to that LSN (the journal as it was then). */
async function ship(journalDir: string, port: number, upTo?: bigint) {
  const cap = captureLog();
  const ac = new AbortController();
  const src = await journalSource(journalDir, { pollMs: 10 });
  const s = startShipper({
    host: '127.0.0.1',
    port,
    security: pki().dc1,
    site: 'dc1',
    targetSite: 'dc2',
    source: 'orders',
    ...src,
    frames: async function* (from, signal, session) {
      for await (const f of src.frames(from, signal, session)) {
        if (upTo !== undefined && f.lsn > upTo) return;
        yield f;
      }
    },
    log: cap.log,
    signal: ac.signal,
    heartbeatMs: 200,
    reconnectBaseMs: 20,
    reconnectMaxMs: 200,
  });
  const stop = async () => {
    ac.abort();
    await s.finished.catch(() => undefined);
  };
  cleanups.push(stop);
  return { s, cap, stop };
}

async function refusal(s: { finished: Promise<void> }): Promise<string> {
  return s.finished.then(
    () => 'not refused',
    (e: unknown) => String(e),
  );
}

/**
 * The old primary A (30 units), and the promoted standby's journal P: A's frames up to the end of unit 25 (the
 * branch point), the marker, then 5 units of its own.
 */
async function failover() {
  const a = await Source.create(16 << 10);
  cleanups.push(() => a.close());
  await a.writeUnits(30);
  const aId = a.writer.identity.id;
  const ends = unitEnds(await a.frames());
  const atLsn = ends[24] as bigint;
  const p = join(await tempRoot(), 'promoted');
  await copyAsMirror(a.dir, p, aId, ends[29] as bigint); // the standby had received everything
  const promoted = await promoteMirror(p, { atLsn, marker, log: silentLogger });
  await appendUnits(p, 5);
  return { a, aId, ends, atLsn, p, promoted };
}

describe('a mirror following a promoted standby', () => {
  it('adopts the new journal when lagging (head ≤ the branch point), then refuses the old primary', async () => {
    const { a, aId, ends, atLsn, p, promoted } = await failover();
    const lag = ends[19] as bigint;
    expect(lag).toBeLessThan(atLsn);
    const root = await tempRoot();
    await copyAsMirror(a.dir, join(root, 'orders'), aId, lag);
    const sb = await standby(root);
    const applier = followUnits(sb.dir);
    cleanups.push(() => applier.stop());

    const { s, stop } = await ship(p, sb.r.port);
    const pFrames = await readFrames(p);
    const head = pFrames.at(-1)?.lsn as bigint;
    expect(head).toBe(atLsn + 1n + 15n); // marker + 5 units of 3 frames
    await until(() => s.status().ackedLsn === head, 10_000, 'the mirror to catch up with the new primary');
    // The shipper started at the mirror's head + 1: its WELCOME reported the lagging head.
    expect(sb.cap.text()).toMatch(new RegExp(`ship receiver: session started .*"durableLsn":"${lag}"`));
    expect(frameDiff(await readFrames(sb.dir), pFrames)).toBe('');
    expect((await readIdentity(sb.dir))?.mirror).toEqual({
      of: promoted.journalId,
      sourceEpoch: promoted.branch.epoch,
    });
    const adopted = sb.cap.lines.find((l) => String(l.msg).includes('now follows it'));
    expect(adopted).toMatchObject({ level: 40, from: aId, to: promoted.journalId, atLsn: String(atLsn) });
    // Its reader saw every unit once, from the first on, without a restart: nothing was cut.
    await until(() => applier.lastLsn === head, 5000, 'the mirror reader');
    expect(applier.violations).toEqual([]);
    expect(applier.restarts).toBe(0);
    await stop();

    // The old primary comes back: refused (its writer is open in the sink).
    const old = await ship(a.dir, sb.r.port);
    expect(await refusal(old.s)).toMatch(
      new RegExp(`journal identity changed: the mirror .* mirrors journal ${promoted.journalId}, not ${aId}`),
    );
    // And after a restart of the standby (the writer opened anew).
    await sb.r.close();
    await sb.sink.close();
    const sb2 = await standby(root);
    const again = await ship(a.dir, sb2.r.port);
    expect(await refusal(again.s)).toMatch(
      new RegExp(`journal identity changed: .* it mirrors journal ${promoted.journalId}, not ${aId}`),
    );
    expect((await readFrames(sb2.dir)).at(-1)?.lsn).toBe(head);
  });

  it('adopts through a mirror already open from the old primary, at exactly the branch point', async () => {
    const { a, aId, ends, atLsn, p, promoted } = await failover();
    const root = await tempRoot();
    await copyAsMirror(a.dir, join(root, 'orders'), aId, ends[9] as bigint);
    const sb = await standby(root);
    // A session of the old primary (as it was at the branch point) fills the mirror up to it, then that primary dies.
    const old = await ship(a.dir, sb.r.port, atLsn);
    await until(() => sb.sink.status()[0]?.syncedLsn === atLsn, 10_000, 'the old primary session');
    await old.stop();
    expect(sb.sink.status()[0]).toMatchObject({ mirrorOf: aId, headLsn: atLsn });
    const { s } = await ship(p, sb.r.port);
    const head = (await readFrames(p)).at(-1)?.lsn as bigint;
    await until(() => s.status().ackedLsn === head, 10_000, 'the adopted mirror');
    expect(frameDiff(await readFrames(sb.dir), await readFrames(p))).toBe('');
    expect(sb.sink.status()[0]?.mirrorOf).toBe(promoted.journalId);
  });

  it('refuses a mirror holding frames past the branch point, naming them, and leaves it as it was', async () => {
    const { a, aId, ends, atLsn, p, promoted } = await failover();
    const root = await tempRoot();
    const errantHead = ends[27] as bigint;
    await copyAsMirror(a.dir, join(root, 'orders'), aId, errantHead);
    const sb = await standby(root);
    const { s, cap } = await ship(p, sb.r.port);
    const want =
      `the mirror ${sb.dir} holds LSNs up to ${errantHead}, past LSN ${atLsn} where the new primary's journal ` +
      `${promoted.journalId} branched from ${aId}: frames ${atLsn + 1n}..${errantHead} never reached the new ` +
      'primary (errant); run tidemark failback for this site';
    expect(await refusal(s)).toContain(want);
    expect(cap.text()).toContain('errant');
    expect(sb.cap.text()).toContain(`mirror: refusing the shipper: ${want}`);
    // Nothing cut, identity unchanged, and the lock released (failback can open it).
    expect((await readIdentity(sb.dir))?.mirror).toEqual({ of: aId, sourceEpoch: 0 });
    const w = await JournalWriter.open({
      dir: sb.dir,
      fsync: 'transaction',
      groupCommitMs: 0,
      segmentBytes: 16 << 10,
      mirrorOf: aId,
    });
    expect(w.headLsn).toBe(errantHead);
    await w.close();
    expect(sb.sink.status()).toEqual([]);
  });

  it('refuses an open mirror that the old primary took past the branch point', async () => {
    const { a, atLsn, p } = await failover();
    const root = await tempRoot();
    const sb = await standby(root);
    const old = await ship(a.dir, sb.r.port);
    await until(() => sb.sink.status()[0]?.syncedLsn === a.headLsn, 10_000, 'the old primary');
    await old.stop();
    const { s } = await ship(p, sb.r.port);
    expect(await refusal(s)).toMatch(
      new RegExp(`holds LSNs up to ${a.headLsn}, past LSN ${atLsn} .*frames ${atLsn + 1n}..${a.headLsn} never`),
    );
    expect(sb.sink.status()[0]?.headLsn).toBe(a.headLsn);
  });
});
