/**
 * Where the apply loop's journal reader starts without scanning the segment from its beginning (issue #15: after
 * a bulk catch-up the last segment holds ~55 MB, and the apply start scanned it twice — the newer-baseline check
 * and the reader itself — while capture, on the same thread, was already streaming: the spine bench's OLTP
 * catch-up after its bulk began applying ~0.4 s after capture).
 *
 * The apply cursor (`apply:<target>`, journal/cursors.ts) records where the frame of its LSN starts; the loop
 * learns that from the commit frames it reads (CommitFrames). At the next start the hint is used only once the
 * frame there is read back with the cursor's LSN (readFrameAt: header and payload checksums), and only when it
 * is at or before the frame to start from; anything else is a lost hint, never an error: the reader then scans.
 */
import type { Logger } from 'pino';
import { describeChain } from '../core/errors.ts';
import {
  type CursorStore,
  decodeFrame,
  type FrameAt,
  type JournalEntry,
  type JournalFrame,
  readFrameAt,
} from '../journal/index.ts';

/** A reader's start: frame `lsn` begins at `offset` of segment `segment` (JournalReaderOptions.startAt). */
export interface StartHint extends FrameAt {
  readonly lsn: bigint;
  /** The frame found there. */
  readonly frame: JournalFrame;
}

/** The cursor's hint for a reader starting at `fromLsn`, checked against the journal, or undefined. */
export async function resumeHint(
  dir: string,
  cursors: CursorStore,
  name: string,
  fromLsn: bigint,
  log: Logger,
): Promise<StartHint | undefined> {
  const c = await cursors.read(name).catch(() => null);
  if (!c?.at || c.lsn < 1n || c.lsn >= fromLsn) return undefined;
  try {
    const frame = await readFrameAt(dir, c.at.segment, c.at.offset, c.lsn);
    return { lsn: c.lsn, segment: c.at.segment, offset: c.at.offset, frame };
  } catch (err) {
    log.debug({ err: describeChain(err), lsn: c.lsn.toString() }, 'apply cursor position hint not usable: scanning');
    return undefined;
  }
}

/** How many recent commit frames CommitFrames remembers (a group commits at most a few frames behind the read). */
const REMEMBERED = 16;

/** The locations of the last commit frames read. */
export class CommitFrames {
  readonly #lsn: bigint[] = new Array(REMEMBERED).fill(-1n);
  readonly #at: (FrameAt | undefined)[] = new Array(REMEMBERED).fill(undefined);
  #next = 0;

  note(f: JournalFrame): void {
    if (f.segment === undefined || f.offset === undefined) return;
    this.#lsn[this.#next] = f.lsn;
    this.#at[this.#next] = { segment: f.segment, offset: f.offset };
    this.#next = (this.#next + 1) % REMEMBERED;
  }

  /** Where commit frame `lsn` starts, if it is among the last ones read. */
  at(lsn: bigint): FrameAt | undefined {
    const i = this.#lsn.indexOf(lsn);
    return i < 0 ? undefined : this.#at[i];
  }

  /** Decodes `frames` into entries (journal readEntries), noting each commit frame's location on the way. */
  async *entries(frames: AsyncIterable<JournalFrame>): AsyncGenerator<JournalEntry> {
    for await (const f of frames) {
      const e = decodeFrame(f);
      if (f.endOfUnit) this.note(f);
      yield e;
    }
  }
}
