/**
 * The scratch server of a point-in-time restore or a drill: compose/local/mariadb.sh `start NAME PORT --datadir
 * DIR` on the restored datadir (its state under $TIDEMARK_RUN_DIR), and `stop NAME`. The datadir is a copy of the
 * source, so its accounts are the source's; the script checks the server with root and $TIDEMARK_ROOT_PW, which
 * is set to the password given here (never on a command line).
 */
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ScratchServer } from './replay.ts';
import { TidemarkError } from '../../core/errors.ts';

const MARIADB_SH = resolve(dirname(fileURLToPath(import.meta.url)), '../../compose/local/mariadb.sh');

export interface ScratchSpec {
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

export const scratchName = (port: number): string => `pitr-${port}`;

async function script(args: string[], password: string, what: string): Promise<void> {
  try {
    await promisify(execFile)('bash', [MARIADB_SH, ...args], { env: { ...process.env, TIDEMARK_ROOT_PW: password } });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new TidemarkError(`${what}: ${stderr.split('\n').slice(-5).join(' | ')}`, {
      code: 'BACKUP_PITR_REPLAY',
      cause: err,
    });
  }
}

/** Starts the scratch server on `datadir`; says how to reach it. */
export async function startScratch(s: ScratchSpec, datadir: string): Promise<ScratchServer> {
  const args = ['start', scratchName(s.port), String(s.port), '--datadir', datadir];
  await script(args, s.password, `cannot start the scratch server on ${datadir}`);
  return { host: '127.0.0.1', port: s.port, user: s.user, password: s.password };
}

export async function stopScratch(s: ScratchSpec): Promise<void> {
  await script(['stop', scratchName(s.port)], s.password, `cannot stop the scratch server ${scratchName(s.port)}`);
}

/** Stops the scratch server and removes its instance directory (binlogs, logs; not the datadir given to start). */
export async function destroyScratch(s: ScratchSpec): Promise<void> {
  await script(['destroy', scratchName(s.port)], s.password, `cannot remove the scratch server ${scratchName(s.port)}`);
}
