/**
 * The apply half of `tidemark run`, one loop per target, through the adapter its `kind` names (engine/target.ts):
 * reads the replica's stored position, follows the journal from the LSN after it, applies, and acknowledges to
 * the journal cursor `apply:<target>` (what retention may delete). The replica's position table is the source of
 * truth; the cursor only trails it, so it is written at most once a second. It also records where its frame lies,
 * so that the next start reads from there instead of scanning the segment (apply-resume.ts). Retriable failures
 * (lost connection, deadlock, journal truncated by a capture restart) restart the loop from the replica's stored
 * position.
 *
 * A held target (rewind/forward/undo set `hold` in its position table) is not applied to: the loop logs why once
 * and checks again every HOLD_POLL_MS until the hold is released, then continues from the stored position.
 *
 * One failed target never stops the process (capture, shipping and the other targets go on):
 *   - a non-retriable error is first retried at once with one source transaction per replica transaction up to
 *     where it happened, so the failing transaction is the first one after the stored position; failing again,
 *     the target is marked failed (log, `<journal>/apply/<target>.json` for `tidemark status`, metrics) with the
 *     ways past it (apply-failure.ts), and retried with backoff (FAIL_BASE_MS doubling to FAIL_MAX_MS) — at once
 *     when its stored position moves (`tidemark skip`). It counts as recovered at its next commit.
 *   - a read-only replica (TARGET_READ_ONLY) is waited for: warned once naming the target, again every
 *     READ_ONLY_WARN_MS, re-tried every READ_ONLY_POLL_MS; apply resumes when it is writable.
 *   - a newer baseline in the journal after the stored position (`tidemark run --rebaseline`) is jumped to: what
 *     comes before it is replaced by it, so it is not applied (journal-units.ts baselineStarts). The jump needs no
 *     state: it is found again from the stored position at every open until the baseline's first commit.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { applyMetrics, noMetrics } from '../engine/apply-metrics.ts';
import type { AppliedState } from '../engine/target.ts';
import { targetAdapter } from '../config/engines.ts';
import { describeChain, isRetriable, sleep, TidemarkError } from '../core/errors.ts';
import { CursorStore, JournalReader } from '../journal/index.ts';
import type { Config } from '../config/config.ts';
import { checkJournalMatches, failureText, positionKey, readPositionKey } from './apply-failure.ts';
import { type ApplyStateFile, clearApplyState, writeApplyState } from './apply-state.ts';
import { backoff } from '../core/backoff.ts';
import { baselineStarts, journalEnd, type ScanMemo, unitAt } from './journal-units.ts';
import { CommitFrames, resumeHint, type StartHint } from './apply-resume.ts';

const CURSOR_EVERY_MS = 1000;
const HOLD_POLL_MS = 2000;
const FAIL_BASE_MS = 5_000;
const FAIL_MAX_MS = 60_000;
/** While failed, the stored position is looked at this often (a `tidemark skip` is picked up at once). */
const FAIL_POLL_MS = 3_000;
const READ_ONLY_POLL_MS = 2_000;
const READ_ONLY_WARN_MS = 5 * 60_000;

/** The target's trouble as the loop last reported it (null: applying normally). */
interface Trouble {
  readonly kind: 'failed' | 'waiting';
  readonly since: Date;
  /** The stored position when it failed (a failure is over once it moves). */
  readonly at: string;
  warnedAt: number;
}

export async function applyLoop(
  config: Config,
  target: Config['targets'][number],
  /** The journal applied from: the primary's, or a standby's mirror (run.ts journalDirOf). */
  dir: string,
  log: Logger,
  signal: AbortSignal,
  metrics?: Registry,
): Promise<void> {
  const alog = log.child({ component: 'apply-loop', target: target.name });
  const cursorName = `apply:${target.name}`;
  while (!existsSync(dir) && !signal.aborted) {
    const feeder = dir === config.journal.dir ? 'capture' : "this standby's receiver";
    alog.info({ dir }, `waiting for the journal directory (is ${feeder} running?)`);
    await sleep(1000, signal);
  }
  const cursors = new CursorStore(dir);
  // Register the cursor before anything is applied, so retention keeps everything this target still needs.
  if ((await cursors.get(cursorName)) === null) await cursors.set(cursorName, 0n);
  const delay = backoff(500, 30_000);
  const failDelay = backoff(FAIL_BASE_MS, FAIL_MAX_MS);
  const m = metrics ? applyMetrics(metrics, { target: target.name, source: config.source.name }) : noMetrics;
  m.state('ok');
  // A report left by an earlier process says nothing about this one.
  await clearApplyState(dir, target.name).catch(() => {});
  let lastCursorWrite = 0;
  let heldFor: string | null = null;
  let trouble: Trouble | null = null;
  /** Up to this LSN, one source transaction per replica transaction (after a non-retriable failure). */
  let isolateThroughLsn = -1n;
  const scanMemo: ScanMemo = { after: -1n, lsn: 0n, prev: null };
  const adapter = targetAdapter(target);
  const report = async (st: Omit<ApplyStateFile, 'target' | 'pid' | 'updated'>) => {
    const file = { target: target.name, pid: process.pid, updated: new Date().toISOString(), ...st };
    await writeApplyState(dir, file).catch((err) =>
      alog.warn({ err: describeChain(err) }, 'could not write the apply state file'),
    );
  };
  const recovered = async (why: string) => {
    if (!trouble) return;
    alog.info({ was: trouble.kind, since: trouble.since.toISOString() }, `target ${target.name}: ${why}`);
    trouble = null;
    failDelay.reset();
    m.state('ok');
    await clearApplyState(dir, target.name).catch(() => {});
  };
  const failed = async (err: unknown, st: AppliedState | null) => {
    const at = positionKey(st);
    const ms = failDelay.next();
    const unit = await unitAt(dir, st ? st.lsn + 1n : 1n, signal).catch(() => null);
    const text = failureText(target.name, err, unit, FAIL_MAX_MS);
    const code = err instanceof TidemarkError ? err.code : 'UNEXPECTED';
    const cur = trouble as Trouble | null;
    const since = cur?.kind === 'failed' && cur.at === at ? cur.since : new Date();
    if (cur?.kind !== 'failed' || cur.at !== at) alog.error({ code, position: at }, text);
    else alog.warn({ code, delayMs: ms }, `target ${target.name} still fails at the same transaction`);
    trouble = { kind: 'failed', since, at, warnedAt: Date.now() };
    m.state('failed', code);
    await report({
      state: 'failed',
      code,
      error: text,
      since: since.toISOString(),
      retry_at: new Date(Date.now() + ms).toISOString(),
      next: unit ? { first_seq: `${unit.firstSeq}`, commit_seq: `${unit.commit.seq}`, lsn: `${unit.firstLsn}` } : null,
    });
    // Wait, but retry at once when the stored position moves (tidemark skip, or a rewind).
    for (const end = Date.now() + ms; Date.now() < end && !signal.aborted; ) {
      await sleep(Math.min(FAIL_POLL_MS, end - Date.now()), signal);
      const now = await readPositionKey(target, config.source.name);
      if (now !== undefined && now !== at) break;
    }
  };
  for (let attempt = 1; !signal.aborted; attempt++) {
    const applier = await adapter.applier({
      target,
      source: config.source.name,
      sourceKind: config.source.kind,
      log,
      metrics,
    });
    try {
      const state = await applier.open();
      if (applier.promoted) {
        // The target is the primary now (a takeover promoted it): nothing is ever applied to it again, so the
        // loop stops instead of re-opening it every few seconds.
        alog.warn({ hold: applier.hold }, `target ${target.name} is the primary now (${applier.hold}): apply stops`);
        return;
      }
      if (applier.hold !== null) {
        if (heldFor !== applier.hold) {
          heldFor = applier.hold;
          alog.warn(
            { hold: applier.hold },
            `target ${target.name} is held (${applier.hold}): apply paused until \`tidemark forward --to-head\` releases it`,
          );
        }
        await sleep(HOLD_POLL_MS, signal);
        continue;
      }
      if (heldFor !== null) alog.info('hold released: applying again');
      heldFor = null;
      if (trouble?.kind === 'waiting') await recovered('the replica is writable again: applying');
      else if (trouble && trouble.at !== positionKey(state)) await recovered('its stored position moved: applying');
      const hint = await resumeHint(dir, cursors, cursorName, state ? state.lsn + 1n : 1n, alog);
      await checkJournalMatches(target.name, dir, state, hint?.frame);
      const fromLsn = await startingLsn(dir, state, scanMemo, signal, alog, hint);
      alog.info({ fromLsn: fromLsn.toString(), seq: state?.seq.toString() ?? null }, 'applying from the journal');
      const reader = new JournalReader({
        dir,
        fromLsn,
        follow: true,
        signal,
        log: alog,
        ...(hint ? { startAt: hint } : {}),
      });
      const commits = new CommitFrames();
      await applier.run(commits.entries(reader), {
        signal,
        isolateThroughLsn,
        onApplied: async (s) => {
          delay.reset();
          if (trouble) await recovered('applied past the failure: applying');
          const now = Date.now();
          if (now - lastCursorWrite >= CURSOR_EVERY_MS) {
            lastCursorWrite = now;
            await cursors.set(cursorName, s.lsn, commits.at(s.lsn));
          }
        },
      });
      if (signal.aborted) {
        const s = applier.state;
        if (s) await cursors.set(cursorName, s.lsn, commits.at(s.lsn));
        return;
      }
    } catch (err) {
      if (signal.aborted) return;
      const code = err instanceof TidemarkError ? err.code : 'UNEXPECTED';
      if (code === 'TARGET_HELD') continue;
      if (code === 'TARGET_READ_ONLY') {
        const now = Date.now();
        const cur = trouble as Trouble | null;
        if (cur?.kind !== 'waiting' || now - cur.warnedAt >= READ_ONLY_WARN_MS) {
          const since: Date = cur?.kind === 'waiting' ? cur.since : new Date(now);
          trouble = { kind: 'waiting', since, at: positionKey(applier.state), warnedAt: now };
          const msg =
            `target ${target.name} is read-only (read_only=1) since ${since.toISOString()}: apply waits and ` +
            'resumes when it is writable; capture and the other targets go on';
          alog.warn({ err: describeChain(err) }, msg);
          m.state('waiting');
          await report({ state: 'waiting', code, error: msg, since: since.toISOString(), retry_at: null, next: null });
        }
        await sleep(READ_ONLY_POLL_MS, signal);
        continue;
      }
      if (isRetriable(err)) {
        if (code === 'JOURNAL_TRUNCATED') scanMemo.after = -1n; // frames it scanned may be gone: scan again
        const ms = delay.next();
        alog.warn(
          { err: describeChain(err), attempt, delayMs: ms },
          'apply failed: restarting from the stored position',
        );
        await sleep(ms, signal);
        continue;
      }
      if (applier.lastReadLsn > isolateThroughLsn) {
        // The failing statement may belong to any transaction of the group: find it one transaction at a time.
        isolateThroughLsn = applier.lastReadLsn;
        alog.info(
          { err: describeChain(err), throughLsn: isolateThroughLsn.toString() },
          'apply failed: retrying one transaction at a time to find the failing transaction',
        );
        continue;
      }
      await applier.close().catch(() => {}); // not held open while it waits
      await failed(err, applier.state);
    } finally {
      await applier.close().catch(() => {});
    }
  }
}

/**
 * Where to read the journal from: after the stored position, or the start of a newer baseline after it (what
 * comes before that baseline is replaced by it: applying it first could only fail or be overwritten).
 */
async function startingLsn(
  dir: string,
  st: AppliedState | null,
  memo: ScanMemo,
  signal: AbortSignal,
  log: Logger,
  startAt: StartHint | undefined,
): Promise<bigint> {
  const from = st ? st.lsn + 1n : 1n;
  const after = st ? { lsn: st.lsn, phase: st.phase, position: st.position, commitTimeUs: st.commitTimeUs } : null;
  const until = await journalEnd(dir);
  const scan = { first: true, signal, memo, until, ...(startAt ? { startAt } : {}) };
  const [next] = await baselineStarts(dir, after, scan).catch((err: unknown) => {
    log.warn({ err: describeChain(err) }, 'could not look for a newer baseline in the journal');
    return [];
  });
  if (!next || next.lsn <= from) return from;
  log.warn(
    { fromLsn: from.toString(), baselineLsn: next.lsn.toString(), baselineSeq: next.seq.toString() },
    `a newer baseline starts at journal LSN ${next.lsn}: the target jumps to it, skipping LSN ${from}–${next.lsn - 1n}`,
  );
  return next.lsn;
}
