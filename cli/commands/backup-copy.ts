/**
 * `tidemark backup copy NAME [--dry-run] [--json]`: copies the sealed backups of a copy's source store missing in
 * its destination, verified by the manifests' hashes without the key (backup/copy/copy.ts), then applies the
 * copy's retention to the destination (backup/run/job.ts).
 */
import { copyOf } from '../../backup/copy-config.ts';
import { formatBytes } from '../../backup/pipeline/progress.ts';
import { runCopy } from '../../backup/run/job.ts';
import type { ResolvedBackup } from '../../config/config.ts';
import type { BackupOptions } from './backup.ts';

export async function copyCommand(o: BackupOptions & { action: 'copy' }, b: ResolvedBackup): Promise<number> {
  const copy = copyOf(b.copies, o.name);
  const { report, expired } = await runCopy(b, copy, { dryRun: o.dryRun, signal: o.signal, log: o.log });
  if (o.json) {
    o.stdout.write(
      `${JSON.stringify({
        dryRun: o.dryRun,
        copied: report.copied.map((c) => ({ ...c, bytes: String(c.bytes) })),
        present: report.present,
        stars: report.stars,
        damaged: report.damaged,
        expired: expired.flatMap((e) => e.report.expired.map((d) => d.id)),
      })}\n`,
    );
    return 0;
  }
  const verb = o.dryRun ? 'would copy' : 'copied';
  for (const c of report.copied) {
    o.stdout.write(
      `${verb} ${c.id}: ${c.pieces} piece(s), ${c.copiedPieces} streamed, ${formatBytes(Number(c.bytes))}\n`,
    );
  }
  for (const id of report.stars) o.stdout.write(`${o.dryRun ? 'would star' : 'starred'} ${id}\n`);
  for (const d of report.damaged) o.stdout.write(`skipped ${d.id}: ${d.error}\n`);
  for (const e of expired) for (const d of e.report.expired) o.stdout.write(`expired ${d.id} in '${copy.to}'\n`);
  o.stdout.write(
    `${copy.name}: ${report.copied.length} backup(s) ${verb} from '${copy.from}' to '${copy.to}', ` +
      `${report.present.length} already there\n`,
  );
  return 0;
}
