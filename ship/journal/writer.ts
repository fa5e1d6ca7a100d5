/**
 * The single journal writer: appends frames to segment files with buffered writes, rotation, fsync policy and
 * backpressure. Recovery on open is in recovery.ts; the directory lock in lock.ts.
 *
 * Pipeline: append() assigns the LSN at once and adds the frame to the open batch (small frames are copied into
 * a 256 KiB slab, large payloads are referenced, not copied: do not modify a payload after appending it). One
 * pump loop writes whole batches with a single writev and then fdatasyncs when a unit waits:
 *   transaction  as soon as an end-of-unit frame is written (units written together share the sync)
 *   group        at most once per groupCommitMs, or at once when groupSyncBytes are unsynced
 * A rotation syncs the old segment, creates the new one (O_EXCL) and fsyncs the directory.
 * After any I/O error the writer is failed: every waiting and later append rejects; reopen to recover.
 */
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import type { Logger } from 'pino';
import { silentLogger } from '../../cli/log.ts';
import { TidemarkError } from '../../record/errors.ts';
import type { FsyncPolicy, JournalWriterOptions } from './api.ts';
import { HEADER_BYTES, MAX_PAYLOAD, writeFrameHeader } from './frame.ts';
import { DirLock } from './lock.ts';
import { applyRecovery, inspectTail } from './recovery.ts';
import { fsyncDir, segmentFileName, segmentPath } from './segments.ts';

const SLAB_BYTES = 256 << 10;
const COPY_MAX = 32 << 10;
const IOV_GROUP = 512;

/** Frames queued for one segment, as buffers ready for writev. */
class Batch {
  readonly parts: Uint8Array[] = [];
  bytes = 0;
  lastLsn = 0n;
  /** Set when this batch starts a new segment (its first LSN). */
  readonly newSegment: bigint | null;
  private slab: Uint8Array | null = null;
  private slabStart = 0;
  private slabPos = 0;

  constructor(newSegment: bigint | null) {
    this.newSegment = newSegment;
  }

  add(lsn: bigint, endOfUnit: boolean, payload: Uint8Array): void {
    const copy = payload.length <= COPY_MAX;
    const need = HEADER_BYTES + (copy ? payload.length : 0);
    if (!this.slab || this.slabPos + need > this.slab.length) {
      this.seal();
      this.slab = new Uint8Array(Math.max(SLAB_BYTES, need));
      this.slabStart = 0;
      this.slabPos = 0;
    }
    writeFrameHeader(this.slab, this.slabPos, lsn, endOfUnit, payload);
    this.slabPos += HEADER_BYTES;
    if (copy) {
      this.slab.set(payload, this.slabPos);
      this.slabPos += payload.length;
    } else {
      this.seal();
      this.parts.push(payload);
    }
    this.bytes += HEADER_BYTES + payload.length;
    this.lastLsn = lsn;
  }

  seal(): void {
    if (this.slab && this.slabPos > this.slabStart) {
      this.parts.push(this.slab.subarray(this.slabStart, this.slabPos));
      this.slabStart = this.slabPos;
    }
  }
}

interface Waiter {
  lsn: bigint;
  resolve: (lsn: bigint) => void;
  reject: (err: Error) => void;
}

export class JournalWriter {
  readonly dir: string;
  readonly policy: FsyncPolicy;
  private readonly groupMs: number;
  private readonly segmentBytes: number;
  private readonly maxPending: number;
  private readonly groupSyncBytes: number;
  private readonly log: Logger;
  private readonly lock: DirLock;

  private fh: FileHandle;
  private segFirst: bigint;
  /** Bytes of the current segment including queued frames (decides rotation). */
  private segSize: number;
  /** Bytes of the current segment actually written. */
  private segWritten: number;

  private nextLsn: bigint;
  private writtenLsn: bigint;
  private syncedLsn: bigint;
  private lastUnit: Uint8Array | null;

  private readonly queue: Batch[] = [];
  private queuedBytes = 0;
  private unsyncedBytes = 0;
  private readonly waiters: Waiter[] = [];
  private roomWaiters: (() => void)[] = [];
  private forceSyncTo = 0n;
  private pumping = false;
  private timer: NodeJS.Timeout | null = null;
  private lastSyncAt = Number.NEGATIVE_INFINITY;
  private readonly counters = { writes: 0, bytesWritten: 0, fsyncs: 0, rotations: 0 };
  private failure: Error | null = null;
  private closed = false;

  private constructor(
    opts: JournalWriterOptions,
    lock: DirLock,
    fh: FileHandle,
    seg: { first: bigint; size: number },
    head: bigint,
    lastUnit: Uint8Array | null,
  ) {
    this.dir = opts.dir;
    this.policy = opts.fsync;
    this.groupMs = opts.groupCommitMs;
    this.segmentBytes = opts.segmentBytes;
    this.maxPending = opts.maxPendingBytes ?? 4 << 20;
    this.groupSyncBytes = opts.groupSyncBytes ?? 8 << 20;
    this.log = opts.log ?? silentLogger;
    this.lock = lock;
    this.fh = fh;
    this.segFirst = seg.first;
    this.segSize = seg.size;
    this.segWritten = seg.size;
    this.nextLsn = head + 1n;
    this.writtenLsn = head;
    this.syncedLsn = head;
    this.lastUnit = lastUnit;
  }

  /** Locks the directory (creating it if needed), recovers its tail and opens the last segment for appending. */
  static async open(opts: JournalWriterOptions): Promise<JournalWriter> {
    if (!(opts.segmentBytes > HEADER_BYTES)) {
      throw new TidemarkError(`journal: segmentBytes must exceed ${HEADER_BYTES}`, { code: 'CONFIG' });
    }
    if (opts.fsync !== 'transaction' && opts.fsync !== 'group') {
      throw new TidemarkError(`journal: unknown fsync policy "${opts.fsync}"`, { code: 'CONFIG' });
    }
    const log = opts.log ?? silentLogger;
    await mkdir(opts.dir, { recursive: true });
    const lock = await DirLock.acquire(opts.dir, log);
    try {
      const tail = await inspectTail(opts.dir);
      await applyRecovery(opts.dir, tail, log);
      let first = tail.keepSegment;
      if (first === null) {
        first = 1n;
        await (await open(segmentPath(opts.dir, first), 'wx')).close();
        await fsyncDir(opts.dir);
      }
      const fh = await open(segmentPath(opts.dir, first), 'r+');
      const size = tail.keepSegment === null ? 0 : tail.keepBytes;
      log.info(
        { dir: opts.dir, headLsn: tail.headLsn.toString(), segment: segmentFileName(first) },
        'journal writer opened',
      );
      return new JournalWriter(opts, lock, fh, { first, size }, tail.headLsn, tail.lastUnitPayload);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** LSN of the last appended frame (0n for an empty journal). */
  get headLsn(): bigint {
    return this.nextLsn - 1n;
  }

  /** LSN up to which frames are known to be on stable storage. */
  get durableLsn(): bigint {
    return this.syncedLsn;
  }

  /** Counters since open (for metrics and benchmarks): write calls, bytes written, fdatasyncs, rotations. */
  get stats(): Readonly<{ writes: number; bytesWritten: number; fsyncs: number; rotations: number }> {
    return { ...this.counters };
  }

  /** Payload of the last end-of-unit frame (appended in this session, else found on open), or null. */
  lastUnitPayload(): Uint8Array | null {
    return this.lastUnit;
  }

  /**
   * Appends a frame and returns its LSN. An end-of-unit frame resolves once durable under the fsync policy;
   * other frames resolve at once, or when the write queue has drained below maxPendingBytes.
   */
  append(payload: Uint8Array, endOfUnit: boolean): Promise<bigint> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(this.closedError());
    if (payload.length > MAX_PAYLOAD) {
      return Promise.reject(
        new TidemarkError(`journal: frame payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD}`, {
          code: 'JOURNAL_FRAME_TOO_LARGE',
        }),
      );
    }
    const lsn = this.nextLsn++;
    const size = HEADER_BYTES + payload.length;
    let batch = this.queue[this.queue.length - 1];
    if (this.segSize > 0 && this.segSize + size > this.segmentBytes) {
      batch = new Batch(lsn);
      this.queue.push(batch);
      this.segSize = 0;
    } else if (!batch) {
      batch = new Batch(null);
      this.queue.push(batch);
    }
    batch.add(lsn, endOfUnit, payload);
    this.segSize += size;
    this.queuedBytes += size;
    if (endOfUnit) this.lastUnit = payload;
    this.kick();
    if (endOfUnit) return new Promise((resolve, reject) => this.waiters.push({ lsn, resolve, reject }));
    if (this.queuedBytes > this.maxPending) {
      return new Promise((resolve, reject) => {
        this.roomWaiters.push(() => (this.failure ? reject(this.failure) : resolve(lsn)));
      });
    }
    return Promise.resolve(lsn);
  }

  /** Resolves when every frame appended so far is written and fdatasynced. */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const upTo = this.nextLsn - 1n;
    if (this.syncedLsn >= upTo) return Promise.resolve();
    if (upTo > this.forceSyncTo) this.forceSyncTo = upTo;
    const p = new Promise<bigint>((resolve, reject) => this.waiters.push({ lsn: upTo, resolve, reject }));
    this.kick();
    return p.then(() => undefined);
  }

  /** Flushes, closes the segment and releases the lock. Further appends reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.failure) await this.flush();
    } finally {
      this.closed = true;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      await this.fh.close().catch(() => undefined);
      await this.lock.release();
    }
  }

  private closedError(): Error {
    return new TidemarkError(`journal ${this.dir}: writer is closed`, { code: 'JOURNAL_CLOSED' });
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
          if (batch.newSegment !== null) await this.rotate(batch.newSegment);
          batch.seal();
          await this.writeParts(batch.parts, batch.bytes);
          this.queuedBytes -= batch.bytes;
          this.unsyncedBytes += batch.bytes;
          this.writtenLsn = batch.lastLsn;
          this.releaseRoom();
          if (this.syncDue()) await this.sync();
          continue;
        }
        if (this.syncDue()) {
          await this.sync();
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
    if (this.policy === 'transaction' || this.forceSyncTo > this.syncedLsn) return true;
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

  private async sync(): Promise<void> {
    const upTo = this.writtenLsn;
    this.lastSyncAt = performance.now();
    if (this.unsyncedBytes > 0) {
      await this.fh.datasync();
      this.counters.fsyncs++;
    }
    this.unsyncedBytes = 0;
    this.markSynced(upTo);
  }

  private markSynced(upTo: bigint): void {
    if (upTo > this.syncedLsn) this.syncedLsn = upTo;
    let n = 0;
    while (n < this.waiters.length && (this.waiters[n] as Waiter).lsn <= upTo) n++;
    for (const w of this.waiters.splice(0, n)) w.resolve(w.lsn);
  }

  private async rotate(first: bigint): Promise<void> {
    this.counters.rotations++;
    if (this.unsyncedBytes > 0) {
      await this.fh.datasync();
      this.counters.fsyncs++;
    }
    this.unsyncedBytes = 0;
    this.markSynced(this.writtenLsn);
    await this.fh.close();
    const old = this.segFirst;
    this.fh = await open(segmentPath(this.dir, first), 'wx');
    this.segFirst = first;
    this.segWritten = 0;
    await fsyncDir(this.dir);
    this.log.debug({ from: segmentFileName(old), to: segmentFileName(first) }, 'journal segment rotated');
  }

  private async writeParts(parts: Uint8Array[], total: number): Promise<void> {
    let at = this.segWritten;
    for (let i = 0; i < parts.length; i += IOV_GROUP) {
      let group = parts.slice(i, i + IOV_GROUP);
      let want = group.reduce((n, p) => n + p.length, 0);
      while (want > 0) {
        const { bytesWritten } = await this.fh.writev(group, at);
        this.counters.writes++;
        this.counters.bytesWritten += bytesWritten;
        at += bytesWritten;
        want -= bytesWritten;
        if (want > 0) group = dropPrefix(group, bytesWritten);
      }
    }
    if (at - this.segWritten !== total) throw new Error(`journal: wrote ${at - this.segWritten} of ${total} bytes`);
    this.segWritten = at;
  }

  private releaseRoom(): void {
    if (this.queuedBytes > this.maxPending || this.roomWaiters.length === 0) return;
    const ws = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of ws) w();
  }

  private fail(err: unknown): void {
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

function dropPrefix(parts: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = n;
  for (const p of parts) {
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    out.push(skip > 0 ? p.subarray(skip) : p);
    skip = 0;
  }
  return out;
}
