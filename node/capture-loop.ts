/**
 * The capture half of `tidemark run`: owns the journal writer, resumes capture from the journal's last commit,
 * and runs retention periodically. The source engine is the adapter `source.kind` names (engine/source.ts). On a
 * retriable capture failure the writer is closed and reopened before the next attempt, so its recovery drops any
 * unit the failed attempt left unfinished (readers see the truncation epoch and restart cleanly) — a retry can
 * never append a transaction's rows twice.
 */
import type { Logger } from 'pino';
import { ConfigError, describeChain, isRetriable, sleep } from '../core/errors.ts';
import { sourceAdapter } from '../config/engines.ts';
import type { SourceAdapter } from '../engine/source.ts';
import { positionEngine } from '../record/position.ts';
import type { CommitEntry } from '../record/record.ts';
import { applyRetention, JournalSink, JournalWriter } from '../journal/index.ts';
import type { Config } from '../config/config.ts';
import { backoff } from '../core/backoff.ts';
import { baselineLedger } from './baseline-ledger.ts';
import { startCaptureState } from './capture-state.ts';
import type { CapGate } from './ship-cap.ts';

const RETENTION_EVERY_MS = 60_000;

export interface CaptureLoopOptions {
  /** Take a new baseline even though the journal has a resume point (after the source purged needed binlogs). */
  rebaseline?: boolean;
  /** Standbys at ship.cap_bytes with at_cap stop-capture: capture pauses while it holds a reason. */
  gate?: CapGate;
}

const GATE_POLL_MS = 1000;

/** A journal written from another engine's source cannot be resumed by this one: say so instead of misreading it. */
function checkResumeEngine(adapter: SourceAdapter, resume: CommitEntry | null, dir: string): void {
  if (!resume || positionEngine(resume.position) === adapter.positionEngine) return;
  throw new ConfigError(
    `source.kind: the journal ${dir} holds positions of engine "${positionEngine(resume.position)}", but source.kind ` +
      `"${adapter.kind}" writes "${adapter.positionEngine}" positions: use a new journal.dir for this source`,
    { dir },
  );
}

/** Waits while the gate holds capture (logging why once); returns at once when it does not. */
async function waitGate(gate: CapGate | undefined, log: Logger, signal: AbortSignal): Promise<void> {
  let why = gate?.blocked() ?? null;
  if (why === null) return;
  log.error({ why }, `capture paused: ${why}; the source's binlog keeps the changes meanwhile`);
  while (why !== null && !signal.aborted) {
    await sleep(GATE_POLL_MS, signal);
    why = gate?.blocked() ?? null;
  }
  if (!signal.aborted) log.info('capture resumes: no standby holds it any more');
}

/** The source journal's writer with the config's journal settings (capture, and failback's catch-up). */
export function openJournalWriter(j: Config['journal'], log: Logger): Promise<JournalWriter> {
  return JournalWriter.open({
    dir: j.dir,
    fsync: j.fsync,
    groupCommitMs: j.group_commit_ms,
    segmentBytes: j.segment_bytes,
    log: log.child({ component: 'journal' }),
  });
}

export async function captureLoop(
  config: Config,
  log: Logger,
  signal: AbortSignal,
  opts: CaptureLoopOptions = {},
): Promise<void> {
  const clog = log.child({ component: 'capture-loop' });
  const j = config.journal;
  const delay = backoff(1000, 30_000);
  const adapter = sourceAdapter(config.source);
  for (let attempt = 1; !signal.aborted; attempt++) {
    await waitGate(opts.gate, clog, signal);
    if (signal.aborted) return;
    // One attempt runs until the process stops, or until the gate closes (then capture stops and waits above).
    const attemptStop = new AbortController();
    const onStop = () => attemptStop.abort();
    signal.addEventListener('abort', onStop, { once: true });
    const gateWatch = setInterval(() => {
      if (opts.gate?.blocked()) attemptStop.abort();
    }, GATE_POLL_MS);
    const writer = await openJournalWriter(j, log);
    const retention = setInterval(() => {
      applyRetention({ dir: j.dir, keepHours: j.retention.keep_hours, log: clog }).catch((err) =>
        clog.warn({ err: describeChain(err) }, 'journal retention failed'),
      );
    }, RETENTION_EVERY_MS);
    try {
      const sink = new JournalSink(writer);
      const resume = sink.lastCommit();
      clog.info(
        {
          resume: resume ? { seq: resume.seq.toString(), phase: resume.phase } : null,
          head: writer.headLsn.toString(),
        },
        resume ? 'capture resuming from the journal' : 'empty journal: capture starts with a baseline',
      );
      checkResumeEngine(adapter, resume, j.dir);
      const capture = await adapter.capture({
        source: config.source,
        sink,
        resume,
        log,
        // Only the first attempt of this process re-baselines; once a baseline-end is in the journal, resume.
        forceBaseline: opts.rebaseline === true && attempt === 1,
        // A daemon keeps trying while the source is down (the start-up preflight already caught bad settings);
        // every failed attempt is logged as a warning.
        retry: { attempts: Number.MAX_SAFE_INTEGER },
        baselineLedger: baselineLedger(j.dir),
      });
      // Other processes read how far capture has read the source's log (status, verify, undo on the source).
      const readState = startCaptureState(j.dir, () => capture.status(), clog);
      try {
        await capture.run(attemptStop.signal);
      } finally {
        await readState.stop();
      }
      delay.reset();
      if (signal.aborted) return;
      if (!attemptStop.signal.aborted) clog.warn('capture stopped by itself; restarting');
    } catch (err) {
      if (signal.aborted) return;
      if (attemptStop.signal.aborted) continue; // stopped by the gate: wait for it at the top of the loop
      if (!isRetriable(err)) throw err;
      const ms = delay.next();
      clog.warn({ err: describeChain(err), attempt, delayMs: ms }, 'capture failed: restarting');
      await sleep(ms, signal);
    } finally {
      clearInterval(gateWatch);
      signal.removeEventListener('abort', onStop);
      clearInterval(retention);
      await writer.close().catch((err) => clog.error({ err: describeChain(err) }, 'closing the journal failed'));
    }
  }
}
