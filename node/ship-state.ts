/**
 * What the primary site's shippers leave in the journal directory for other processes (`tidemark status`,
 * `tidemark ship pause|resume`), under `<journal>/ship/`:
 *
 *   <standby>.json     the link as the running shipper sees it, rewritten about once a second (atomically)
 *   <standby>.paused   present while the standby is paused (`tidemark ship pause`); the shipper stops, its cursor
 *                      stays, so the journal keeps what the standby still needs
 *   <standby>.dropped  present once the standby passed ship.cap_bytes with at_cap drop-standby: its cursor no
 *                      longer holds the journal (JSON with the reason and figures)
 *
 * The cursor `ship:<standby>` (journal cursors) is the durable truth of what a standby acknowledged.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CursorStore } from '../journal/index.ts';
import type { LinkStatusRecord } from '../ship/link-status.ts';
import { readJsonFile, writeJsonFile } from './state-files.ts';

export const SHIP_DIR = 'ship';

export const shipCursor = (standby: string): string => `ship:${standby}`;

/**
 * A standby's cursor as the ship loop last wrote it. `sync(lsn)` writes `lsn` unless it is what was written; the
 * value is the one passed in, so an acknowledgement that arrives while the write is being fsynced is written by
 * the next sync (reading the caller's live value after the write, instead, took it as written when it was not:
 * the cursor stayed one ack behind for good once the acks stopped).
 */
export class ShipCursor {
  private readonly store: CursorStore;
  private readonly name: string;
  private written: bigint;

  constructor(store: CursorStore, name: string, written: bigint) {
    this.store = store;
    this.name = name;
    this.written = written;
  }

  async sync(lsn: bigint, force = false): Promise<void> {
    if (lsn === this.written && !force) return;
    await this.store.set(this.name, lsn);
    this.written = lsn;
  }
}

/**
 * `<standby>.json`: the link status (ship/link-status.ts LinkStatusRecord: state, ackedLsn, ackedUnitLsn,
 * lastAckAt, connects, lastError; `state` is the link's state machine state, ship-link.ts) and the standby's
 * figures. Made by ship-link.ts linkFile.
 */
export interface LinkFile extends LinkStatusRecord {
  readonly standby: string;
  readonly transport: string;
  /** Source commit time (µs since the epoch, decimal) of the last acknowledged unit, when known. */
  readonly ackedCommitTimeUs: string | null;
  /** Journal bytes this standby holds (from the segment holding its cursor on). */
  readonly retainedBytes: number;
  readonly cap: 'ok' | 'alarm' | 'dropped';
  readonly pid: number;
  readonly updatedAt: string;
}

export interface DroppedMark {
  readonly at: string;
  readonly reason: string;
  readonly ackedLsn: string;
  readonly retainedBytes: number;
}

const dirOf = (journalDir: string) => join(journalDir, SHIP_DIR);

/** Rewritten every second: atomic (temp + rename) but not fsynced; after a crash it is only advisory anyway. */
export function writeLinkFile(journalDir: string, s: LinkFile): Promise<void> {
  return writeJsonFile(dirOf(journalDir), `${s.standby}.json`, s, { durable: false });
}

/** State files here are advisory: a damaged one reads as absent. */
const readState = async <T>(file: string): Promise<T | null> =>
  (await readJsonFile(file, { damaged: 'absent' })) as T | null;

export function readLinkFile(journalDir: string, standby: string): Promise<LinkFile | null> {
  return readState<LinkFile>(join(dirOf(journalDir), `${standby}.json`));
}

async function exists(file: string): Promise<boolean> {
  try {
    await readFile(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export function isPaused(journalDir: string, standby: string): Promise<boolean> {
  return exists(join(dirOf(journalDir), `${standby}.paused`));
}

export async function setPaused(journalDir: string, standby: string, paused: boolean, why = 'paused'): Promise<void> {
  const file = join(dirOf(journalDir), `${standby}.paused`);
  if (!paused) return rm(file, { force: true });
  await writeJsonFile(dirOf(journalDir), `${standby}.paused`, { at: new Date(), why }, { durable: true });
}

export function readDropped(journalDir: string, standby: string): Promise<DroppedMark | null> {
  return readState<DroppedMark>(join(dirOf(journalDir), `${standby}.dropped`));
}

export async function setDropped(journalDir: string, standby: string, mark: DroppedMark | null): Promise<void> {
  const file = join(dirOf(journalDir), `${standby}.dropped`);
  if (mark === null) return rm(file, { force: true });
  await writeJsonFile(dirOf(journalDir), `${standby}.dropped`, mark, { durable: true });
}
