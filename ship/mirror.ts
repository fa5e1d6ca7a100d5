/**
 * The ship link's two journal ends:
 *
 *   journalSource(dir)  the primary: the source journal's identity, its truncation events for HELLO, and its
 *                       frames read only up to its durable mark (never a frame the source could still lose or
 *                       take back), failing on any truncation after the HELLO's epoch. Spread into
 *                       startShipper's options. notingCommitTimes remembers the commit time of each unit shipped
 *                       (a standby's lag in seconds); sessionFrames is the frames of a session without a HELLO
 *                       (the brokers).
 *   MirrorSink          the standby: one mirror journal per source (<root>/<source>, consolidation = several
 *                       directories), holding the source's frames at the source's LSNs. onHello opens (or creates)
 *                       the mirror, checks that it mirrors the journal the shipper names, reconciles the source's
 *                       truncations and reports the mirror's synced LSN; onFrames appends each frame at its LSN
 *                       and syncs before it resolves, so the receiver acknowledges only what is on disk. The
 *                       brokers, without a HELLO, open a mirror with resumePoint.
 *
 * After a failover the new primary ships its promoted mirror, a journal that continues the old primary's
 * (journal/branch.ts); its HELLO names the branch. A mirror of the old journal whose head is at or below the
 * branch point adopts the new journal (its frames are the new journal's too) and goes on from its head; one above
 * it holds frames the new primary never had and is refused, naming them (`tidemark failback` deals with them).
 *
 * After a standby crash, reopening the mirror runs the journal's recovery: an unfinished unit is cut (its frames
 * were acknowledged, so the durable LSN goes back and the shipper sends them again). Readers of the mirror (the
 * applier) see complete units only, with the same truncation events as on any journal.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { describeChain, TidemarkError } from '../core/errors.ts';
import { adoptBranch } from '../journal/index.ts';
import { journalIdentity, readIdentity } from '../journal/index.ts';
import { reconcileTruncations } from '../journal/index.ts';
import { JournalReader } from '../journal/index.ts';
import { listSegments } from '../journal/index.ts';
import { readTruncations } from '../journal/index.ts';
import { JournalWriter } from '../journal/index.ts';
import { decodeFrame, latestEpoch } from '../journal/index.ts';
import type { FramesSink, FramesSource, ReceiverSessionInfo, WireFrame } from './frame.ts';

/** The source side of startShipper's options for the journal at `dir`. */
export async function journalSource(dir: string, opts: { pollMs?: number } = {}): Promise<FramesSource> {
  const { id, branch } = await journalIdentity(dir);
  return {
    journalId: id,
    ...(branch ? { branch } : {}),
    truncations: () => readTruncations(dir),
    async *frames(fromLsn, signal, session) {
      // A reader takes LSN 1 as "from the oldest": a standby that needs LSN 1 must not get a later one instead.
      const oldest = (await listSegments(dir))[0];
      if (fromLsn <= 1n && oldest !== undefined && oldest > 1n) {
        throw new TidemarkError(
          `journal ${dir}: LSN 1 is no longer retained (the oldest segment starts at ${oldest}): the standby ` +
            'needs a rebaseline and a mirror that starts later (startLsn)',
          { code: 'JOURNAL_GONE', retriable: false, context: { dir, oldest } },
        );
      }
      yield* new JournalReader({
        dir,
        fromLsn,
        follow: true,
        durableOnly: true,
        sinceEpoch: session.truncationEpoch,
        signal,
        ...(opts.pollMs === undefined ? {} : { pollMs: opts.pollMs }),
      });
    },
  };
}

/** Unit commit times notingCommitTimes remembers at most (the oldest go first). */
const COMMIT_TIMES = 8192;

/**
 * `source`, noting in `times` the source commit time of every unit its frames end (for the standby's lag in
 * seconds): the last frame of a unit is its commit entry.
 */
export function notingCommitTimes(source: FramesSource, times: Map<bigint, bigint>): FramesSource {
  return {
    ...source,
    async *frames(fromLsn, signal, session) {
      for await (const f of source.frames(fromLsn, signal, session)) {
        if (f.endOfUnit) {
          const e = decodeFrame(f).entry;
          if (e.kind === 'commit') times.set(f.lsn, e.commitTimeUs);
          if (times.size > COMMIT_TIMES) times.delete(times.keys().next().value as bigint);
        }
        yield f;
      }
    },
  };
}

/**
 * The frames of a session without a HELLO (Kafka, Redis): the source's latest truncation epoch at the start of
 * every session, as a TCP HELLO would carry it.
 */
export function sessionFrames(
  source: FramesSource,
): (fromLsn: bigint, signal: AbortSignal) => AsyncIterable<WireFrame> {
  return async function* (fromLsn, signal) {
    const truncationEpoch = latestEpoch((await source.truncations?.()) ?? []);
    yield* source.frames(fromLsn, signal, { truncationEpoch });
  };
}

export interface MirrorSinkOptions {
  /** Directory holding one mirror journal per source, `<root>/<source>`. */
  root: string;
  /** Sources this standby accepts; default every source whose name is a plain directory name. */
  sources?: readonly string[];
  /**
   * LSN at which an empty mirror of `source` starts: the first LSN after the standby's baseline, when the source
   * no longer retains its earlier frames. Default 1n.
   */
  startLsn?(source: string): bigint | undefined;
  /** Segment size of the mirrors. Default 64 MiB. */
  segmentBytes?: number;
  log: Logger;
}

export interface MirrorStatus {
  readonly source: string;
  readonly dir: string;
  /** The source journal this mirror copies. */
  readonly mirrorOf: string;
  readonly headLsn: bigint;
  /** Every frame up to it is on disk (what the receiver acknowledged). */
  readonly syncedLsn: bigint;
  /** The last complete unit on disk (what survives a crash). */
  readonly durableLsn: bigint;
}

/** A rejection handler that closes `w` and rethrows. */
function closing(w: JournalWriter): (err: unknown) => Promise<never> {
  return async (err) => {
    await w.close().catch(() => undefined);
    throw err;
  };
}

const SOURCE_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** Errors that no retry fixes: the shipper is refused, with the reason, rather than told to come back. */
const REFUSE_CODES = new Set([
  'JOURNAL_IDENTITY',
  'JOURNAL_MIRROR',
  'JOURNAL_MIRROR_RECONCILE',
  'JOURNAL_FORMAT',
  'JOURNAL_CUT',
  'JOURNAL_GONE',
]);

export class MirrorSink {
  private readonly o: MirrorSinkOptions;
  private readonly log: Logger;
  private readonly mirrors = new Map<string, JournalWriter>();
  /** Sources whose last onFrames failed: their writer is reopened (recovered) at the next HELLO. */
  private readonly broken = new Set<string>();

  constructor(opts: MirrorSinkOptions) {
    this.o = opts;
    this.log = opts.log.child({ component: 'mirror' });
  }

  /** The receiver's callbacks: `ShipReceiver.listen({ ...sink.callbacks(), port, security, log })`. */
  callbacks(): FramesSink {
    return { onHello: (i) => this.onHello(i), onFrames: (s, f) => this.onFrames(s, f) };
  }

  dirOf(source: string): string {
    return join(this.o.root, source);
  }

  async onHello(info: ReceiverSessionInfo): Promise<{ durableLsn: bigint } | { refuse: string }> {
    const { source } = info;
    const allowed = this.o.sources ? this.o.sources.includes(source) : true;
    if (!SOURCE_RE.test(source) || !allowed) {
      const list = this.o.sources ? `: it mirrors ${this.o.sources.join(', ')}` : '';
      return { refuse: `unknown source "${source}"${list}` };
    }
    if (info.journalId === '') return { refuse: `source "${source}" sent no journal identity (journalId)` };
    const log = this.log.child({ source });
    const start = this.o.startLsn?.(source);
    try {
      let w = this.mirrors.get(source);
      if (w && this.broken.has(source)) {
        log.info('mirror: reopening after a failed write (recovery)');
        await w.close().catch(() => undefined);
        this.mirrors.delete(source);
        w = undefined;
      }
      this.broken.delete(source);
      if (!w) {
        // A mirror of the journal the shipper's journal continued is opened as what it is, then adopts it.
        const have = info.branch ? await readIdentity(this.dirOf(source)) : null;
        const from = have?.mirror && have.mirror.of !== info.journalId ? have.mirror.of : undefined;
        const adopting = from !== undefined && from === info.branch?.of;
        const opened = await JournalWriter.open({
          dir: this.dirOf(source),
          fsync: 'transaction',
          groupCommitMs: 0,
          segmentBytes: this.o.segmentBytes ?? 64 << 20,
          mirrorOf: adopting ? from : info.journalId,
          ...(start === undefined ? {} : { startLsn: start }),
          log,
        });
        const refuse = adopting ? await this.followBranch(opened, info, log).catch(closing(opened)) : null;
        if (refuse !== null) {
          await opened.close();
          return this.refusal(log, refuse);
        }
        w = opened;
        this.mirrors.set(source, w);
      } else if (w.identity.mirror?.of !== info.journalId) {
        const refuse = await this.followBranch(w, info, log);
        if (refuse !== null) return this.refusal(log, refuse);
      }
      await reconcileTruncations(w, info.truncations, log);
      // An empty mirror configured to start later: it starts at its first frame (appendAt of an empty journal).
      if (w.isEmpty && start !== undefined && w.headLsn !== start - 1n) return { durableLsn: start - 1n };
      log.info({ durableLsn: String(w.syncedLsn), mirrorOf: info.journalId }, 'mirror: session starts');
      return { durableLsn: w.syncedLsn };
    } catch (err) {
      if (err instanceof TidemarkError && REFUSE_CODES.has(err.code)) return this.refusal(log, err.message);
      if (this.mirrors.has(source)) this.broken.add(source); // e.g. a failed cut: reopen (recover) next time
      throw err;
    }
  }

  /**
   * For a transport without a HELLO (the brokers): opens the mirror of `source` as a HELLO from journal
   * `journalId` would (no truncations: the frames carry the journal's own) and returns its synced LSN, where the
   * session resumes. A refusal throws SHIP_REFUSED, "`what`: reason".
   */
  async resumePoint(o: { source: string; site: string; journalId: string; what: string }): Promise<bigint> {
    const r = await this.onHello({
      source: o.source,
      site: o.site,
      journalId: o.journalId,
      truncations: [],
      protocolVersion: 0,
      peer: o.journalId,
      certificateNames: [],
    });
    if ('refuse' in r) throw new TidemarkError(`${o.what}: ${r.refuse}`, { code: 'SHIP_REFUSED' });
    return r.durableLsn;
  }

  async onFrames(source: string, frames: readonly WireFrame[]): Promise<void> {
    const w = this.mirrors.get(source);
    if (!w) throw new TidemarkError(`mirror: no open journal for source "${source}"`, { code: 'INTERNAL' });
    try {
      // The usual batch continues the mirror's head: queue all its frames in one tick, so they share one write
      // (awaiting each would let the writer's pump write every frame on its own). Anything else — a resend, a gap —
      // goes frame by frame, stopping at the first refusal.
      const first = frames[0];
      if (first !== undefined && !w.isEmpty && first.lsn === w.headLsn + 1n && contiguous(frames)) {
        await Promise.all(frames.map((f) => w.appendAt(f.lsn, f.payload, f.endOfUnit)));
      } else {
        for (const f of frames) await w.appendAt(f.lsn, f.payload, f.endOfUnit);
      }
      await w.sync();
    } catch (err) {
      this.broken.add(source);
      this.log.error({ source, err: describeChain(err) }, 'mirror: storing frames failed');
      throw err;
    }
  }

  /** Open mirrors (sources that connected since start). */
  status(): MirrorStatus[] {
    return [...this.mirrors].map(([source, w]) => ({
      source,
      dir: w.dir,
      mirrorOf: w.identity.mirror?.of ?? '',
      headLsn: w.headLsn,
      syncedLsn: w.syncedLsn,
      durableLsn: w.durableLsn,
    }));
  }

  /** Closes every mirror (after the receiver is closed: no onFrames may be running). */
  async close(): Promise<void> {
    const ws = [...this.mirrors.values()];
    this.mirrors.clear();
    await Promise.all(ws.map((w) => w.close().catch(() => undefined)));
  }

  /**
   * The mirror `w` meets a HELLO of a journal it does not mirror: it adopts that journal when the journal
   * continues the mirrored one at or past the mirror's head (returns null), else the reason to refuse.
   */
  private async followBranch(w: JournalWriter, info: ReceiverSessionInfo, log: Logger): Promise<string | null> {
    const was = w.identity.mirror?.of;
    const d = adoptBranch(w.identity, info, w.headLsn, w.dir);
    if (d === null) {
      return `journal identity changed: the mirror ${w.dir} mirrors journal ${was}, not ${info.journalId}; rebaseline this standby`;
    }
    if (!d.adopt) return d.refuse;
    const b = info.branch as NonNullable<ReceiverSessionInfo['branch']>;
    log.warn(
      { dir: w.dir, from: was, to: info.journalId, atLsn: String(b.atLsn), headLsn: String(w.headLsn), epoch: b.epoch },
      `mirror: the source journal ${info.journalId} continues journal ${was} after LSN ${b.atLsn} (a promoted ` +
        `standby); this mirror (head LSN ${w.headLsn}) now follows it`,
    );
    await w.adoptSource(info.journalId, b.epoch);
    return null;
  }

  private refusal(log: Logger, reason: string): { refuse: string } {
    log.error({ reason }, `mirror: refusing the shipper: ${reason}`);
    return { refuse: reason };
  }
}

/** Whether the frames' LSNs follow one another with no gap or repeat. */
function contiguous(frames: readonly WireFrame[]): boolean {
  for (let i = 1; i < frames.length; i++)
    if ((frames[i] as WireFrame).lsn !== (frames[i - 1] as WireFrame).lsn + 1n) return false;
  return true;
}
