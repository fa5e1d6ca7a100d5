/**
 * The apply side of `tidemark status` per target: whether a `tidemark run` applies to it now (the applier lock
 * beside the journal, node/run-locks.ts, or the pid of the apply state file), and a failure or wait the apply
 * loop reported (node/apply-state.ts) — the error, since when, the next retry and the seq `tidemark skip` takes.
 */
import { join } from 'node:path';
import type { Config } from '../../config/config.ts';
import { journalDirOf, pidState, readLockPid } from '../../journal/index.ts';
import { readApplyState } from '../../node/apply-state.ts';
import { applyLockFile } from '../../node/run-locks.ts';

export interface ApplyStatus {
  /** 'failed' / 'waiting' as the running apply loop reported; 'ok' when it reported nothing. */
  readonly state: 'ok' | 'failed' | 'waiting';
  readonly code: string | null;
  readonly error: string | null;
  readonly since: string | null;
  readonly retry_at: string | null;
  /** The first transaction not applied (the failing one), as `tidemark skip --seq` takes it. */
  readonly next_seq: string | null;
  /** Pid of the `tidemark run` applying to this target, null when none runs. */
  readonly applier_pid: number | null;
  /** The report is from a process that is gone: it says how the target stood then, not now. */
  readonly stale: boolean;
}

/** The pid in the applier lock (node/run-locks.ts): the run that applies. */
async function lockPid(dir: string, target: string): Promise<number | null> {
  const held = await readLockPid(join(dir, applyLockFile(target))).catch(() => null);
  return held?.pid ?? null;
}

export async function readApplyStatus(config: Config, t: Config['targets'][number]): Promise<ApplyStatus> {
  const dir = journalDirOf(config, t);
  const [st, locked] = await Promise.all([readApplyState(dir, t.name), lockPid(dir, t.name)]);
  const pids = [locked, st?.pid ?? null].filter((p): p is number => p !== null);
  // Running: not gone (a zombie nobody reaped yet is gone; one that is exiting still counts).
  const alive = async (pid: number) => (await pidState(pid)) !== 'gone';
  let applier: number | null = null;
  for (const p of pids) {
    if (await alive(p)) {
      applier = p;
      break;
    }
  }
  const stale = st !== null && !(await alive(st.pid));
  return {
    state: st?.state ?? 'ok',
    code: st?.code ?? null,
    error: st?.error ?? null,
    since: st?.since ?? null,
    retry_at: stale ? null : (st?.retry_at ?? null),
    next_seq: st?.next?.first_seq ?? null,
    applier_pid: applier,
    stale,
  };
}

/** The text lines of one target's apply status (after its applied/lag lines). */
export function applyLines(a: ApplyStatus): string[] {
  const out: string[] = [];
  out.push(`  applier   ${a.applier_pid !== null ? `tidemark run (pid ${a.applier_pid})` : 'no tidemark run applies'}`);
  if (a.state === 'ok') return out;
  const label = a.state === 'failed' ? 'FAILED' : 'WAITING';
  const gone = a.stale ? ' (reported by a tidemark run that is gone)' : '';
  out.push(`  ${label.padEnd(9)} since ${a.since}${gone}: ${a.error}`);
  if (a.retry_at) out.push(`  retry     at ${a.retry_at}`);
  return out;
}
