/**
 * What a point-in-time restore does, decided from the manifests alone (pure, no I/O): for a target GTID position,
 * the newest physical backup at or before it, its restore chain (plan.ts checks it), and the log backups
 * (archived binlog segments, LOGCONTRACT: consecutive `log.seq`, each the bytes [startPos, endPos) of one binlog
 * file) that take the restored data from the backup's binlog position to the target.
 *
 * The segments start at the one holding the backup's binlog position and end at the first segment after which
 * every domain of the target is reached (cumulative `log.lastGtid`). Between them: no seq missing, no byte missing
 * (the next segment of a file starts where the previous ended; a new file starts at 0). A replay also needs the
 * beginning of the backup's binlog file (its Format_description event): the `header`, that file's first segment,
 * when it is not the first replayed one. The bytes between the header and the start position are never read
 * (mariadb-binlog reads a file's header events, then seeks to --start-position), so they are not fetched.
 *
 * A time target is mapped in two steps: `segmentForTime` picks the segment holding the last group committed at or
 * before the moment (coarse, from the segments' commit ranges); binlog-groups.ts scans that segment's bytes for the
 * exact GTID (the caller decrypts it), which then goes through `planPointInTime`.
 *
 * GTID positions are `domain-server-seq` lists, one entry per domain (MariaDB's gtid_binlog_pos form).
 */
import { TidemarkError } from '../../core/errors.ts';
import type { Manifest } from '../manifest.ts';
import type { BinlogGroup } from './binlog-groups.ts';
import { planRestore, type RestorePlan } from './plan.ts';

export interface GtidEntry {
  readonly server: number;
  readonly seq: bigint;
}
/** domain → the position's GTID in that domain. */
export type GtidPos = ReadonlyMap<number, GtidEntry>;

const GTID_RE = /^(\d+)-(\d+)-(\d+)$/;

/** Parses `0-1-10,1-2-5` (spaces allowed; '' is the empty position). A malformed one is a CONFIG error naming it. */
export function parseGtidPos(text: string): GtidPos {
  const out = new Map<number, GtidEntry>();
  for (const part of text.split(',').map((s) => s.trim())) {
    if (part === '') continue;
    const m = GTID_RE.exec(part);
    if (m === null) {
      throw new TidemarkError(`'${text}' is not a GTID position: want domain-server-seq[,…], e.g. 0-1-1234`, {
        code: 'CONFIG',
        context: { gtid: text },
      });
    }
    const domain = Number(m[1]);
    if (out.has(domain)) {
      throw new TidemarkError(`GTID position '${text}' names domain ${domain} twice`, {
        code: 'CONFIG',
        context: { gtid: text },
      });
    }
    out.set(domain, { server: Number(m[2]), seq: BigInt(m[3] as string) });
  }
  return out;
}

export function formatGtidPos(p: GtidPos): string {
  return [...p.entries()]
    .sort(([a], [b]) => a - b)
    .map(([d, e]) => `${d}-${e.server}-${e.seq}`)
    .join(',');
}

/** `a` is at or before `b`: every domain of `a` is in `b` with a sequence number at least as high. */
export function gtidAtOrBefore(a: GtidPos, b: GtidPos): boolean {
  for (const [d, e] of a) {
    const o = b.get(d);
    if (o === undefined || o.seq < e.seq) return false;
  }
  return true;
}

/** `pos` advanced by the GTIDs in `more` (per domain the higher sequence number wins). */
export function advance(pos: GtidPos, more: GtidPos): GtidPos {
  const out = new Map(pos);
  for (const [d, e] of more) {
    const cur = out.get(d);
    if (cur === undefined || cur.seq < e.seq) out.set(d, e);
  }
  return out;
}

function pitrError(
  code: 'BACKUP_PITR_BEFORE' | 'BACKUP_PITR_AFTER' | 'BACKUP_PITR_GAP',
  message: string,
  context: Record<string, string>,
): TidemarkError {
  // After the archive: the archiver may still catch up, so the same restore may succeed later.
  return new TidemarkError(message, { code, context, retriable: code === 'BACKUP_PITR_AFTER' });
}

export interface PitrPlan {
  /** The physical backup restored first, and its checked chain (full first). */
  readonly backup: Manifest;
  readonly restore: RestorePlan;
  /** Where the replay starts: the backup's binlog coordinates and GTID position. */
  readonly start: { readonly file: string; readonly position: bigint; readonly gtid: string };
  /** The log backups to replay, in seq order (empty when the backup is exactly at the target). */
  readonly segments: readonly Manifest[];
  /** The first segment of the backup's binlog file when it is not segments[0] (its header events are needed). */
  readonly header: Manifest | null;
  /** The target, normalized (`formatGtidPos`). */
  readonly target: string;
}

export interface PitrInput {
  /** Every manifest of the store (or at least of the job and the log job). */
  readonly manifests: readonly Manifest[];
  /** The physical backup job and the log job whose segments replay it. */
  readonly job: string;
  readonly logJob: string;
  readonly target: GtidPos;
}

/** The log backups of a log job in seq order; a duplicated seq is refused (two archivers on one job). */
export function logSegments(manifests: readonly Manifest[], logJob: string): Manifest[] {
  const logs = manifests.filter((m) => m.job === logJob && m.type === 'log' && m.log !== null);
  logs.sort((a, b) => ((a.log?.seq ?? 0n) < (b.log?.seq ?? 0n) ? -1 : 1));
  for (let i = 1; i < logs.length; i++) {
    if (logs[i]?.log?.seq === logs[i - 1]?.log?.seq) {
      throw pitrError(
        'BACKUP_PITR_GAP',
        `log job '${logJob}' has two segments with seq ${logs[i]?.log?.seq} ('${logs[i - 1]?.id}', '${logs[i]?.id}'): ` +
          'two archivers wrote one job; remove the wrong one',
        { logJob },
      );
    }
  }
  return logs;
}

function chainOf(byId: ReadonlyMap<string, Manifest>, m: Manifest): Manifest[] {
  const out = [m];
  for (let cur = m; cur.parent !== null; ) {
    const p = byId.get(cur.parent);
    if (p === undefined || out.length > byId.size) {
      throw new TidemarkError(`backup '${m.id}' cannot be restored: its parent '${cur.parent}' has no manifest`, {
        code: 'BACKUP_CHAIN_BROKEN',
        context: { id: m.id },
      });
    }
    out.unshift(p);
    cur = p;
  }
  return out;
}

/** Plans a restore to `target` (see the module comment). */
export function planPointInTime(o: PitrInput): PitrPlan {
  const target = formatGtidPos(o.target);
  if (o.target.size === 0) throw pitrError('BACKUP_PITR_BEFORE', 'the target GTID position is empty', {});
  const physical = o.manifests.filter(
    (m) =>
      m.job === o.job &&
      (m.type === 'full' || m.type === 'incremental' || m.type === 'differential') &&
      m.gtid !== null &&
      m.binlog !== null,
  );
  const eligible = physical
    .filter((m) => gtidAtOrBefore(parseGtidPos(m.gtid as string), o.target))
    .sort((a, b) => a.endedAt.getTime() - b.endedAt.getTime() || (a.id < b.id ? -1 : 1));
  const backup = eligible.at(-1);
  if (backup === undefined) {
    const oldest = [...physical].sort((a, b) => a.endedAt.getTime() - b.endedAt.getTime())[0];
    throw pitrError(
      'BACKUP_PITR_BEFORE',
      `no backup of job '${o.job}' is at or before GTID ${target}` +
        (oldest
          ? ` (the oldest, '${oldest.id}', is at ${oldest.gtid})`
          : ' (the job has no physical backup with a GTID)'),
      { job: o.job, target },
    );
  }
  const byId = new Map(o.manifests.map((m) => [m.id, m]));
  const restore = planRestore(chainOf(byId, backup));
  const binlog = backup.binlog as NonNullable<Manifest['binlog']>;
  const start = { file: binlog.file, position: binlog.position, gtid: backup.gtid as string };
  const startPos = parseGtidPos(start.gtid);
  if (gtidAtOrBefore(o.target, startPos)) return { backup, restore, start, segments: [], header: null, target };

  return {
    backup,
    restore,
    start,
    ...planLogs(o.manifests, o.logJob, start, o.target, `backup '${backup.id}'`),
    target,
  };
}

/** Where a replay starts or stopped: a binlog file, the offset of the next group in it, the GTID position there. */
export interface ReplayCursor {
  readonly file: string;
  readonly position: bigint;
  readonly gtid: string;
}

/** The log backups that take a replay from `start` to `target` (which must be after it). */
export interface LogPlan {
  /** In seq order, from the one holding the start position to the first one reaching the target. */
  readonly segments: readonly Manifest[];
  /** The first segment of the start's binlog file when it is not segments[0] (its header events are needed). */
  readonly header: Manifest | null;
}

/**
 * The segments from `start` to `target` (see the module comment): refused when the archive does not hold the start
 * (BACKUP_PITR_GAP), misses a seq or bytes on the way (BACKUP_PITR_GAP), or ends before the target
 * (BACKUP_PITR_AFTER). `what` names the start in messages ("backup 'ID'", "the replay cursor at GTID …").
 */
export function planLogs(
  manifests: readonly Manifest[],
  logJob: string,
  start: ReplayCursor,
  targetPos: GtidPos,
  what: string,
): LogPlan {
  const target = formatGtidPos(targetPos);
  const logs = logSegments(manifests, logJob);
  const head = logs.findIndex((m) => m.log?.binlogFile === start.file && m.log.startPos === 0n);
  if (head < 0) {
    throw pitrError(
      'BACKUP_PITR_GAP',
      `log job '${logJob}' has no segment at the start of binlog file '${start.file}' (${what} ` +
        `starts there at ${start.position}): the archive does not cover that start`,
      { logJob, file: start.file },
    );
  }
  const first = logs.findIndex(
    (m) => m.log?.binlogFile === start.file && m.log.startPos <= start.position && start.position <= m.log.endPos,
  );
  if (first < 0) {
    throw pitrError(
      'BACKUP_PITR_GAP',
      `log job '${logJob}' has no segment holding ${start.file}:${start.position}, where ${what} starts`,
      { logJob, file: start.file },
    );
  }
  const header = first === head ? null : (logs[head] as Manifest);
  const segments: Manifest[] = [];
  let reached: GtidPos = parseGtidPos(start.gtid);
  for (let i = first; i < logs.length; i++) {
    const m = logs[i] as Manifest;
    const l = m.log as NonNullable<Manifest['log']>;
    const prev = segments.at(-1)?.log;
    if (prev) {
      if (l.seq !== prev.seq + 1n) {
        const missing = l.seq - prev.seq === 2n ? `${prev.seq + 1n}` : `${prev.seq + 1n}..${l.seq - 1n}`;
        throw pitrError(
          'BACKUP_PITR_GAP',
          `log job '${logJob}' is missing segment seq ${missing} (between '${segments.at(-1)?.id}' and '${m.id}'): ` +
            `GTID ${target} cannot be reached from ${what}`,
          { logJob, missing },
        );
      }
      const sameFile = l.binlogFile === prev.binlogFile;
      if ((sameFile && l.startPos !== prev.endPos) || (!sameFile && l.startPos !== 0n)) {
        throw pitrError(
          'BACKUP_PITR_GAP',
          `log segment seq ${l.seq} ('${m.id}') starts at ${l.binlogFile}:${l.startPos}, but seq ${prev.seq} ended at ` +
            `${prev.binlogFile}:${prev.endPos}: bytes are missing from the archive`,
          { logJob, missing: `${prev.binlogFile}:${prev.endPos}` },
        );
      }
    }
    segments.push(m);
    if (l.lastGtid !== null) reached = advance(reached, parseGtidPos(l.lastGtid));
    if (gtidAtOrBefore(targetPos, reached)) return { segments, header };
  }
  const last = segments.at(-1);
  throw pitrError(
    'BACKUP_PITR_AFTER',
    `GTID ${target} is after the last archived segment of log job '${logJob}'` +
      (last ? ` (seq ${last.log?.seq}, up to ${formatGtidPos(reached)})` : '') +
      ': wait for the archiver, or pick an earlier target',
    { logJob, target },
  );
}

/**
 * The segments that take a replay further, from where the previous one stopped (`from`, a server already at
 * `from.gtid`) to a later `target`. A target at `from` needs no segment; a target before it (in any domain) is
 * refused with BACKUP_PITR_BEFORE: a replay only goes forward, an earlier point needs a new restore.
 */
export function planFurther(
  manifests: readonly Manifest[],
  logJob: string,
  from: ReplayCursor,
  target: GtidPos,
): LogPlan & { readonly target: string } {
  const t = formatGtidPos(target);
  if (target.size === 0) throw pitrError('BACKUP_PITR_BEFORE', 'the target GTID position is empty', {});
  const at = parseGtidPos(from.gtid);
  if (!gtidAtOrBefore(at, target)) {
    throw pitrError(
      'BACKUP_PITR_BEFORE',
      `GTID ${t} is before GTID ${from.gtid}, where the server already is: a replay only goes forward; restore ` +
        'again for an earlier point',
      { target: t, at: from.gtid },
    );
  }
  if (gtidAtOrBefore(target, at)) return { segments: [], header: null, target: t };
  return { ...planLogs(manifests, logJob, from, target, `the replay cursor at GTID ${from.gtid}`), target: t };
}

/**
 * Where a replay from `from` to `target` stopped: the binlog file and the end of the target's last group, from the
 * groups of the replayed bytes (per file, in order; binlog-groups.ts scanGroups). Groups before `from.position` in
 * its file are skipped; the walk stops at the first group past the target (in any domain, or in a domain the
 * target does not name), as `mariadb-binlog --stop-position=<GTID>` does. The target must have been reached on the
 * way: else BACKUP_PITR_REPLAY (the segments do not hold it).
 */
export function stopCursor(
  scanned: readonly { readonly file: string; readonly groups: readonly BinlogGroup[] }[],
  from: ReplayCursor,
  target: GtidPos,
): ReplayCursor {
  let pos = parseGtidPos(from.gtid);
  let cursor = from;
  walk: for (const f of scanned) {
    for (const g of f.groups) {
      if (f.file === from.file && g.start < from.position) continue;
      const want = target.get(g.domain);
      if (want === undefined || g.seq > want.seq) break walk;
      pos = advance(pos, new Map([[g.domain, { server: g.serverId, seq: g.seq }]]));
      cursor = { file: f.file, position: g.end, gtid: formatGtidPos(pos) };
    }
  }
  if (!gtidAtOrBefore(target, pos)) {
    throw new TidemarkError(
      `point-in-time replay: the replayed log segments from ${from.file}:${from.position} do not reach GTID ` +
        `${formatGtidPos(target)} (they end at ${formatGtidPos(pos)})`,
      { code: 'BACKUP_PITR_REPLAY', context: { target: formatGtidPos(target) } },
    );
  }
  return cursor;
}

/**
 * The segment holding the last group committed at or before `at`: the last (by seq) segment with transactions
 * whose first commit is at or before it. Before the first archived commit: BACKUP_PITR_BEFORE; after the end of
 * the archive (the last segment's last commit or, if later, the time it was sealed): BACKUP_PITR_AFTER.
 */
export function segmentForTime(manifests: readonly Manifest[], logJob: string, at: Date): Manifest {
  const logs = logSegments(manifests, logJob);
  const last = logs.at(-1);
  if (last === undefined) {
    throw pitrError('BACKUP_PITR_AFTER', `log job '${logJob}' has no archived segment`, { logJob });
  }
  const covered = Math.max(last.log?.lastCommit.getTime() ?? 0, last.endedAt.getTime());
  if (at.getTime() > covered) {
    throw pitrError(
      'BACKUP_PITR_AFTER',
      `${at.toISOString()} is after the last archived segment of log job '${logJob}' (seq ${last.log?.seq}, ` +
        `covering up to ${new Date(covered).toISOString()}): wait for the archiver, or pick an earlier time`,
      { logJob, at: at.toISOString() },
    );
  }
  const hit = logs.filter((m) => m.log?.firstGtid != null && (m.log.firstCommit.getTime() ?? 0) <= at.getTime()).at(-1);
  if (hit === undefined) {
    throw pitrError(
      'BACKUP_PITR_BEFORE',
      `${at.toISOString()} is before the first archived transaction of log job '${logJob}'`,
      { logJob, at: at.toISOString() },
    );
  }
  return hit;
}
