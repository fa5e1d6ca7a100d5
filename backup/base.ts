/**
 * Where an incremental or differential backup starts, taken from the catalog (nothing is kept on the database
 * host), and the check before sealing that the stream really started there. Pure.
 *
 *   incremental   parent = the newest backup of the job's newest chain; --incremental-lsn = its to_lsn
 *   differential  parent = the newest chain's full;                    --incremental-lsn = its to_lsn
 *   full          no parent; from_lsn must be 0
 *
 * Only physical backups (full, incremental, differential) take part; log and logical backups never do.
 */
import { TidemarkError } from '../core/errors.ts';
import type { Checkpoints } from './backup-info.ts';
import type { Manifest } from './manifest.ts';

export interface Base {
  readonly parent: Manifest;
  readonly chain: string;
  /** The value for `mariadb-backup --incremental-lsn`. */
  readonly fromLsn: bigint;
}

const physical = (m: Manifest): boolean => m.type === 'full' || m.type === 'incremental' || m.type === 'differential';

/**
 * The base of the next backup of `type` among one job's manifests, or null when there is no full yet (the caller
 * then takes a full).
 */
export function chooseBase(manifests: readonly Manifest[], type: 'incremental' | 'differential'): Base | null {
  const phys = manifests.filter(physical);
  const fulls = phys.filter((m) => m.type === 'full').sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
  const full = fulls.at(-1);
  if (full === undefined) return null;
  let parent = full;
  if (type === 'incremental') {
    for (const m of phys) if (m.chain === full.id && m.endedAt.getTime() > parent.endedAt.getTime()) parent = m;
  }
  const lsn = parent.lsn;
  if (lsn === null)
    throw new TidemarkError(`backup '${parent.id}' has no LSN range`, {
      code: 'BACKUP_MANIFEST',
      context: { id: parent.id },
    });
  return { parent, chain: full.id, fromLsn: lsn.to };
}

/** Refuses to seal a backup whose stream did not start where the catalog said (or is not of the right kind). */
export function checkStreamStart(
  cp: Checkpoints | null,
  type: 'full' | 'incremental' | 'differential',
  expectedFrom: bigint,
): void {
  const fail = (what: string): TidemarkError =>
    new TidemarkError(`mariadb-backup stream of a ${type} backup ${what}: not sealing it — take it again`, {
      code: 'BACKUP_LSN_MISMATCH',
      context: { type, expectedFrom: String(expectedFrom) },
    });
  if (cp === null) throw fail('carried no xtrabackup_checkpoints');
  const wantType = type === 'full' ? 'full-backuped' : 'incremental';
  if (cp.backupType !== wantType) throw fail(`says backup_type '${cp.backupType}', expected '${wantType}'`);
  if (cp.fromLsn !== expectedFrom) throw fail(`starts at from_lsn ${cp.fromLsn}, expected ${expectedFrom}`);
  if (cp.toLsn < cp.fromLsn) throw fail(`ends at to_lsn ${cp.toLsn} before its from_lsn ${cp.fromLsn}`);
}
