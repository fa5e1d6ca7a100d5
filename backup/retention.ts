/**
 * Retention: which backups and log segments to keep and which `expire` may delete, each with its reason. Pure —
 * the catalog feeds it one job's backups, the log segments of that job's source, the policy and the clock; the
 * semantics (with a picture of chains) are in backup/README.md, "Retention and stars". In short:
 *
 *   days: N    every backup that ended within the last N days, plus the newest one that ended at or before the
 *              window start (the "anchor": it and the logs after it restore the window's first moments), each
 *              with its restore chain (the backup, its parents, up to the full)
 *   chains: N  the newest N chains whole (a chain = a full or logical backup and every backup built on it)
 *   both       the union; neither: keep everything
 *   logs       kept from the last segment starting at or before the start of the oldest backup the policy keeps,
 *              then every later one — a suffix, never a gap
 *   stars      never expired; a star keeps its restore chain (`standalone`), a `pitr` star also the logs from
 *              its start to the start of the next full backup after it (or to the newest log if none)
 *   closure    a kept backup's parents are always kept
 *
 * A backup whose chain is broken (a parent missing from the input) cannot be restored: the policy never keeps it,
 * a star still does. Times are epoch milliseconds.
 */
import { ConfigError } from '../core/errors.ts';
import type { StarKind } from './manifest.ts';

export type RetainedType = 'full' | 'incremental' | 'differential' | 'logical';

export interface RetentionBackup {
  readonly id: string;
  readonly type: RetainedType;
  readonly parent: string | null;
  readonly start: number;
  readonly end: number;
  readonly star: StarKind | null;
}

/** One archived log segment: consecutive `seq` numbers mean no gap; times are its first and last commit. */
export interface RetentionLog {
  readonly id: string;
  readonly seq: bigint;
  readonly start: number;
  readonly end: number;
}

export interface RetentionPolicy {
  readonly days?: number;
  readonly chains?: number;
}

export interface Decision {
  readonly id: string;
  /** Why it is kept (every reason that applies) or why it may go (one). */
  readonly reasons: readonly string[];
}

export interface RetentionPlan {
  readonly keep: readonly Decision[];
  readonly expire: readonly Decision[];
  readonly keepLogs: readonly Decision[];
  readonly expireLogs: readonly Decision[];
  /** now − days, when `days` is set. */
  readonly windowStart: number | null;
}

const DAY_MS = 86_400_000;

function checkPolicy(p: RetentionPolicy): void {
  if (p.days !== undefined && !(Number.isFinite(p.days) && p.days > 0)) {
    throw new ConfigError(`retention 'days' must be a positive number of days, got ${p.days}`, { key: 'days' });
  }
  if (p.chains !== undefined && !(Number.isInteger(p.chains) && p.chains >= 1)) {
    throw new ConfigError(`retention 'chains' must be an integer >= 1, got ${p.chains}`, { key: 'chains' });
  }
}

/** The backup and its parents up to the root, or null when a parent is missing (a broken chain). */
export function restoreChain(byId: ReadonlyMap<string, RetentionBackup>, id: string): RetentionBackup[] | null {
  const out: RetentionBackup[] = [];
  let cur = byId.get(id);
  while (cur !== undefined) {
    out.push(cur);
    if (cur.parent === null) return out;
    if (out.length > byId.size) return null; // a parent cycle: not a chain
    cur = byId.get(cur.parent);
  }
  return null;
}

/** Last segment (by seq) starting at or before t; the first one if all start later. */
function seqFrom(logs: readonly RetentionLog[], t: number): bigint | null {
  let found: bigint | null = null;
  for (const l of logs) if (l.start <= t && (found === null || l.seq > found)) found = l.seq;
  if (found !== null) return found;
  return logs.reduce<bigint | null>((m, l) => (m === null || l.seq < m ? l.seq : m), null);
}

/**
 * Do these log segments restore every moment of [from, to]? True when a run of consecutive seq numbers starts
 * at or before `from` and ends at or after `to` (no commits happen between two consecutive segments).
 */
export function logsCover(logs: readonly RetentionLog[], from: number, to: number): boolean {
  const sorted = [...logs].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  let runStart: number | null = null;
  let prev: RetentionLog | null = null;
  for (const l of sorted) {
    if (prev === null || l.seq !== prev.seq + 1n) runStart = l.start;
    prev = l;
    if (runStart !== null && runStart <= from && l.end >= to) return true;
  }
  return false;
}

/** Can moment t be restored from these backups and logs? (a complete chain ending by t, logs from its start) */
export function restorable(backups: readonly RetentionBackup[], logs: readonly RetentionLog[], t: number): boolean {
  const byId = new Map(backups.map((b) => [b.id, b]));
  return backups.some(
    (b) => b.end <= t && restoreChain(byId, b.id) !== null && (b.end === t || logsCover(logs, b.start, t)),
  );
}

class Reasons {
  readonly map = new Map<string, string[]>();
  add(id: string, why: string): void {
    const r = this.map.get(id);
    if (r === undefined) this.map.set(id, [why]);
    else if (!r.includes(why)) r.push(why);
  }
}

export function planRetention(input: {
  readonly backups: readonly RetentionBackup[];
  readonly logs: readonly RetentionLog[];
  readonly policy: RetentionPolicy;
  readonly now: number;
}): RetentionPlan {
  const { backups, logs, policy, now } = input;
  checkPolicy(policy);
  const byId = new Map(backups.map((b) => [b.id, b]));
  const chainOf = new Map(backups.map((b) => [b.id, restoreChain(byId, b.id)]));
  const complete = backups.filter((b) => chainOf.get(b.id) !== null);
  const keep = new Reasons();
  const byPolicy = new Set<string>();
  const keepWithChain = (b: RetentionBackup, why: string, policyKept: boolean): void => {
    for (const [i, m] of (chainOf.get(b.id) ?? [b]).entries()) {
      keep.add(m.id, i === 0 ? why : `parent of ${b.id} (${why})`);
      if (policyKept) byPolicy.add(m.id);
    }
  };

  const windowStart = policy.days === undefined ? null : now - policy.days * DAY_MS;
  if (policy.days === undefined && policy.chains === undefined) {
    for (const b of complete) keepWithChain(b, 'no retention policy', true);
  }
  if (windowStart !== null) {
    let anchor: RetentionBackup | null = null;
    for (const b of complete) {
      if (b.end > windowStart) keepWithChain(b, `ended within the last ${policy.days} days`, true);
      else if (anchor === null || b.end > anchor.end) anchor = b;
    }
    if (anchor !== null)
      keepWithChain(anchor, `newest backup before the ${policy.days}-day window: restores its start`, true);
  }
  if (policy.chains !== undefined) {
    const roots = complete.filter((b) => b.parent === null).sort((a, b) => b.start - a.start || (a.id < b.id ? 1 : -1));
    const newest = new Set(roots.slice(0, policy.chains).map((r) => r.id));
    for (const b of complete) {
      const root = (chainOf.get(b.id) as RetentionBackup[]).at(-1) as RetentionBackup;
      if (newest.has(root.id)) keepWithChain(b, `in the newest ${policy.chains} chain(s)`, true);
    }
  }
  for (const b of backups) if (b.star !== null) keepWithChain(b, `starred (${b.star})`, false);

  // Closure: whatever is kept keeps its parents (the restore chains above already do; this is the guard).
  for (const id of [...keep.map.keys()]) {
    for (let cur = byId.get(id); cur?.parent != null; cur = byId.get(cur.parent)) {
      if (byId.has(cur.parent) && !keep.map.has(cur.parent)) keep.add(cur.parent, `parent of kept ${cur.id}`);
    }
  }

  // Logs: the policy's suffix, plus each pitr star's span.
  const keepLogs = new Reasons();
  const policyStarts = [...byPolicy].map((id) => (byId.get(id) as RetentionBackup).start);
  const fromSeq = policyStarts.length === 0 ? null : seqFrom(logs, Math.min(...policyStarts));
  for (const l of logs) {
    if (policyStarts.length === 0 && backups.length === 0) keepLogs.add(l.id, 'no backup yet to start a restore from');
    else if (fromSeq !== null && l.seq >= fromSeq) keepLogs.add(l.id, 'from the oldest backup the policy keeps');
  }
  for (const b of backups) {
    if (b.star !== 'pitr') continue;
    const nextFull = backups
      .filter((o) => o.type === 'full' && o.start > b.end)
      .reduce<number | null>((m, o) => (m === null || o.start < m ? o.start : m), null);
    const lo = seqFrom(logs, b.start);
    const hi = nextFull === null ? null : seqFrom(logs, nextFull);
    for (const l of logs) {
      if (lo !== null && l.seq >= lo && (hi === null || l.seq <= hi)) {
        keepLogs.add(
          l.id,
          `pitr star ${b.id}: logs to ${nextFull === null ? 'the newest' : `the next full (${new Date(nextFull).toISOString()})`}`,
        );
      }
    }
  }

  const expireWhy = (b: RetentionBackup): string => {
    if (chainOf.get(b.id) === null) return 'broken chain (a parent is missing): cannot be restored';
    const parts: string[] = [];
    if (windowStart !== null) parts.push(`not needed to restore the last ${policy.days} days`);
    if (policy.chains !== undefined) parts.push(`not in the newest ${policy.chains} chain(s)`);
    return parts.join(' and ');
  };
  const oldestKept = policyStarts.length === 0 ? null : new Date(Math.min(...policyStarts)).toISOString();
  return {
    keep: backups.filter((b) => keep.map.has(b.id)).map((b) => ({ id: b.id, reasons: keep.map.get(b.id) as string[] })),
    expire: backups.filter((b) => !keep.map.has(b.id)).map((b) => ({ id: b.id, reasons: [expireWhy(b)] })),
    keepLogs: logs
      .filter((l) => keepLogs.map.has(l.id))
      .map((l) => ({ id: l.id, reasons: keepLogs.map.get(l.id) as string[] })),
    expireLogs: logs
      .filter((l) => !keepLogs.map.has(l.id))
      .map((l) => ({
        id: l.id,
        reasons: [
          oldestKept === null
            ? 'no kept backup to restore from'
            : `before the oldest kept backup (start ${oldestKept})`,
        ],
      })),
    windowStart,
  };
}
