/**
 * What `tidemark run` tells other processes (`tidemark status`) about one target's apply loop when it is not
 * simply applying: `<journal>/apply/<target>.json`, written atomically (advisory state, state-files.ts) by the
 * apply loop, removed once the target applies again.
 *
 *   {"target":"replica","state":"failed","code":"APPLY_DIVERGED","error":"…","since":"<ISO>","updated":"<ISO>",
 *    "pid":1234,"retry_at":"<ISO>","next":{"first_seq":"12","commit_seq":"14","lsn":"40"}}
 *
 *   state    failed   a non-retriable error; the loop retries with backoff (and at once when the stored position
 *                     moves, e.g. after `tidemark skip`)
 *            waiting  a retriable condition that lasts (the replica is read-only)
 *   next     the first transaction not applied (the one that failed, when known), for `tidemark skip --seq`
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonFile, writeJsonFile } from './state-files.ts';

export const APPLY_STATE_DIR = 'apply';

export interface ApplyStateFile {
  readonly target: string;
  readonly state: 'failed' | 'waiting';
  readonly code: string;
  readonly error: string;
  readonly since: string;
  readonly updated: string;
  readonly pid: number;
  readonly retry_at: string | null;
  readonly next: { readonly first_seq: string; readonly commit_seq: string; readonly lsn: string } | null;
}

const fileName = (target: string) => `${encodeURIComponent(target)}.json`;

export async function writeApplyState(journalDir: string, st: ApplyStateFile): Promise<void> {
  await writeJsonFile(join(journalDir, APPLY_STATE_DIR), fileName(st.target), st, { durable: false });
}

export async function clearApplyState(journalDir: string, target: string): Promise<void> {
  await rm(join(journalDir, APPLY_STATE_DIR, fileName(target)), { force: true });
}

/** The target's state file, or null when there is none (or it is unreadable: advisory). */
export async function readApplyState(journalDir: string, target: string): Promise<ApplyStateFile | null> {
  const v = await readJsonFile(join(journalDir, APPLY_STATE_DIR, fileName(target)), { damaged: 'absent' });
  if (!v || typeof v !== 'object') return null;
  const o = v as Partial<ApplyStateFile>;
  if ((o.state !== 'failed' && o.state !== 'waiting') || typeof o.error !== 'string') return null;
  return o as ApplyStateFile;
}
