/**
 * How far capture has read the source's log (a MySQL binlog, or another engine's), for other processes
 * (`tidemark status`, `verify`, rewind/undo on the source): `<journal>/capture/read.json`, advisory state
 * (state-files.ts: atomic, not fsynced).
 *
 * The journal's last commit is where the last captured transaction ended; when the newest binlog transactions
 * touch only tables outside the include set, that stays behind the source's binlog position for good although
 * capture has read everything. Capture's read position (capture.ts status().readPosition: after the last event
 * group read, included or not, or the source's position in an idle heartbeat) is the measure instead:
 *
 *   { pid, host, updated_at_ms, phase, read_position, last_seq }
 *
 * `last_seq` is the last seq capture had handed to the journal when it had read up to `read_position`: every
 * included transaction before that position is in the journal once the journal's head reaches `last_seq`.
 * Capture rewrites the file when its read position moves (at most once a second) and at least every 5 s; it
 * removes it when it stops. A file older than 15 s, or whose pid no longer runs on this host (killed), is stale:
 * capture is not running, and readers fall back to the journal's last commit.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { CaptureStatus } from '../engine/source.ts';
import { describeChain } from '../core/errors.ts';
import {
  comparePositions,
  formatPosition,
  positionFromJson,
  positionToJson,
  type SourcePosition,
} from '../record/position.ts';
import type { CommitEntry } from '../record/record.ts';
import { pidState } from '../journal/index.ts';
import { readJsonFile, writeJsonFile } from './state-files.ts';

export const CAPTURE_STATE_DIR = 'capture';
export const CAPTURE_STATE_FILE = 'read.json';
const CHECK_MS = 1000;
const KEEPALIVE_MS = 5000;
export const STALE_MS = 15_000;

export interface CaptureReadState {
  readonly pid: number;
  readonly host: string;
  readonly updatedAtMs: number;
  readonly phase: string;
  readonly readPosition: SourcePosition;
  readonly lastSeq: bigint;
}

/** Starts rewriting the state file from `status` while capture streams; stop() ends it and removes the file. */
export function startCaptureState(
  journalDir: string,
  status: () => CaptureStatus,
  log: Logger,
): { stop: () => Promise<void> } {
  const dir = join(journalDir, CAPTURE_STATE_DIR);
  let last = '';
  let lastWrite = 0;
  let writing: Promise<void> = Promise.resolve();
  let warned = false;
  const tick = () => {
    const st = status();
    if (st.phase !== 'streaming' || st.readPosition === null) return;
    const key = formatPosition(st.readPosition);
    const now = Date.now();
    if (key === last && now - lastWrite < KEEPALIVE_MS) return;
    last = key;
    lastWrite = now;
    const doc = {
      pid: process.pid,
      host: hostname(),
      updated_at_ms: now,
      phase: st.phase,
      read_position: positionToJson(st.readPosition),
      last_seq: (st.nextSeq - 1n).toString(),
    };
    writing = writing
      .then(() => writeJsonFile(dir, CAPTURE_STATE_FILE, doc, { durable: false }))
      .catch((err: unknown) => {
        if (!warned) log.warn({ err: describeChain(err) }, 'cannot write the capture read position');
        warned = true;
      });
  };
  const timer = setInterval(tick, CHECK_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      await writing;
      await rm(join(dir, CAPTURE_STATE_FILE), { force: true }).catch(() => undefined);
    },
  };
}

/** The state file as written, or null (absent, damaged). */
export async function readCaptureState(journalDir: string): Promise<CaptureReadState | null> {
  const raw = (await readJsonFile(join(journalDir, CAPTURE_STATE_DIR, CAPTURE_STATE_FILE), {
    damaged: 'absent',
  })) as Record<string, unknown> | null;
  if (!raw) return null;
  try {
    const lastSeq = raw['last_seq'];
    if (typeof raw['pid'] !== 'number' || typeof raw['updated_at_ms'] !== 'number') return null;
    if (typeof lastSeq !== 'string' || !/^\d+$/.test(lastSeq)) return null;
    return {
      pid: raw['pid'],
      host: String(raw['host'] ?? ''),
      updatedAtMs: raw['updated_at_ms'],
      phase: String(raw['phase'] ?? ''),
      readPosition: positionFromJson(raw['read_position'], 'capture read position'),
      lastSeq: BigInt(lastSeq),
    };
  } catch {
    return null;
  }
}

export interface CaptureReach {
  /** A fresh state file: capture is streaming now. */
  readonly running: boolean;
  /** Capture's read position (only while running). */
  readonly readPosition: SourcePosition | null;
  /** The journal holds every included transaction up to the source position asked about. */
  readonly caughtUp: boolean;
  /** How caughtUp was decided: the journal's last commit reached it, or capture's read position did. */
  readonly by: 'journal' | 'read-position' | null;
}

/**
 * Pure: has capture caught up with `source`? Yes when the journal's last commit is at or past it (as before), or
 * when a running capture has read past it and the journal holds what capture had handed over by then.
 * `alive`: the state's pid still runs (or cannot be checked from here).
 */
export function judgeCatchUp(o: {
  source: SourcePosition;
  head: Pick<CommitEntry, 'seq' | 'position'> | null;
  state: CaptureReadState | null;
  nowMs: number;
  alive: boolean;
}): CaptureReach {
  const s = o.state;
  const running = s !== null && s.phase === 'streaming' && o.alive && o.nowMs - s.updatedAtMs <= STALE_MS;
  const readPosition = running ? s.readPosition : null;
  if (o.head && comparePositions(o.head.position, o.source) >= 0) {
    return { running, readPosition, caughtUp: true, by: 'journal' };
  }
  if (running && comparePositions(s.readPosition, o.source) >= 0 && (o.head?.seq ?? 0n) >= s.lastSeq) {
    return { running, readPosition, caughtUp: true, by: 'read-position' };
  }
  return { running, readPosition, caughtUp: false, by: null };
}

/** judgeCatchUp with the state file of `journalDir` (and its pid checked when it was written on this host). */
export async function captureReach(
  journalDir: string,
  source: SourcePosition,
  head: Pick<CommitEntry, 'seq' | 'position'> | null,
): Promise<CaptureReach> {
  const state = await readCaptureState(journalDir);
  const alive = state === null || state.host !== hostname() || (await pidState(state.pid)) !== 'gone';
  return judgeCatchUp({ source, head, state, nowMs: Date.now(), alive });
}
