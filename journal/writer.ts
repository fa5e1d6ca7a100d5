/**
 * The single journal writer: appends frames to segment files with buffered writes, rotation, fsync policy and
 * backpressure. The write queue, pump, syncs and rotation are in pipeline.ts (which this class extends);
 * recovery on open in recovery.ts; the directory lock in lock.ts; the identity file in identity.ts; the durable
 * mark in durable.ts. append() assigns the LSN at once and queues the frame; an end-of-unit frame resolves once
 * durable under the fsync policy.
 *
 * Mirror mode (a standby's copy of a source journal, opened with mirrorOf): frames arrive with the source's
 * LSNs through appendAt(); sync() is the durability barrier the receiver acknowledges after; truncateTo() cuts
 * frames the source took back. Recovery on open is the same as for a source journal.
 */
import { mkdir } from 'node:fs/promises';
import { silentLogger } from '../core/log.ts';
import { TidemarkError } from '../core/errors.ts';
import type { JournalFrame, JournalWriterOptions } from './api.ts';
import { DurableMark } from './durable.ts';
import { HEADER_BYTES, MAX_PAYLOAD } from './frame.ts';
import { ensureIdentity, type JournalIdentity, writeIdentity } from './identity.ts';
import { DirLock } from './lock.ts';
import { WritePipeline } from './pipeline.ts';
import { JournalReader } from './reader.ts';
import { applyRecovery, planCut } from './recovery.ts';
import { segmentFileName } from './segments.ts';

export class JournalWriter extends WritePipeline {
  private readonly lock: DirLock;
  private ident: JournalIdentity;
  private cutting = false;
  private closed = false;

  private constructor(opts: JournalWriterOptions, lock: DirLock, mark: DurableMark, ident: JournalIdentity) {
    super(opts, mark);
    this.lock = lock;
    this.ident = ident;
  }

  get identity(): JournalIdentity {
    return this.ident;
  }

  /**
   * Locks the directory (creating it if needed), makes sure it has an identity (creating it, or checking a
   * mirror's source), recovers its tail and opens the last segment for appending.
   */
  static async open(opts: JournalWriterOptions): Promise<JournalWriter> {
    if (!(opts.segmentBytes > HEADER_BYTES)) {
      throw new TidemarkError(`journal: segmentBytes must exceed ${HEADER_BYTES}`, { code: 'CONFIG' });
    }
    if (opts.fsync !== 'transaction' && opts.fsync !== 'group') {
      throw new TidemarkError(`journal: unknown fsync policy "${opts.fsync}"`, { code: 'CONFIG' });
    }
    if (opts.startLsn !== undefined && opts.startLsn < 1n) {
      throw new TidemarkError(`journal: startLsn must be ≥ 1`, { code: 'CONFIG' });
    }
    const log = opts.log ?? silentLogger;
    await mkdir(opts.dir, { recursive: true });
    const lock = await DirLock.acquire(opts.dir, log);
    let mark: DurableMark | null = null;
    try {
      const ident = await ensureIdentity(opts.dir, opts.mirrorOf, log);
      mark = await DurableMark.open(opts.dir);
      const w = new JournalWriter(opts, lock, mark, ident);
      await w.load(opts.startLsn ?? 1n);
      log.info(
        { dir: opts.dir, headLsn: w.headLsn.toString(), segment: segmentFileName(w.segFirst), id: ident.id },
        'journal writer opened',
      );
      return w;
    } catch (err) {
      await mark?.close().catch(() => undefined);
      await lock.release();
      throw err;
    }
  }

  /**
   * Appends a frame and returns its LSN. An end-of-unit frame resolves once durable under the fsync policy;
   * other frames resolve at once, or when the write queue has drained below maxPendingBytes.
   */
  append(payload: Uint8Array, endOfUnit: boolean): Promise<bigint> {
    const bad =
      this.refusal(payload) ??
      (this.ident.mirror
        ? new TidemarkError(
            `journal ${this.dir} mirrors journal ${this.ident.mirror.of}: append frames with appendAt`,
            {
              code: 'JOURNAL_MIRROR',
            },
          )
        : null);
    if (bad) return Promise.reject(bad);
    const lsn = this.nextLsn;
    this.enqueue(lsn, payload, endOfUnit, false);
    if (endOfUnit) return new Promise((resolve, reject) => this.waiters.push({ lsn, resolve, reject }));
    return this.room(lsn);
  }

  /**
   * Mirror journals: appends a frame at the source's LSN, which must be head + 1. An LSN at or below the head is
   * a resend: skipped when the stored frame is identical, an error otherwise. An empty journal starts at any LSN
   * (its empty segment is replaced by one named by that LSN). Resolves once queued (waiting only under
   * backpressure), not when durable: sync() is the durability barrier, for mid-unit frames too.
   */
  appendAt(lsn: bigint, payload: Uint8Array, endOfUnit: boolean): Promise<bigint> {
    const bad =
      this.refusal(payload) ??
      (this.ident.mirror
        ? null
        : new TidemarkError(`journal ${this.dir} is a source journal, not a mirror: appendAt is for mirrors`, {
            code: 'JOURNAL_MIRROR',
          }));
    if (bad) return Promise.reject(bad);
    const head = this.headLsn;
    if (lsn === head + 1n || (this.empty && lsn >= 1n)) {
      this.enqueue(lsn, payload, endOfUnit, lsn !== head + 1n);
      return this.room(lsn);
    }
    if (lsn >= 1n && lsn <= head) return this.resend(lsn, head, payload, endOfUnit);
    return Promise.reject(
      new TidemarkError(
        `journal ${this.dir}: frame LSN ${lsn} does not follow the head LSN ${head} (${head + 1n} is next)`,
        {
          code: 'JOURNAL_LSN_GAP',
          context: { dir: this.dir, lsn, head },
        },
      ),
    );
  }

  /** Durability barrier: every frame appended so far, mid-unit ones included, is fdatasynced. Returns syncedLsn. */
  async sync(): Promise<bigint> {
    await this.flush();
    return this.synced;
  }

  /**
   * Cuts the journal back to `toLsn`: frames above it are removed, with a truncation event recorded first (so
   * readers that delivered them start again), and appending continues at toLsn + 1. If toLsn does not end a
   * unit, recovery cuts further back to the unit end before it. For a mirror whose source took frames back.
   */
  async truncateTo(toLsn: bigint): Promise<void> {
    if (this.closed) throw this.closedError();
    await this.flush();
    if (toLsn >= this.headLsn) return;
    const plan = await planCut(this.dir, toLsn);
    this.cutting = true;
    try {
      if (toLsn < this.durableUnit) await this.mark.write(toLsn);
      await this.fh.close();
      await applyRecovery(this.dir, plan, this.log, `above LSN ${toLsn} (cut back on request)`);
      await this.load(toLsn + 1n);
    } catch (err) {
      this.fail(err);
      throw this.failure;
    } finally {
      this.cutting = false;
    }
  }

  /** Mirror journals: records the source truncation epoch reconciled last (mirror.ts), durably. */
  async setSourceEpoch(epoch: number): Promise<void> {
    const m = this.ident.mirror;
    if (!m || m.sourceEpoch === epoch) return;
    const next: JournalIdentity = { ...this.ident, mirror: { of: m.of, sourceEpoch: epoch } };
    await writeIdentity(this.dir, next);
    this.ident = next;
  }

  /**
   * Mirror journals: the source journal `of` continues the one this mirror copied (it branched at or above this
   * mirror's head; see branch.ts adoptBranch): from now on this mirrors `of`, with `epoch` as the source
   * truncation epoch reconciled. Durable before it resolves.
   */
  async adoptSource(of: string, epoch: number): Promise<void> {
    const m = this.ident.mirror;
    if (!m) {
      throw new TidemarkError(`journal ${this.dir} is a source journal, not a mirror: it adopts no source`, {
        code: 'JOURNAL_MIRROR',
      });
    }
    await this.replaceIdentity({ ...this.ident, mirror: { of, sourceEpoch: epoch } });
  }

  /**
   * Journal lineage (branch.ts): rewrites the JOURNAL file durably, under this writer's lock, and continues under
   * the new identity (a mirror promoted to a source journal, or a source journal demoted to a mirror).
   */
  async replaceIdentity(next: JournalIdentity): Promise<void> {
    if (this.closed) throw this.closedError();
    await this.flush();
    await writeIdentity(this.dir, next);
    this.ident = next;
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
      await this.mark.close().catch(() => undefined);
      await this.lock.release();
    }
  }

  private refusal(payload: Uint8Array): Error | null {
    if (this.failure) return this.failure;
    if (this.closed) return this.closedError();
    if (this.cutting) {
      return new TidemarkError(`journal ${this.dir}: a truncation is in progress`, { code: 'JOURNAL_BUSY' });
    }
    if (payload.length > MAX_PAYLOAD) {
      return new TidemarkError(`journal: frame payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD}`, {
        code: 'JOURNAL_FRAME_TOO_LARGE',
      });
    }
    return null;
  }

  private closedError(): Error {
    return new TidemarkError(`journal ${this.dir}: writer is closed`, { code: 'JOURNAL_CLOSED' });
  }

  /** appendAt of an LSN already stored: fine only with the very same frame. */
  private async resend(lsn: bigint, head: bigint, payload: Uint8Array, endOfUnit: boolean): Promise<bigint> {
    await this.flush();
    const stored = await readStoredFrame(this.dir, lsn);
    if (stored && stored.endOfUnit === endOfUnit && Buffer.compare(stored.payload, payload) === 0) return lsn;
    throw new TidemarkError(
      `journal ${this.dir}: frame LSN ${lsn} was sent again but ${stored ? 'differs from the frame stored there' : 'is no longer stored'} ` +
        `(head LSN ${head}): the source rewrote LSNs this mirror holds`,
      { code: 'JOURNAL_MIRROR_MISMATCH', context: { dir: this.dir, lsn, head } },
    );
  }
}

/** The stored frame of LSN `lsn`, found by a sequential scan of its segment; null when the journal lacks it. */
async function readStoredFrame(dir: string, lsn: bigint): Promise<JournalFrame | null> {
  for await (const f of new JournalReader({ dir, fromLsn: lsn, follow: false })) {
    return f.lsn === lsn ? { lsn: f.lsn, payload: f.payload.slice(), endOfUnit: f.endOfUnit } : null;
  }
  return null;
}
