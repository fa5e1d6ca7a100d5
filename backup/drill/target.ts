/**
 * Where a drill replays to, decided from the log manifests (pure, no I/O): the source's consistent snapshot names
 * a binlog file and position (`binlog_snapshot_file` / `_position`); the GTID position there is every archived
 * GTID before the segment holding that position, plus the groups of that segment that end at or before it (the
 * caller scans them, binlog-groups.ts). `null` while the archive does not reach the position yet.
 */
import type { Manifest } from '../manifest.ts';
import { advance, type GtidPos, logSegments, parseGtidPos } from '../restore/pitr-plan.ts';

export interface PositionTarget {
  /** The GTID position reached by the segments before `holding` (or before the file, when `holding` is null). */
  readonly before: GtidPos;
  /** The segment whose bytes hold the position (startPos < position ≤ endPos); null when the position is at the
   *  very start of the file (no group of the file is before it). */
  readonly holding: Manifest | null;
}

export function positionTarget(
  manifests: readonly Manifest[],
  logJob: string,
  file: string,
  position: bigint,
): PositionTarget | null {
  const logs = logSegments(manifests, logJob);
  const at = logs.findIndex((m) => {
    const l = m.log as NonNullable<Manifest['log']>;
    return l.binlogFile === file && ((l.startPos < position && position <= l.endPos) || l.startPos >= position);
  });
  if (at < 0) return null;
  let before: GtidPos = new Map();
  for (const m of logs.slice(0, at)) if (m.log?.lastGtid) before = advance(before, parseGtidPos(m.log.lastGtid));
  const m = logs[at] as Manifest;
  const holding = (m.log as NonNullable<Manifest['log']>).startPos < position ? m : null;
  return { before, holding };
}
