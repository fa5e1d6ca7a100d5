/**
 * Reads journal frames in LSN order, from any process: the reader shares nothing with the writer but the
 * directory. Memory is bounded by the read size (chunkBytes) plus the largest frame, whatever the segment size.
 *
 * How it follows a live writer:
 *   - It reads the current segment up to its current size, chunk by chunk, through a FrameScanner. A frame
 *     that is only partly written stays inside the scanner until the rest arrives.
 *   - At the end of a segment it looks for the next one (named by the next LSN). Because the writer finishes
 *     and syncs a segment before creating the next, it re-reads the current one to its end once more and then
 *     switches.
 *   - With nothing new it sleeps until an fs.watch notice about a segment, TRUNCATIONS or (durableOnly) DURABLE,
 *     or pollMs, whichever is first (dir-change.ts).
 *   - Truncation: before it delivers the frames of a read, it checks the TRUNCATIONS file (truncations.ts); a
 *     recovery that removed frames it delivered throws JournalTruncatedError (retriable). A segment that shrank
 *     below what was delivered throws the same. A shrink that only removed a torn tail resets the scan.
 *   - Damage: the scan is retried once from the last good frame with a fresh scanner (a writer may have cut and
 *     rewritten the tail between two reads); damage found again is a CorruptionError.
 *   - durableOnly: a frame above the durable mark (durable.ts) is held until the mark reaches it. A truncation
 *     that removes a held frame ends the iteration (JournalTruncatedError). Frames read while another writer
 *     incarnation was current than the one whose mark passed them are checked against the segment on disk
 *     first, so that a frame a crashed writer left behind and its successor rewrote is never delivered.
 */
import { fstatSync, statSync } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { silentLogger } from '../core/log.ts';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import type { JournalFrame, JournalReaderOptions } from './api.ts';
import { DirChange } from './dir-change.ts';
import { DURABLE_FILE, type Durable, DurableMarkReader } from './durable.ts';
import { JournalTruncatedError } from './errors.ts';
import { FrameScanner, type ScannedFrame } from './frame.ts';
import { frameOnDisk } from './read-at.ts';
import { listSegments, SEGMENT_SUFFIX, segmentFileName, segmentPath } from './segments.ts';
import { latestEpoch, readTruncations, TRUNCATIONS_FILE, truncatedSince, truncationsStamp } from './truncations.ts';

interface OpenSegment {
  readonly first: bigint;
  readonly name: string;
  readonly fh: FileHandle;
}

export class JournalReader implements AsyncIterable<JournalFrame> {
  readonly dir: string;
  private readonly fromLsn: bigint;
  private readonly startAt: { segment: bigint; offset: number; lsn?: bigint } | undefined;
  private readonly follow: boolean;
  private readonly chunkBytes: number;
  private readonly signal: AbortSignal | undefined;
  private readonly log: Logger;
  private readonly durable: DurableMarkReader | null;
  private readonly sinceEpoch: number | undefined;

  private seg: OpenSegment | null = null;
  /** The durable mark as last read (durableOnly). */
  private mark: Durable = { lsn: 0n, incarnation: 0 };
  private scanner: FrameScanner | null = null;
  /** End of the last complete frame in the current segment. */
  private pos = 0;
  /** Next byte of the current segment to read. */
  private readPos = 0;
  private retried = false;
  private delivered = 0n;
  private epoch = 0;
  private stamp = '';
  private readonly change: DirChange;
  private started = false;
  private layoutCheckedAt = Number.NEGATIVE_INFINITY;

  constructor(opts: JournalReaderOptions) {
    this.dir = opts.dir;
    this.fromLsn = opts.fromLsn;
    this.startAt = opts.startAt;
    this.follow = opts.follow;
    this.chunkBytes = opts.chunkBytes ?? 1 << 20;
    this.signal = opts.signal;
    this.log = opts.log ?? silentLogger;
    this.durable = opts.durableOnly ? new DurableMarkReader(opts.dir) : null;
    this.sinceEpoch = opts.sinceEpoch;
    this.change = new DirChange({
      dir: this.dir,
      pollMs: opts.pollMs ?? 20,
      signal: this.signal,
      wakesOn: (name) => this.wakesOn(name),
    });
  }

  /** LSN of the last frame delivered (0n before the first). */
  get lastLsn(): bigint {
    return this.delivered;
  }

  [Symbol.asyncIterator](): AsyncIterator<JournalFrame> {
    if (this.started) throw new TidemarkError('journal reader: iterate a reader only once', { code: 'USAGE' });
    this.started = true;
    return this.frames();
  }

  private async *frames(): AsyncGenerator<JournalFrame> {
    try {
      this.stamp = truncationsStamp(this.dir);
      this.epoch = latestEpoch(readTruncations(this.dir));
      if (this.sinceEpoch !== undefined && this.sinceEpoch < this.epoch) {
        this.epoch = this.sinceEpoch;
        this.checkTruncations(true);
      }
      if (!(await this.openStart())) return;
      for (;;) {
        if (this.signal?.aborted) return;
        // durableOnly: the writer incarnation current before the read (see awaitDurable).
        if (this.durable) this.mark = await this.durable.read();
        const readUnder = this.mark.incarnation;
        const got = await this.readChunk();
        if (got) {
          const segment = (this.seg as OpenSegment).first;
          let check = false;
          for (const f of got) {
            // Below fromLsn, or already delivered (after reopening an earlier segment).
            if (f.lsn < this.fromLsn || f.lsn <= this.delivered) continue;
            if (this.durable && f.lsn > this.mark.lsn) {
              if (!(await this.awaitDurable(f.lsn))) return;
              check ||= this.mark.incarnation !== readUnder;
            }
            if (check) await this.checkOnDisk(f);
            this.delivered = f.lsn;
            yield { lsn: f.lsn, payload: f.payload, endOfUnit: f.endOfUnit, segment, offset: f.offset };
          }
          continue;
        }
        if (await this.nextSegment()) continue;
        this.checkBehind();
        if (!this.follow) return;
        await this.change.wait();
      }
    } finally {
      await this.durable?.close();
      this.change.close();
      await this.seg?.fh.close().catch(() => undefined);
      this.seg = null;
    }
  }

  /** Opens the segment holding fromLsn (waiting for the journal to appear when following). */
  private async openStart(): Promise<boolean> {
    const at = this.startAt;
    const atLsn = at?.lsn ?? this.fromLsn;
    if (at && atLsn <= this.fromLsn && at.segment <= atLsn && (await this.openSegment(at.segment))) {
      const seg = this.seg as OpenSegment;
      this.pos = at.offset;
      this.readPos = at.offset;
      this.scanner = new FrameScanner({ segment: seg.name, startOffset: at.offset, expectLsn: atLsn });
      return true;
    }
    for (;;) {
      if (this.signal?.aborted) return false;
      const segs = await listSegments(this.dir);
      const oldest = segs[0];
      if (oldest === undefined) {
        this.checkBehind();
        if (!this.follow) return false;
        await this.change.wait();
        continue;
      }
      if (this.fromLsn > 1n && this.fromLsn < oldest) {
        throw new TidemarkError(
          `journal ${this.dir}: LSN ${this.fromLsn} is no longer retained (oldest segment starts at ${oldest})`,
          { code: 'JOURNAL_GONE', retriable: false, context: { dir: this.dir, fromLsn: this.fromLsn, oldest } },
        );
      }
      let start = oldest;
      for (const s of segs) if (s <= this.fromLsn) start = s;
      if (await this.openSegment(start)) return true;
      // Removed between listing and opening (retention): list again.
    }
  }

  private async openSegment(first: bigint): Promise<boolean> {
    let fh: FileHandle;
    try {
      fh = await open(segmentPath(this.dir, first), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    await this.seg?.fh.close().catch(() => undefined);
    const name = segmentFileName(first);
    this.seg = { first, name, fh };
    this.pos = 0;
    this.readPos = 0;
    this.retried = false;
    this.scanner = new FrameScanner({ segment: name, expectLsn: first });
    return true;
  }

  private resetScan(): void {
    const seg = this.seg as OpenSegment;
    // The scanner's offset is always this.pos (the end of its last complete frame), so its nextLsn is the LSN
    // of the frame starting there.
    const expectLsn = this.scanner?.nextLsn ?? seg.first;
    this.scanner = new FrameScanner({ segment: seg.name, startOffset: this.pos, expectLsn });
    this.readPos = this.pos;
  }

  /** Reads the next chunk of the current segment; frames completed by it, or null at the current end. */
  private async readChunk(): Promise<ScannedFrame[] | null> {
    const seg = this.seg as OpenSegment;
    const size = fstatSync(seg.fh.fd).size;
    if (size < this.readPos) {
      if (size < this.pos) {
        this.checkTruncations();
        throw new JournalTruncatedError(
          `journal segment ${seg.name} shrank to ${size} bytes, below the ${this.pos} bytes of frames already read`,
          { dir: this.dir, deliveredLsn: this.delivered },
        );
      }
      // A torn tail we had not delivered was cut off (writer recovery): scan again from the last frame.
      this.resetScan();
    }
    if (size === this.readPos) return null;
    const want = Math.min(this.chunkBytes, size - this.readPos);
    const buf = new Uint8Array(want);
    // The read goes through the thread pool while the size and TRUNCATIONS checks around it are synchronous stats
    // (microseconds; each promise round trip cost two context switches on the 2-core machine: 13 % of a shipping
    // process's busy main thread at 2k tx/s went to the TRUNCATIONS stat, issue #15). Synchronous reads (with the
    // writer's writev) cost the OLTP spine's run process 20-35 % more CPU: a reader that never yields while the
    // writer appends wakes once per small write instead of taking several at once.
    const { bytesRead } = await seg.fh.read(buf, 0, want, this.readPos);
    if (bytesRead === 0) return null;
    // Whatever was read is only trusted if no truncation was recorded meanwhile (checked after the read).
    this.checkTruncations();
    this.readPos += bytesRead;
    const scanner = this.scanner as FrameScanner;
    let frames: ScannedFrame[];
    try {
      frames = scanner.push(buf.subarray(0, bytesRead));
    } catch (err) {
      if (!(err instanceof CorruptionError) || this.retried) throw err;
      this.log.debug({ segment: seg.name, offset: this.pos }, 'journal reader: damage seen, scanning again');
      this.retried = true;
      this.resetScan();
      return [];
    }
    if (frames.length > 0) {
      this.pos = scanner.offset;
      this.retried = false;
    }
    return frames;
  }

  /**
   * Throws JournalTruncatedError when a truncation recorded since the last check removed frames this reader
   * delivered or holds (`held`: the lowest held LSN), or, with sinceEpoch, when any truncation came after it.
   */
  private checkTruncations(force = false, held?: bigint): void {
    const stamp = truncationsStamp(this.dir);
    if (stamp === this.stamp && !force) return;
    this.stamp = stamp;
    const events = readTruncations(this.dir);
    const to = truncatedSince(events, this.epoch);
    this.epoch = Math.max(this.epoch, latestEpoch(events));
    if (to === null) return;
    const seen = this.delivered > this.fromLsn - 1n ? this.delivered : this.fromLsn - 1n;
    if (to < seen || this.sinceEpoch !== undefined || (held !== undefined && to < held)) {
      const what =
        to < seen
          ? `but this reader had delivered up to ${seen}`
          : this.sinceEpoch !== undefined
            ? `after epoch ${this.sinceEpoch}`
            : `removing LSN ${held}, read and held until durable`;
      throw new JournalTruncatedError(`journal ${this.dir}: the writer truncated to LSN ${to} ${what}`, {
        dir: this.dir,
        deliveredLsn: seen,
        truncatedToLsn: to,
      });
    }
  }

  /** At the end of the current segment: switches to the next one if it exists. */
  private async nextSegment(): Promise<boolean> {
    const scanner = this.scanner as FrameScanner;
    const seg = this.seg as OpenSegment;
    const next = scanner.nextLsn ?? seg.first;
    // Inside a partly written frame: it completes, unless recovery removed the file meanwhile.
    if (scanner.pendingBytes !== 0 || next === seg.first) return this.checkLayout(next, scanner.pendingBytes !== 0);
    if (statSync(segmentPath(this.dir, next), { throwIfNoEntry: false }) === undefined) return this.checkLayout(next);
    // The writer completes a segment before creating the next: read what it appended meanwhile first.
    if (fstatSync(seg.fh.fd).size > this.readPos) return true;
    if (!(await this.openSegment(next))) return false;
    this.log.debug({ segment: segmentFileName(next) }, 'journal reader: next segment');
    return true;
  }

  /**
   * At the end of the last segment (`partial`: inside a frame not yet complete), at most once a second while
   * following (it lists the directory):
   *   - the open file must still be the segment's file; if it was deleted or replaced, a segment we read frames
   *     from is a truncation, an empty one is reopened where the next LSN now lives;
   *   - if a segment later than the expected next one exists, frames are missing → CorruptionError (unless the
   *     open segment grew meanwhile: the writer filled it before creating the later one; read on first).
   * Returns true when it switched files, or when the open segment has more to read.
   */
  private async checkLayout(next: bigint, partial = false): Promise<boolean> {
    const now = performance.now();
    if (this.follow && now - this.layoutCheckedAt < 1000) return false;
    this.layoutCheckedAt = now;
    const seg = this.seg as OpenSegment;
    let replaced: boolean;
    try {
      const [onDisk, open] = await Promise.all([
        stat(segmentPath(this.dir, seg.first), { bigint: true }),
        seg.fh.stat({ bigint: true }),
      ]);
      replaced = onDisk.ino !== open.ino || onDisk.dev !== open.dev;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      replaced = true;
    }
    if (!replaced && partial) return false;
    const segs = await listSegments(this.dir);
    if (replaced) {
      // Frames delivered from earlier segments may be gone too (a unit cut across segments).
      this.checkTruncations();
      if (this.pos > 0) {
        throw new JournalTruncatedError(`journal segment ${seg.name} was removed or replaced after it was read`, {
          dir: this.dir,
          deliveredLsn: this.delivered,
        });
      }
      let start: bigint | undefined;
      for (const s of segs) if (s <= next) start = s;
      this.log.debug({ segment: seg.name }, 'journal reader: segment file replaced; reopening');
      // An empty journal that restarted at a later LSN (a mirror's first frame): start over where it now begins.
      if (start === undefined) return segs.length > 0 && this.delivered === 0n && this.openStart();
      return this.openSegment(start);
    }
    const later = segs.filter((s) => s > seg.first);
    const first = later[0];
    if (partial || first === undefined || later.includes(next) || next === seg.first) return false;
    // The writer completes a segment before it creates the next: frames appended to this one after our last read
    // (and before the listing showed the later segment) are visible now. Read them before calling anything missing.
    if (fstatSync(seg.fh.fd).size > this.readPos) return true;
    const why = first > next ? `frames ${next}..${first - 1n} are missing` : 'the segments overlap';
    throw new CorruptionError(
      `journal ${this.dir}: segment ${seg.name} ends at LSN ${next - 1n} but the next segment is ` +
        `${segmentFileName(first)} (${why})`,
      { segment: seg.name, offset: this.pos },
    );
  }

  /** Caught up: a journal that ends before fromLsn - 1 has lost acknowledged frames. */
  private checkBehind(): void {
    const head = this.scanner ? (this.scanner.nextLsn ?? (this.seg as OpenSegment).first) - 1n : 0n;
    if (this.scanner && this.scanner.pendingBytes > 0) return;
    if (this.fromLsn - 1n > head) {
      throw new TidemarkError(
        `journal ${this.dir}: it ends at LSN ${head} but reading was asked to start at ${this.fromLsn} ` +
          '(acknowledged frames are missing: the journal lost data after an OS crash, or was replaced)',
        { code: 'JOURNAL_BEHIND', retriable: false, context: { dir: this.dir, head, fromLsn: this.fromLsn } },
      );
    }
  }

  /**
   * durableOnly: waits until the durable mark reaches `lsn`. False when the iteration should end instead (aborted,
   * or not following).
   */
  private async awaitDurable(lsn: bigint): Promise<boolean> {
    const durable = this.durable as DurableMarkReader;
    for (;;) {
      this.mark = await durable.read();
      if (this.mark.lsn >= lsn) break;
      if (this.signal?.aborted || !this.follow) return false;
      await this.change.wait();
      this.checkTruncations(false, lsn);
    }
    this.checkTruncations(false, lsn);
    return true;
  }

  /**
   * A frame read under an earlier writer incarnation may have been replaced by the writer that recovered: deliver
   * it only if the segment file at its path still holds the same frame header (with the frame's CRC) there.
   */
  private async checkOnDisk(f: ScannedFrame): Promise<void> {
    const seg = this.seg as OpenSegment;
    if (await frameOnDisk(this.dir, seg.first, f)) return;
    throw new JournalTruncatedError(
      `journal segment ${seg.name}: frame LSN ${f.lsn}, read before the writer recovered, is no longer on disk`,
      { dir: this.dir, deliveredLsn: this.delivered },
    );
  }

  /** A segment, TRUNCATIONS and, when durableOnly, DURABLE are what can change what this reader may deliver. */
  private wakesOn(name: string): boolean {
    return (
      name.endsWith(SEGMENT_SUFFIX) || name === TRUNCATIONS_FILE || (this.durable !== null && name === DURABLE_FILE)
    );
  }
}
