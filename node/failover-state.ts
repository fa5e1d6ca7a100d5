/**
 * What the takeover monitor keeps on disk, per site, in `<dir>/failover/`:
 *
 *   monitor.json    the monitor's state (overall and per probe), rewritten after every round (advisory)
 *   history.json    the takeover history (decide.ts TakeoverHistory), written durably BEFORE a takeover acts,
 *                   so a crash mid-takeover cannot lead to a second automatic one inside min_interval_ms
 *   promotion.json  written durably once this standby was promoted: it is the primary now (position, time,
 *                   the takeover's timeline). Its presence makes a restarted standby process act as primary.
 *   guard.json      at the primary site: the self-fencing guard's state
 *
 * `<dir>` is the standby's journal_dir at a standby site, the journal directory at the primary's site.
 */
import type { StoredPromotionPosition } from '../failover/db-steps.ts';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EMPTY_HISTORY, historyFromJson, type TakeoverHistory } from '../failover/decide.ts';
import type { MonitorState } from '../failover/monitor.ts';
import type { TimelineEntry } from '../failover/plan.ts';
import { readJsonFile, writeJsonFile } from './state-files.ts';

export const FAILOVER_DIR = 'failover';

export interface PromotionRecord {
  readonly at: string;
  readonly standby: string;
  readonly target: string;
  readonly oldPrimary: string;
  readonly mode: 'automatic' | 'manual' | 'switchover';
  readonly reason: string;
  /** The new primary's binlog position (PostgreSQL: its slot's LSN) at promotion (where capture from it must start). */
  readonly position: StoredPromotionPosition | null;
  /**
   * The last source-journal LSN the new primary applied before promotion (decimal; null when unknown). The old
   * primary's journal units after it are its errant transactions (what failback must quarantine and rewind).
   */
  readonly appliedLsn?: string | null;
  readonly status: string;
  readonly timeline: readonly TimelineEntry[];
  /** Set once the mirror became the new primary's journal (node/promoted.ts): its id and branch point. */
  readonly journal?: {
    readonly id: string;
    readonly branchOf: string;
    readonly branchLsn: string;
    readonly branchSeq: string;
    readonly markerLsn: string;
  };
}

export interface MonitorFile {
  readonly site: string;
  readonly role: 'standby' | 'promoted' | 'witness' | 'primary';
  readonly updatedAt: string;
  readonly monitor: MonitorState | null;
  /** The last decision's reason (automatic mode), or why nothing is decided. */
  readonly decision: string | null;
  /** When this site sees no writable primary: that, plainly, and why (node/failover-service.ts). */
  readonly service?: string | null;
  readonly pid: number;
}

const dirOf = (base: string) => join(base, FAILOVER_DIR);

/** Decisions (history, promotion) are never read past damage: a damaged file is an error. */
const readJson = (file: string) => readJsonFile(file, { damaged: 'throw' });

export async function readHistory(base: string): Promise<TakeoverHistory> {
  const file = join(dirOf(base), 'history.json');
  const j = await readJson(file);
  return j === null ? EMPTY_HISTORY : historyFromJson(j, file);
}

export function writeHistory(base: string, h: TakeoverHistory): Promise<void> {
  return writeJsonFile(dirOf(base), 'history.json', h, { durable: true });
}

export async function readPromotion(base: string): Promise<PromotionRecord | null> {
  return (await readJson(join(dirOf(base), 'promotion.json'))) as PromotionRecord | null;
}

export function writePromotion(base: string, p: PromotionRecord): Promise<void> {
  return writeJsonFile(dirOf(base), 'promotion.json', p, { durable: true, pretty: true });
}

/** Advisory state, rewritten often: atomic, not fsynced. */
export function writeMonitorFile(base: string, name: string, m: MonitorFile): Promise<void> {
  return writeJsonFile(dirOf(base), name, m, { durable: false });
}

export async function readMonitorFile(base: string, name: string): Promise<MonitorFile | null> {
  try {
    return (await readJsonFile(join(dirOf(base), name), { damaged: 'absent' })) as MonitorFile | null;
  } catch {
    return null; // advisory: a damaged file reads as absent
  }
}

/** Present while `tidemark switchover` runs at this standby: its automatic monitor does not decide meanwhile. */
export async function setSwitchover(base: string, on: boolean): Promise<void> {
  const file = join(dirOf(base), 'switchover.json');
  if (!on) return rm(file, { force: true });
  await writeJsonFile(
    dirOf(base),
    'switchover.json',
    { at: new Date().toISOString(), pid: process.pid },
    {
      durable: false,
    },
  );
}

/** Whether a switchover started less than `maxAgeMs` ago is in progress here. */
export async function switchoverRunning(base: string, maxAgeMs: number): Promise<boolean> {
  try {
    // mtimeMs has sub-millisecond precision and Date.now() whole milliseconds: a file written in this very
    // millisecond can look a fraction of one from the future; its age is 0 then, never negative.
    const age = Date.now() - (await stat(join(dirOf(base), 'switchover.json'))).mtimeMs;
    return Math.max(0, age) < maxAgeMs;
  } catch {
    return false;
  }
}
