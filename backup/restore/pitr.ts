/**
 * Point-in-time restore (I/O): a store, a backup job, its log job and a target (a GTID position or a moment) →
 * a datadir restored from the newest backup at or before the target, on which a scratch server runs with every
 * transaction up to exactly the target replayed, and its GTID position checked.
 *
 *   1. the manifests, listed from the store (the store is the truth: an in-memory catalog rebuilt from it);
 *   2. a time is mapped to a GTID: pitr-plan.ts segmentForTime picks the segment, its verified plaintext is
 *      scanned (binlog-groups.ts) for the last group committed at or before the moment;
 *   3. pitr-plan.ts planPointInTime: the backup, its chain, the segments (refused before anything is written when
 *      the target is before every backup, after the archive, or behind a gap);
 *   4. every log backup's data key unwrapped and its pieces headed (a wrong key, a missing piece: refused before
 *      any output); restore.ts restoreBackup of the backup into `into` (fetch, verify, extract, prepare);
 *   5. the segments (and the header segment of the first file) written as binlog files into a 0700 work
 *      directory beside `into` (verified chunks only);
 *   6. the caller's `startServer(into)` starts the scratch server; `mariadb-binlog | mariadb` replays from the
 *      backup's binlog position to the target GTID (replay.ts); the server's gtid_binlog_pos must be the target;
 *   7. the work directory is removed (also on failure). The scratch server is left running for the caller.
 *
 * `replayFurther` takes a server restored this way further, to a later target: from the cursor the previous step
 * returned (binlog file, the end of the last replayed group, GTID), the segments to the new target (pitr-plan.ts
 * planFurther: the same checks, keys and pieces before anything is written), verified into a fresh work directory,
 * replayed from the cursor's position, the server's GTID checked again. Drills to several points (and tests) then
 * pay for one chain restore instead of one per point.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { TidemarkError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { Catalog } from '../catalog.ts';
import type { Manifest } from '../manifest.ts';
import { type MasterKey, unwrapDataKey } from '../pipeline/keys.ts';
import type { BackupStore } from '../store.ts';
import { lastGroupAtOrBefore, scanGroups } from './binlog-groups.ts';
import {
  formatGtidPos,
  type PitrPlan,
  parseGtidPos,
  planFurther,
  planPointInTime,
  type ReplayCursor,
  segmentForTime,
  stopCursor,
} from './pitr-plan.ts';
import {
  checkReached,
  readSegment,
  replayBinlogs,
  type ScratchServer,
  sealed,
  writeBinlogFiles,
  writtenGroups,
} from './replay.ts';
import { checkPieces, restoreBackup } from './restore.ts';

export type PitrTarget = { readonly gtid: string } | { readonly time: Date };

export interface PointInTimeOptions {
  readonly store: BackupStore;
  readonly master: MasterKey;
  readonly job: string;
  readonly logJob: string;
  readonly target: PitrTarget;
  /** The datadir to create (absent or empty). */
  readonly into: string;
  /** Starts a scratch server on the prepared datadir and says how to reach it; the caller stops it. */
  readonly startServer: (datadir: string) => Promise<ScratchServer>;
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  readonly onLine?: (line: string) => void;
  readonly tools?: { readonly mariadbBinlog?: string; readonly mariadb?: string };
}

export interface PointInTimeResult {
  readonly into: string;
  /** The target GTID position reached (a time target: the last GTID committed at or before it). */
  readonly gtid: string;
  readonly backup: string;
  readonly chain: readonly string[];
  readonly segments: number;
  readonly seconds: number;
  /** Where the replay stopped: what `replayFurther` continues from. */
  readonly cursor: ReplayCursor;
}

/** Every manifest of the store (an in-memory catalog rebuilt from it). */
export async function storeManifests(store: BackupStore, log?: Logger): Promise<Manifest[]> {
  const cat = new Catalog(':memory:', store.name, log);
  try {
    await cat.rebuild(store);
    return cat.list().map((b) => cat.show(b.id).manifest);
  } finally {
    cat.close();
  }
}

/** The last GTID committed at or before `at`, from the one segment that holds it (decrypted, verified, scanned). */
export async function gtidAtTime(
  store: BackupStore,
  master: MasterKey,
  manifests: readonly Manifest[],
  logJob: string,
  at: Date,
): Promise<string> {
  const seg = segmentForTime(manifests, logJob, at);
  const l = seg.log as NonNullable<Manifest['log']>;
  const g = lastGroupAtOrBefore(scanGroups(await readSegment(store, master, seg), l.startPos), at);
  if (g === null) {
    throw new TidemarkError(
      `no transaction of log segment seq ${l.seq} ('${seg.id}') committed at or before ${at.toISOString()}`,
      {
        code: 'BACKUP_PITR_BEFORE',
        context: { id: seg.id },
      },
    );
  }
  return g.gtid;
}

/** Restores to the target (see the module comment). */
export async function restoreToPoint(o: PointInTimeOptions): Promise<PointInTimeResult> {
  const log = (o.log ?? silentLogger).child({ component: 'backup-pitr', job: o.job, logJob: o.logJob });
  const say = (line: string, fields: Record<string, unknown> = {}): void => {
    log.info(fields, line);
    o.onLine?.(line);
  };
  const t0 = Date.now();
  const into = resolve(o.into);
  const manifests = await storeManifests(o.store, log);
  let target: string;
  if ('time' in o.target) {
    target = await gtidAtTime(o.store, o.master, manifests, o.logJob, o.target.time);
    say(`${o.target.time.toISOString()} → GTID ${target} (the last committed at or before it)`);
  } else {
    target = formatGtidPos(parseGtidPos(o.target.gtid));
  }
  const plan: PitrPlan = planPointInTime({ manifests, job: o.job, logJob: o.logJob, target: parseGtidPos(target) });
  const segs = plan.segments;
  say(
    `point in time ${plan.target}: backup ${plan.backup.id} (GTID ${plan.start.gtid}, binlog ` +
      `${plan.start.file}:${plan.start.position}), then ${segs.length} log segment(s)` +
      (segs.length > 0 ? ` seq ${segs[0]?.log?.seq}..${segs.at(-1)?.log?.seq}` : '') +
      (plan.header ? ` (and the header of ${plan.start.file}: seq ${plan.header.log?.seq})` : ''),
  );
  // Log backups checked like the chain before anything is written: their keys (a wrong master key) and pieces.
  const logBackups = plan.header === null ? segs : [plan.header, ...segs];
  for (const m of logBackups) unwrapDataKey(o.master, sealed(m), m.id);
  await checkPieces(o.store, logBackups);
  const restored = await restoreBackup({
    store: o.store,
    master: o.master,
    id: plan.backup.id,
    into,
    log,
    signal: o.signal,
    onLine: o.onLine,
  });
  const cursor = await replaySegments({
    ...o,
    header: plan.header,
    segments: segs,
    from: plan.start,
    target: plan.target,
    near: into,
    server: async () => {
      say(`starting a scratch server on ${into}`);
      return o.startServer(into);
    },
    say,
  });
  const result: PointInTimeResult = {
    into,
    gtid: plan.target,
    backup: plan.backup.id,
    chain: restored.chain,
    segments: segs.length,
    seconds: (Date.now() - t0) / 1000,
    cursor,
  };
  say(`done: the server on ${into} is at GTID ${plan.target} in ${result.seconds.toFixed(1)} s`);
  return result;
}

interface SegmentsReplay {
  readonly store: BackupStore;
  readonly master: MasterKey;
  readonly header: Manifest | null;
  readonly segments: readonly Manifest[];
  readonly from: ReplayCursor;
  readonly target: string;
  /** The work directory is made beside this path. */
  readonly near: string;
  readonly server: () => Promise<ScratchServer>;
  readonly say: (line: string) => void;
  readonly signal?: AbortSignal;
  readonly tools?: PointInTimeOptions['tools'];
}

/** Segments → verified binlog files in a 0700 work dir → replay from `from` to the target → GTID checked → cursor. */
async function replaySegments(o: SegmentsReplay): Promise<ReplayCursor> {
  const work = await mkdtemp(join(dirname(o.near), `.${basename(o.near)}.binlog-`));
  try {
    const files = await writeBinlogFiles(o.store, o.master, o.header, o.segments, work, o.signal);
    if (o.segments.length > 0) o.say(`log segments verified and written as ${files.length} binlog file(s)`);
    const server = await o.server();
    if (o.segments.length === 0) return o.from;
    o.say(`replaying ${o.from.file}:${o.from.position} → GTID ${o.target}`);
    await replayBinlogs({
      dir: work,
      files,
      startPosition: o.from.position,
      stopGtid: o.target,
      server,
      mariadbBinlog: o.tools?.mariadbBinlog,
      mariadb: o.tools?.mariadb,
      signal: o.signal,
    });
    await checkReached(server, o.target, o.tools?.mariadb);
    return stopCursor(await writtenGroups(work, o.segments), o.from, parseGtidPos(o.target));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface ReplayFurtherOptions {
  readonly store: BackupStore;
  readonly master: MasterKey;
  readonly logJob: string;
  /** Where the server is: the `cursor` of restoreToPoint or of the previous replayFurther. */
  readonly from: ReplayCursor;
  readonly target: PitrTarget;
  /** The server restoreToPoint started (already at `from.gtid`). */
  readonly server: ScratchServer;
  /** A directory beside which the 0700 work directory is made (and removed): the datadir, say. */
  readonly near: string;
  /** The store's manifests, when the caller has them (else listed from the store). */
  readonly manifests?: readonly Manifest[];
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  readonly onLine?: (line: string) => void;
  readonly tools?: PointInTimeOptions['tools'];
}

export interface ReplayFurtherResult {
  readonly gtid: string;
  readonly segments: number;
  readonly seconds: number;
  readonly cursor: ReplayCursor;
}

/** Takes a restored server from `from` further to a later target (see the module comment). */
export async function replayFurther(o: ReplayFurtherOptions): Promise<ReplayFurtherResult> {
  const log = (o.log ?? silentLogger).child({ component: 'backup-pitr', logJob: o.logJob });
  const say = (line: string): void => {
    log.info(line);
    o.onLine?.(line);
  };
  const t0 = Date.now();
  const manifests = o.manifests ?? (await storeManifests(o.store, log));
  let target: string;
  if ('time' in o.target) {
    target = await gtidAtTime(o.store, o.master, manifests, o.logJob, o.target.time);
    say(`${o.target.time.toISOString()} → GTID ${target} (the last committed at or before it)`);
  } else {
    target = o.target.gtid;
  }
  const plan = planFurther(manifests, o.logJob, o.from, parseGtidPos(target));
  say(
    `further ${o.from.gtid} → ${plan.target}: ${plan.segments.length} log segment(s)` +
      (plan.segments.length > 0 ? ` seq ${plan.segments[0]?.log?.seq}..${plan.segments.at(-1)?.log?.seq}` : ''),
  );
  const logBackups = plan.header === null ? plan.segments : [plan.header, ...plan.segments];
  for (const m of logBackups) unwrapDataKey(o.master, sealed(m), m.id);
  await checkPieces(o.store, logBackups);
  const cursor = await replaySegments({
    ...o,
    header: plan.header,
    segments: plan.segments,
    target: plan.target,
    server: async () => o.server,
    say,
  });
  const seconds = (Date.now() - t0) / 1000;
  say(`done: the server is at GTID ${plan.target} in ${seconds.toFixed(1)} s`);
  return { gtid: plan.target, segments: plan.segments.length, seconds, cursor };
}
