/**
 * The journal writer's pipeline (JournalWriter in writer.ts extends it): the open segment and the LSN positions,
 * the write queue, and the one pump loop that writes whole batches with a single writev and then fdatasyncs when
 * a unit (or a flush) waits:
 *   transaction  as soon as an end-of-unit frame is written (units written together share the sync)
 *   group        at most once per groupCommitMs, or at once when groupSyncBytes are unsynced
 * A rotation syncs the old segment, creates the new one (O_EXCL) and fsyncs the directory. After every sync that
 * moved it, the durable mark (the highest synced LSN that ends a unit) is published in DURABLE (durable.ts).
 * After any I/O error the pipeline is failed: every waiting and later append rejects; reopen to recover.
 */
import { type FileHandle, open, unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { fsyncDir } from '../core/durable-file.ts';
import { silentLogger } from '../core/log.ts';
import { TidemarkError } from '../core/errors.ts';
import type { FsyncPolicy, JournalWriterOptions } from './api.ts';
import { Batch, writeParts } from './batch.ts';
import type { DurableMark } from './durable.ts';
import { HEADER_BYTES } from './frame.ts';
import { applyRecovery, inspectTail } from './recovery.ts';
import { segmentFileName, segmentPath } from './segments.ts';

interface Waiter {
  lsn: bigint;
  resolve: (lsn: bigint) => void;
  reject: (err: Error) => void;
}

export class WritePipeline {
  readonly dir: string;
  readonly policy: FsyncPolicy;
  private readonly groupMs: number;
  private readonly segmentBytes: number;
  private readonly maxPending: number;
  private readonly groupSyncBytes: number;
  protected readonly log: Logger;
  protected readonly mark: DurableMark;

  // Set by load(): the open segment and the LSN positions.
  protected fh!: FileHandle;
  protected segFirst!: bigint;
  /** Bytes of the current segment including queued frames (decides rotation). */
  private segSize!: number;
  /** Bytes of the current segment actually written. */
  private segWritten!: number;
  protected nextLsn!: bigint;
  private writtenLsn!: bigint;
  protected synced!: bigint;
  /** Highest written / synced LSN that ends a unit (the durable mark). */
  private writtenUnit!: bigint;
  protected durableUnit!: bigint;
  private lastUnit!: Uint8Array | null;
  /** No frame stored or queued: appendAt may start the journal at any LSN. */
  protected empty!: boolean;

  private readonly queue: Batch[] = [];
  private queuedBytes = 0;
  private unsyncedBytes = 0;
  protected readonly waiters: Waiter[] = [];
  private roomWaiters: (() => void)[] = [];
  private forceSyncTo = 0n;
  private pumping = false;
  protected timer: NodeJS.Timeout | null = null;
  private lastSyncAt = Number.NEGATIVE_INFINITY;
  private readonly counters = { writes: 0, bytesWritten: 0, fsyncs: 0, rotations: 0 };
  protected failure: Error | null = null;

  protected constructor(opts: JournalWriterOptions, mark: DurableMark) {
    this.dir = opts.dir;
    this.policy = opts.fsync;
    this.groupMs = opts.groupCommitMs;
    this.segmentBytes = opts.segmentBytes;
    this.maxPending = opts.maxPendingBytes ?? 4 << 20;
    this.groupSyncBytes = opts.groupSyncBytes ?? 8 << 20;
    this.log = opts.log ?? silentLogger;
    this.mark = mark;
  }

  /** Recovers the tail and opens the segment to continue in; on open and after truncateTo. */
  protected async load(startLsn: bigint): Promise<void> {
    const tail = await inspectTail(this.dir);
    await applyRecovery(this.dir, tail, this.log);
    let first = tail.keepSegment;
    if (first === null) {
      first = startLsn;
      await (await open(segmentPath(this.dir, first), 'wx')).close();
      await fsyncDir(this.dir);
    }
    const fh = await open(segmentPath(this.dir, first), 'r+');
    const size = tail.keepSegment === null ? 0 : tail.keepBytes;
    // What a crashed writer left in the page cache is not yet on stable storage: sync it before calling it durable.
    if (size > 0) await fh.datasync();
    const head = tail.keepSegment === null ? first - 1n : tail.headLsn;
    this.fh = fh;
    this.segFirst = first;
    this.segSize = size;
    this.segWritten = size;
    this.nextLsn = head + 1n;
    this.writtenLsn = head;
    this.synced = head;
    this.writtenUnit = head;
    this.durableUnit = head;
    this.lastUnit = tail.lastUnitPayload;
    this.empty = size === 0 && tail.segments.length - tail.dropSegments.length <= 1;
    this.mark.renew();
    await this.mark.write(head);
  }

  /** LSN of the last appended frame (0n for an empty journal; first LSN - 1 for one that starts later). */
  get headLsn(): bigint {
    return this.nextLsn - 1n;
  }

  /**
   * The durable mark: the highest LSN that is fdatasynced and ends a unit, i.e. that no crash can take back
   * (recovery keeps complete units). Other processes read it from the DURABLE file (durable.ts).
   */
  get durableLsn(): bigint {
    return this.durableUnit;
  }

  /** The highest LSN fdatasynced, unit end or not (what sync() resolves with). */
  get syncedLsn(): bigint {
    return this.synced;
  }

  /** True while the journal holds no frame (nothing stored, nothing queued). */
  get isEmpty(): boolean {
    return this.empty;
  }

  /** Counters since open (for metrics and benchmarks): write calls, bytes written, fdatasyncs, rotations. */
  get stats(): Readonly<{ writes: number; bytesWritten: number; fsyncs: number; rotations: number }> {
    return { ...this.counters };
  }

  /** Payload of the last end-of-unit frame (appended in this session, else found on open), or null. */
  lastUnitPayload(): Uint8Array | null {
    return this.lastUnit;
  }

  /** Resolves when every frame appended so far is written and fdatasynced. */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const upTo = this.nextLsn - 1n;
    if (this.synced >= upTo) return Promise.resolve();
    if (upTo > this.forceSyncTo) this.forceSyncTo = upTo;
    const p = new Promise<bigint>((resolve, reject) => this.waiters.push({ lsn: upTo, resolve, reject }));
    this.kick();
    return p.then(() => undefined);
  }

  /** Adds a frame to the write queue; `restart` starts an empty journal at `lsn` in a new segment. */
  protected enqueue(lsn: bigint, payload: Uint8Array, endOfUnit: boolean, restart: boolean): void {
    const size = HEADER_BYTES + payload.length;
    let batch = this.queue[this.queue.length - 1];
    if (restart || (this.segSize > 0 && this.segSize + size > this.segmentBytes)) {
      batch = new Batch(lsn, restart);
      this.queue.push(batch);
      this.segSize = 0;
    } else if (!batch) {
      batch = new Batch(null);
      this.queue.push(batch);
    }
    batch.add(lsn, endOfUnit, payload);
    this.segSize += size;
    this.queuedBytes += size;
    this.nextLsn = lsn + 1n;
    this.empty = false;
    if (endOfUnit) this.lastUnit = payload;
    this.kick();
  }

  /** Resolves with `lsn` at once, or once the write queue is below maxPendingBytes. */
  protected room(lsn: bigint): Promise<bigint> {
    if (this.queuedBytes <= this.maxPending) return Promise.resolve(lsn);
    return new Promise((resolve, reject) => {
      this.roomWaiters.push(() => (this.failure ? reject(this.failure) : resolve(lsn)));
    });
  }

  /** Starts the pump in a microtask, so frames appended in the same tick share a write. */
  private kick(): void {
    if (this.pumping) return;
    this.pumping = true;
    queueMicrotask(() => void this.pump());
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const batch = this.queue.shift();
        if (batch) {
          if (batch.newSegment !== null) await this.rotate(batch.newSegment, batch.replacesEmpty);
          batch.seal();
          this.segWritten = await writeParts(this.fh, batch.parts, this.segWritten, batch.bytes, this.counters);
          this.queuedBytes -= batch.bytes;
          this.unsyncedBytes += batch.bytes;
          this.writtenLsn = batch.lastLsn;
          if (batch.lastUnitEnd !== null) this.writtenUnit = batch.lastUnitEnd;
          this.releaseRoom();
          if (this.syncDue()) await this.syncNow();
          continue;
        }
        if (this.syncDue()) {
          await this.syncNow();
          continue;
        }
        this.scheduleGroupSync();
        return;
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.pumping = false;
    }
  }

  /** Whether a waiting unit (or flush) needs an fdatasync now. */
  private syncDue(): boolean {
    const first = this.waiters[0];
    if (!first || first.lsn > this.writtenLsn) return false;
    if (this.policy === 'transaction' || this.forceSyncTo > this.synced) return true;
    if (this.unsyncedBytes >= this.groupSyncBytes) return true;
    // Group commit: sync now if the previous sync started long enough ago, else when the timer fires; a backlog
    // of queued frames is written first so that the sync covers it.
    return this.queue.length === 0 && performance.now() - this.lastSyncAt >= this.groupMs;
  }

  private scheduleGroupSync(): void {
    const first = this.waiters[0];
    if (this.timer || !first || first.lsn > this.writtenLsn) return;
    const wait = Math.max(0, this.lastSyncAt + this.groupMs - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
    }, Math.ceil(wait));
  }

  private async syncNow(): Promise<void> {
    const upTo = this.writtenLsn;
    const unit = this.writtenUnit;
    this.lastSyncAt = performance.now();
    if (this.unsyncedBytes > 0) {
      await this.fh.datasync();
      this.counters.fsyncs++;
    }
    this.unsyncedBytes = 0;
    await this.markSynced(upTo, unit);
  }

  /** Frames up to `upTo` are on stable storage: publish the durable mark, resolve the waiters. */
  private async markSynced(upTo: bigint, unit: bigint): Promise<void> {
    if (unit > this.durableUnit) {
      this.durableUnit = unit;
      await this.mark.write(unit);
    }
    if (upTo > this.synced) this.synced = upTo;
    let n = 0;
    while (n < this.waiters.length && (this.waiters[n] as Waiter).lsn <= upTo) n++;
    for (const w of this.waiters.splice(0, n)) w.resolve(w.lsn);
  }

  private async rotate(first: bigint, replacesEmpty: boolean): Promise<void> {
    this.counters.rotations++;
    if (this.unsyncedBytes > 0) {
      await this.fh.datasync();
      this.counters.fsyncs++;
    }
    this.unsyncedBytes = 0;
    await this.markSynced(this.writtenLsn, this.writtenUnit);
    await this.fh.close();
    const old = this.segFirst;
    // An empty journal restarting at another LSN: its empty segment goes first, so that a crash in between leaves
    // an empty journal, never two segments that do not continue each other.
    if (replacesEmpty) await unlink(segmentPath(this.dir, old));
    this.fh = await open(segmentPath(this.dir, first), 'wx');
    this.segFirst = first;
    this.segWritten = 0;
    await fsyncDir(this.dir);
    this.log.debug({ from: segmentFileName(old), to: segmentFileName(first) }, 'journal segment rotated');
  }

  private releaseRoom(): void {
    if (this.queuedBytes > this.maxPending || this.roomWaiters.length === 0) return;
    const ws = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of ws) w();
  }

  protected fail(err: unknown): void {
    if (this.failure) return;
    const e = new TidemarkError(`journal ${this.dir}: write failed; reopen the journal to recover`, {
      code: 'JOURNAL_IO',
      retriable: false,
      cause: err,
      context: { dir: this.dir, segment: segmentFileName(this.segFirst) },
    });
    this.failure = e;
    this.log.error({ err, dir: this.dir }, 'journal write failed');
    for (const w of this.waiters.splice(0)) w.reject(e);
    const ws = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of ws) w();
    this.queue.length = 0;
  }
}
