/**
 * Log segments in the store (I/O): seals one segment as a `log` backup through the pipeline (zstd + AES-256-GCM,
 * the same master key as the physical backups), writes its manifest LAST with putIfAbsent and records it in the
 * catalog; and finds where a log job's archive ends (the catalog, rebuilt from the store, is the truth).
 * The manifest follows the log contract (backup/logs/README.md): job = the log job, parent null, chain = its id,
 * lsn null, `log` = {seq, binlogFile, startPos, endPos, first/last GTID, first/last commit}, `gtid` = the GTID
 * position at the segment's end.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { TidemarkError } from '../../core/errors.ts';
import type { Catalog } from '../catalog.ts';
import { encodeManifest, type Manifest, manifestKey, newBackupId } from '../manifest.ts';
import { MIN_BLOCK } from '../pipeline/format.ts';
import type { MasterKey } from '../pipeline/keys.ts';
import { writeSealedBackup } from '../pipeline/writer.ts';
import type { BackupStore } from '../store.ts';
import type { Segment } from './follower.ts';

export interface SealOptions {
  readonly store: BackupStore;
  readonly catalog: Catalog;
  readonly master: MasterKey;
  readonly job: string;
  readonly level?: number;
  readonly signal?: AbortSignal;
  readonly now?: () => Date;
}

/** Stores one segment and its manifest; returns the manifest. */
export async function sealSegment(o: SealOptions, seg: Segment): Promise<Manifest> {
  const now = o.now ?? (() => new Date());
  const startedAt = new Date(Math.min(seg.openedAt, now().getTime()));
  const id = newBackupId(o.job, 'log', startedAt, randomBytes(3).toString('hex'));
  const sealed = await writeSealedBackup({
    store: o.store,
    source: Readable.from(seg.bytes),
    backupId: id,
    master: o.master,
    blockSize: MIN_BLOCK,
    ...(o.level === undefined ? {} : { level: o.level }),
    ...(o.signal === undefined ? {} : { signal: o.signal }),
  });
  const manifest: Manifest = {
    id,
    job: o.job,
    type: 'log',
    parent: null,
    chain: id,
    lsn: null,
    gtid: seg.gtidPos,
    binlog: null,
    log: {
      seq: seg.seq,
      binlogFile: seg.file,
      startPos: seg.startPos,
      endPos: seg.endPos,
      firstGtid: seg.firstGtid,
      lastGtid: seg.lastGtid,
      firstCommit: seg.firstCommit,
      lastCommit: seg.lastCommit,
    },
    pieces: sealed.pieces,
    encryption: { ...sealed.encryption },
    startedAt,
    endedAt: now(),
    tools: { tidemark: 'backup-logs/1' },
  };
  const bytes = encodeManifest(manifest);
  if (!(await o.store.putIfAbsent(manifestKey(id), bytes))) {
    throw new TidemarkError(`log segment '${id}' already has a manifest in '${o.store.name}': not replacing it`, {
      code: 'INTERNAL',
      context: { id },
    });
  }
  o.catalog.record(bytes);
  return manifest;
}

/** The log job's sealed segments, seq ascending (from the catalog: rebuild it from the store first). */
export function logSegments(catalog: Catalog, job: string): Manifest[] {
  return catalog
    .list({ job, type: 'log' })
    .map((b) => catalog.show(b.id).manifest)
    .filter((m) => m.log !== null)
    .sort((a, b) => ((a.log?.seq ?? 0n) < (b.log?.seq ?? 0n) ? -1 : 1));
}

/** Sequence numbers missing between the first and the last segment (each is a hole in the archive). */
export function seqHoles(segments: readonly Manifest[]): bigint[] {
  const holes: bigint[] = [];
  for (let i = 1; i < segments.length; i++) {
    const prev = segments[i - 1]?.log?.seq ?? 0n;
    const cur = segments[i]?.log?.seq ?? 0n;
    for (let s = prev + 1n; s < cur; s++) holes.push(s);
  }
  return holes;
}
