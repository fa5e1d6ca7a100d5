/**
 * The live binlog archiver (I/O): follows the server's binlog over the replication protocol and seals it into
 * the store as `log` segments every `segment_seconds` and at each rotation, until its AbortSignal fires.
 *
 *   catalog (rebuilt from the store) ─▶ where the archive ends: the last segment's file/endPos, GTID position, seq
 *   COM_BINLOG_DUMP from there (dump.ts) ─▶ LogFollower (checks, groups, segments) ─▶ sealSegment, one at a time
 *
 * - Resume: a restart continues at the end of the last sealed segment (the next seq); a dropped connection
 *   reconnects (with backoff) at the end of the last complete event group received — the complete groups not yet
 *   sealed stay in memory and go into the next segment.
 * - Gaps are never skipped: a purged binlog (errno 1236), a GTID that repeats, or a file whose GTID list does not
 *   continue the archive stops the archiver with BACKUP_LOG_GAP, logs it at error level, and sets
 *   `status().needsFull` — a new full backup is needed, and `--restart` then starts a new run of the archive
 *   with one sequence number left out, so the hole stays visible.
 * - Stop (the signal): the complete groups received are sealed, then it returns.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { backoff } from '../../core/backoff.ts';
import { TidemarkError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import type { MysqlEndpoint } from '../../mysql/session.ts';
import type { Catalog } from '../catalog.ts';
import type { Manifest } from '../manifest.ts';
import type { MasterKey } from '../pipeline/keys.ts';
import type { BackupStore } from '../store.ts';
import type { LogJobConfig } from '../logs-config.ts';
import { binlogFiles, type DumpHandle, startDump } from './dump.ts';
import { parseGtidPos } from './events.ts';
import { type ArchivePoint, LogFollower, type Segment } from './follower.ts';
import { logSegments, seqHoles, sealSegment } from './segments.ts';

export interface LogArchiverOptions {
  readonly job: Pick<LogJobConfig, 'name' | 'segment_seconds' | 'server_id' | 'start'> &
    Partial<Pick<LogJobConfig, 'heartbeat_seconds' | 'max_segment_bytes'>>;
  readonly source: MysqlEndpoint;
  readonly store: BackupStore;
  readonly catalog: Catalog;
  readonly master: MasterKey;
  readonly signal: AbortSignal;
  /** After a gap: start again at the server's oldest binlog, leaving one sequence number out. */
  readonly restart?: boolean;
  readonly zstdLevel?: number;
  readonly log?: Logger;
  /** Called after each sealed segment (tests, metrics). */
  readonly onSealed?: (m: Manifest, seg: Segment) => void;
}

export interface LogArchiverStatus {
  /** The archive cannot continue (a gap): take a new full backup, then restart with `--restart`. */
  readonly needsFull: boolean;
  readonly lastError: TidemarkError | null;
  readonly sealed: number;
  readonly connected: boolean;
  /** Where the archive is: the end of the last complete group received. */
  readonly file: string | null;
  readonly pos: bigint | null;
}

export interface LogArchiver {
  status(): LogArchiverStatus;
  /** Resolves after a stop by the signal (complete groups sealed); rejects on a gap or any non-retriable error. */
  readonly done: Promise<void>;
}

const MAX_RECONNECT_DELAY_MS = 10_000;

export function runLogArchiver(o: LogArchiverOptions): LogArchiver {
  const log = (o.log ?? silentLogger).child({ component: 'backup-logs', job: o.job.name });
  const st = {
    needsFull: false,
    lastError: null as TidemarkError | null,
    sealed: 0,
    connected: false,
    file: null as string | null,
    pos: null as bigint | null,
  };
  const done = archive(o, log, st).catch((err: unknown) => {
    const e =
      err instanceof TidemarkError
        ? err
        : new TidemarkError(`binlog archiver failed: ${String(err)}`, { code: 'INTERNAL', cause: err });
    st.lastError = e;
    if (e.code === 'BACKUP_LOG_GAP') {
      st.needsFull = true;
      log.error({ err: e, needsFull: true }, `binlog archive gap: ${e.message}`);
    } else log.error({ err: e }, `binlog archiver stopped: ${e.message}`);
    throw e;
  });
  done.catch(() => undefined);
  return { status: () => ({ ...st }), done };
}

/** Where the archive of this job continues, from the catalog (rebuilt from the store first). */
async function startPoint(o: LogArchiverOptions, log: Logger): Promise<ArchivePoint> {
  await o.catalog.rebuild(o.store);
  const segs = logSegments(o.catalog, o.job.name);
  const holes = seqHoles(segs);
  if (holes.length > 0) log.warn({ holes: holes.map(String) }, 'the log archive has holes in its sequence numbers');
  const last = segs.at(-1);
  if (last?.log != null && o.restart !== true) {
    return {
      file: last.log.binlogFile,
      pos: last.log.endPos,
      gtidPos: parseGtidPos(last.gtid),
      nextSeq: last.log.seq + 1n,
    };
  }
  const files = await binlogFiles(o.source);
  const first = o.job.start === 'current' && last?.log == null ? files.at(-1) : files[0];
  if (first === undefined) {
    throw new TidemarkError(`the server ${o.source.host}:${o.source.port} has no binlog: set log_bin`, {
      code: 'CONFIG',
    });
  }
  const nextSeq = last?.log == null ? 1n : last.log.seq + 2n;
  if (last?.log != null) log.warn({ nextSeq: String(nextSeq), file: first.file }, 'restarting the log archive');
  return { file: first.file, pos: 4n, gtidPos: new Map(), nextSeq };
}

async function archive(
  o: LogArchiverOptions,
  log: Logger,
  st: { -readonly [K in keyof LogArchiverStatus]: LogArchiverStatus[K] },
): Promise<void> {
  const point = await startPoint(o, log);
  log.info({ file: point.file, pos: String(point.pos), seq: String(point.nextSeq) }, 'binlog archiver starting');
  const follower = new LogFollower(point, (msg, ctx) => log.warn(ctx, msg));
  const heartbeat = o.job.heartbeat_seconds ?? 2;
  const maxBytes = o.job.max_segment_bytes ?? 64 << 20;
  const delays = backoff(200, MAX_RECONNECT_DELAY_MS);
  let sealing: Promise<void> = Promise.resolve();
  let sealError: unknown = null;
  let dump: DumpHandle | null = null;
  let paused = false;
  /** Bytes of segments cut but not sealed yet: with the open segment's, what the archiver holds in memory. */
  let queued = 0;

  // Backpressure: a slow store pauses the replication socket (the server then waits) instead of growing memory.
  const held = () => queued + follower.pendingBytes();
  const sealReady = () => {
    const segs = follower.take();
    if (segs.length === 0) return;
    for (const seg of segs) queued += seg.size;
    sealing = sealing.then(async () => {
      for (const seg of segs) {
        if (sealError !== null) return;
        try {
          const m = await sealOne(o, seg, log);
          st.sealed++;
          o.onSealed?.(m, seg);
        } catch (err) {
          sealError = err;
          dump?.close(); // the loop wakes up and fails with it: nothing more is received that could not be sealed
        }
        queued -= seg.size;
      }
      if (paused && held() < maxBytes) {
        paused = false;
        dump?.resume();
      }
    });
  };
  const timer = setInterval(
    () => {
      const opened = follower.openedAt();
      if (opened !== null && Date.now() - opened >= o.job.segment_seconds * 1000) follower.cut();
      sealReady();
    },
    Math.min(250, o.job.segment_seconds * 250),
  );

  try {
    while (!o.signal.aborted) {
      const where = follower.resumePoint();
      let lastPacket = Date.now();
      paused = false;
      const ended = new Promise<TidemarkError | null>((resolve) => {
        const sink = {
          event(raw: Buffer) {
            lastPacket = Date.now();
            try {
              follower.push(raw, lastPacket);
            } catch (err) {
              dump?.close();
              resolve(err as TidemarkError);
              return;
            }
            if (follower.pendingBytes() >= maxBytes) follower.cut();
            sealReady();
            if (held() >= 2 * maxBytes && !paused) {
              paused = true;
              dump?.pause();
            }
          },
          end: resolve,
        };
        startDump(
          o.source,
          { file: where.file, pos: where.pos, serverId: o.job.server_id, heartbeatSeconds: heartbeat },
          sink,
        )
          .then((h) => {
            dump = h;
            if (o.signal.aborted || sealError !== null) h.close(); // stopped while connecting
            st.connected = true;
            log.info({ file: where.file, pos: String(where.pos) }, 'binlog dump started');
          })
          .catch(resolve);
      });
      const watchdog = setInterval(() => {
        if (!paused && Date.now() - lastPacket > heartbeat * 5000) {
          dump?.close();
        }
      }, heartbeat * 1000);
      const onAbort = () => dump?.close();
      o.signal.addEventListener('abort', onAbort, { once: true });
      const err = await ended;
      clearInterval(watchdog);
      o.signal.removeEventListener('abort', onAbort);
      dump = null;
      st.connected = false;
      const rp = follower.resumePoint();
      st.file = rp.file;
      st.pos = rp.pos;
      if (sealError !== null) throw sealError;
      if (o.signal.aborted) break;
      if (err !== null && !err.retriable) {
        follower.cut();
        sealReady();
        await sealing;
        throw err;
      }
      follower.connectionLost();
      const wait = delays.next();
      log.warn({ err, retryInMs: wait, file: rp.file, pos: String(rp.pos) }, 'binlog dump lost: reconnecting');
      await delay(wait, undefined, { signal: o.signal }).catch(() => undefined);
    }
  } finally {
    clearInterval(timer);
  }
  follower.cut();
  sealReady();
  await sealing;
  if (sealError !== null) throw sealError;
  log.info({ sealed: st.sealed }, 'binlog archiver stopped');
}

/** Seals one segment, retrying a store that fails retriably (each try is a new backup id; orphans collected). */
async function sealOne(o: LogArchiverOptions, seg: Segment, log: Logger): Promise<Manifest> {
  const delays = backoff(500, 30_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await sealSegment(
        {
          store: o.store,
          catalog: o.catalog,
          master: o.master,
          job: o.job.name,
          ...(o.zstdLevel === undefined ? {} : { level: o.zstdLevel }),
        },
        seg,
      );
    } catch (err) {
      if (!(err instanceof TidemarkError && err.retriable) || attempt >= 10) throw err;
      const wait = delays.next();
      log.warn({ err, attempt, retryInMs: wait, seq: String(seg.seq) }, 'sealing a log segment failed: retrying');
      await delay(wait);
    }
  }
}
