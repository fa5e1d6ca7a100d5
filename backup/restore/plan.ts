/**
 * What a restore from a backup chain does, decided from the manifests alone (pure, no I/O): the chain must start
 * at a full backup, every later backup must build on the one before it (an incremental on its parent's `to_lsn`,
 * a differential on the full's), and every backup must be sealed (an encryption header). The result is the
 * ordered list of steps restore.ts runs: extract + `--prepare` the full, then each incremental or differential
 * prepared onto it.
 *
 * A restore chain as backup/catalog.ts chainOf gives it: full first, the requested backup last. A differential's
 * parent is the full, so its chain is [full, differential] and no earlier incremental is applied.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { Manifest } from '../manifest.ts';
import type { EncryptionHeader } from '../pipeline/keys.ts';

export interface RestoreStep {
  readonly manifest: Manifest;
  /** The manifest keeps the header opaque; keys.ts unwrapDataKey checks its version and algorithm at run time. */
  readonly encryption: EncryptionHeader;
  /** 'full' is extracted into the target directory; the others into a work directory, then prepared onto it. */
  readonly role: 'full' | 'incremental' | 'differential';
}

export interface RestorePlan {
  readonly target: Manifest;
  readonly steps: readonly RestoreStep[];
  /** Stored bytes of every piece of the chain. */
  readonly storedBytes: bigint;
  readonly pieces: number;
}

function broken(id: string, what: string): TidemarkError {
  return new TidemarkError(`backup '${id}' cannot be restored: ${what}`, {
    code: 'BACKUP_CHAIN_BROKEN',
    context: { id },
  });
}

/** Checks a restore chain (full first, the requested backup last) and turns it into steps. */
export function planRestore(chain: readonly Manifest[]): RestorePlan {
  const target = chain.at(-1);
  const full = chain[0];
  if (target === undefined || full === undefined) throw new TypeError('planRestore: empty chain');
  if (target.type === 'log' || target.type === 'logical') {
    throw new TidemarkError(
      `backup '${target.id}' is a ${target.type} backup: restore --backup takes a full, incremental or ` +
        `differential backup${target.type === 'log' ? ' (replaying log backups, restore --to-gtid, is not done yet)' : ' (a logical restore is not done yet)'}`,
      { code: 'NOT_SUPPORTED', context: { id: target.id } },
    );
  }
  if (full.type !== 'full') {
    throw broken(target.id, `its chain starts at '${full.id}', a ${full.type} backup, not a full one`);
  }
  const steps: RestoreStep[] = [];
  for (const [i, m] of chain.entries()) {
    if (m.encryption === null) {
      throw broken(target.id, `'${m.id}' has no encryption header in its manifest (not sealed by tidemark)`);
    }
    const encryption = m.encryption as unknown as EncryptionHeader;
    if (m.lsn === null) throw broken(target.id, `'${m.id}' has no LSN range in its manifest`);
    if (i === 0) {
      steps.push({ manifest: m, encryption, role: 'full' });
      continue;
    }
    const parent = chain[i - 1] as Manifest;
    if (m.type !== 'incremental' && m.type !== 'differential') {
      throw broken(target.id, `'${m.id}' (a ${m.type} backup) cannot follow '${parent.id}' in a chain`);
    }
    if (m.parent !== parent.id) {
      throw broken(target.id, `'${m.id}' names parent '${m.parent}', but '${parent.id}' comes before it`);
    }
    if (m.chain !== full.id) throw broken(target.id, `'${m.id}' belongs to chain '${m.chain}', not '${full.id}'`);
    if (m.type === 'differential' && parent.id !== full.id) {
      throw broken(target.id, `differential '${m.id}' must be based on the full '${full.id}', not on '${parent.id}'`);
    }
    const from = parent.lsn?.to;
    if (m.lsn.from !== from) {
      throw broken(target.id, `'${m.id}' starts at LSN ${m.lsn.from}, but '${parent.id}' ends at LSN ${from}`);
    }
    steps.push({ manifest: m, encryption, role: m.type });
  }
  const pieces = chain.flatMap((m) => m.pieces);
  return { target, steps, storedBytes: pieces.reduce((n, p) => n + p.size, 0n), pieces: pieces.length };
}
