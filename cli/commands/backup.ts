/**
 * `tidemark backup run|list|show|star|unstar|expire|copy`: takes a job's backup now (backup/run.ts), lists and shows
 * what the stores hold (the catalog cache, rebuilt from the store first), stars and unstars, and applies a job's
 * retention with orphan collection (backup/expire.ts); `copy` is backup-copy.ts. JSON output with --json (bigints as decimal strings).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest, Star, StarKind } from '../../backup/manifest.ts';
import { formatBytes, progressReporter } from '../../backup/pipeline/progress.ts';
import { expireJob, runJob } from '../../backup/run/job.ts';
import type { PhysicalType } from '../../backup/run/runner.ts';
import { TidemarkError } from '../../core/errors.ts';
import type { CommandContext } from './context.ts';
import { copyCommand } from './backup-copy.ts';
import { backupSection, eachStore, jobOf } from './backup-stores.ts';
import { backupAccount } from '../../config/config.ts';

export type BackupOptions = CommandContext &
  (
    | { readonly action: 'run'; readonly job: string; readonly type?: PhysicalType | undefined }
    | { readonly action: 'list'; readonly json: boolean; readonly job?: string | undefined }
    | { readonly action: 'show'; readonly id: string; readonly json: boolean }
    | { readonly action: 'star'; readonly id: string; readonly kind: StarKind; readonly note: string }
    | { readonly action: 'unstar'; readonly id: string }
    | { readonly action: 'expire'; readonly job: string; readonly dryRun: boolean; readonly json: boolean }
    | { readonly action: 'copy'; readonly name: string; readonly dryRun: boolean; readonly json: boolean }
  );

/** A manifest as JSON output shows it (bigints as decimal strings, no encryption header). */
function manifestJson(m: Manifest, star: Star | null, store: string): Record<string, unknown> {
  return {
    id: m.id,
    store,
    job: m.job,
    type: m.type,
    parent: m.parent,
    chain: m.chain,
    lsn: m.lsn === null ? null : { from: String(m.lsn.from), to: String(m.lsn.to) },
    gtid: m.gtid,
    binlog: m.binlog === null ? null : { file: m.binlog.file, position: String(m.binlog.position) },
    log:
      m.log === null
        ? null
        : {
            seq: String(m.log.seq),
            binlogFile: m.log.binlogFile,
            startPos: String(m.log.startPos),
            endPos: String(m.log.endPos),
            firstGtid: m.log.firstGtid,
            lastGtid: m.log.lastGtid,
            firstCommit: m.log.firstCommit.toISOString(),
            lastCommit: m.log.lastCommit.toISOString(),
          },
    startedAt: m.startedAt.toISOString(),
    endedAt: m.endedAt.toISOString(),
    bytes: String(m.pieces.reduce((n, p) => n + p.size, 0n)),
    pieces: m.pieces.map((p) => ({ key: p.key, size: String(p.size), sha256: p.sha256, chunks: p.chunks })),
    keyId: m.encryption?.keyId ?? null,
    star: star === null ? null : { kind: star.kind, note: star.note, starredAt: star.starredAt.toISOString() },
  };
}

/** The datadir's size, for a full's ETA (only when the stream runs here: a plain local mariadb-backup). */
async function dirBytes(dir: string): Promise<number | undefined> {
  try {
    let n = 0;
    for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
      if (e.isFile()) n += (await stat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
    }
    return n;
  } catch {
    return undefined;
  }
}

export async function backupCommand(o: BackupOptions): Promise<number> {
  const b = backupSection(o.config);
  const file = o.config.file;
  switch (o.action) {
    case 'run': {
      const job = jobOf(b, file, o.job);
      const type = o.type ?? job.type;
      const local = b.stream.command.length === 1 && b.stream.datadir !== undefined;
      const expected = type === 'full' && local ? await dirBytes(b.stream.datadir as string) : undefined;
      const { run: r, store } = await runJob(b, job, {
        account: backupAccount(o.config),
        type,
        expire: false,
        expectedBytes: expected,
        onProgress: progressReporter({
          label: `backup ${job.name}`,
          log: o.log,
          everyMs: b.pipeline.progress_log_seconds * 1000,
        }),
        signal: o.signal,
        log: o.log,
      });
      const m = r.manifest;
      const stored = m.pieces.reduce((n, p) => n + p.size, 0n);
      o.stdout.write(
        `${m.id}: ${m.type}${r.promoted ? ` (asked ${type}: no full yet)` : ''}, parent ${m.parent ?? '-'}, ` +
          `lsn ${m.lsn?.from}..${m.lsn?.to}, ${formatBytes(r.streamBytes)} streamed, ` +
          `${formatBytes(Number(stored))} stored in ${m.pieces.length} piece(s) on '${store}'\n`,
      );
      return 0;
    }
    case 'copy':
      return copyCommand(o, b);
    case 'list': {
      const rows: Record<string, unknown>[] = [];
      await eachStore(b, o.log, (s) => {
        for (const sum of s.catalog.list(o.job === undefined ? {} : { job: o.job })) {
          rows.push(manifestJson(s.catalog.show(sum.id).manifest, sum.star, s.name));
        }
      });
      if (o.json) o.stdout.write(`${JSON.stringify(rows)}\n`);
      else {
        for (const r of rows) {
          const lsn = r['lsn'] as { from: string; to: string } | null;
          o.stdout.write(
            `${r['star'] === null ? ' ' : '★'} ${r['id']}  ${r['store']}  ${r['type']}  parent ${r['parent'] ?? '-'}  ` +
              `lsn ${lsn === null ? '-' : `${lsn.from}..${lsn.to}`}  ${formatBytes(Number(r['bytes']))}\n`,
          );
        }
        if (rows.length === 0) o.stdout.write('no backups\n');
      }
      return 0;
    }
    case 'show':
    case 'star':
    case 'unstar':
      return byId(o, b);
    case 'expire': {
      const job = jobOf(b, file, o.job);
      const report = await expireJob(b, job, { dryRun: o.dryRun, log: o.log });
      if (o.json) {
        o.stdout.write(
          `${JSON.stringify({
            dryRun: o.dryRun,
            keep: report.keep,
            expired: report.expired,
            skipped: report.skipped,
            orphans: report.orphans.map((x) => ({ ...x, size: String(x.size) })),
            deletedObjects: report.deletedObjects,
          })}\n`,
        );
      } else {
        const verb = o.dryRun ? 'would expire' : 'expired';
        for (const d of report.keep) o.stdout.write(`keep    ${d.id}: ${d.reasons.join('; ')}\n`);
        for (const d of report.expired) o.stdout.write(`${verb} ${d.id}: ${d.reasons.join('; ')}\n`);
        for (const x of report.orphans)
          o.stdout.write(`orphan  ${x.key} (${formatBytes(Number(x.size))}): ${x.reason}\n`);
        o.stdout.write(`${o.dryRun ? 'dry run: nothing deleted' : `${report.deletedObjects} object(s) deleted`}\n`);
      }
      return 0;
    }
  }
}

/** show / star / unstar: the id is looked up in every store (the first that has it). */
async function byId(
  o: BackupOptions & { action: 'show' | 'star' | 'unstar' },
  b: ReturnType<typeof backupSection>,
): Promise<number> {
  let found = false;
  await eachStore(b, o.log, async (s) => {
    if (found || !s.catalog.has(o.id)) return;
    found = true;
    if (o.action === 'show') {
      const { manifest, star } = s.catalog.show(o.id);
      const chain = s.catalog.chainOf(o.id).map((m) => m.id);
      if (o.json)
        o.stdout.write(`${JSON.stringify({ ...manifestJson(manifest, star, s.name), restoreChain: chain })}\n`);
      else {
        o.stdout.write(`${JSON.stringify(manifestJson(manifest, star, s.name), null, 2)}\n`);
        o.stdout.write(`restore chain: ${chain.join(' → ')}\n`);
      }
    } else if (o.action === 'star') {
      const star = await s.catalog.star(s.store, o.id, o.kind, o.note, new Date());
      const pinned = s.catalog.chainOf(o.id).length - 1;
      o.stdout.write(`${o.id}: starred (${star.kind})${pinned > 0 ? `, pinning ${pinned} parent(s)` : ''}\n`);
    } else {
      await s.catalog.unstar(s.store, o.id);
      o.stdout.write(`${o.id}: unstarred\n`);
    }
  });
  if (!found) {
    throw new TidemarkError(`no backup '${o.id}' in any store (no manifest): see 'tidemark backup list'`, {
      code: 'BACKUP_NOT_FOUND',
      context: { id: o.id },
    });
  }
  return 0;
}
