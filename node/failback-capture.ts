/**
 * Failback's catch-up: capture the old primary's binlog to its end, so that its journal holds every transaction
 * it committed. PostgreSQL: the same, from the capture slot (it retains every transaction not confirmed), up to a
 * marker written after the fence (failover/pg-failback.ts: an idle stream never reports pg_current_wal_lsn()).
 */
import type { Logger } from 'pino';
import { sleep, TidemarkError } from '../core/errors.ts';
import { emitPgCatchUpMarker } from '../failover/pg-failback.ts';
import { comparePositions, formatPosition, type SourcePosition, sequencePosition } from '../record/position.ts';
import { JournalLockedError, JournalSink, type JournalWriter } from '../journal/index.ts';
import type { Config } from '../config/config.ts';
import { sourceAdapter } from '../config/engines.ts';
import { openJournalWriter } from './capture-loop.ts';

/** How long capture may take to reach the old primary's binlog end. */
const CATCH_UP_MS = 10 * 60_000;
const POLL_MS = 500;

/**
 * Captures from the source into the journal until capture has read the source's binlog up to where it ended when
 * this started (the old primary is fenced: nothing new should come), then stops. Progress every 5 s. The site's
 * `tidemark run` must be stopped (the journal is locked by its writer otherwise).
 */
export async function catchUpCapture(config: Config, log: Logger, signal: AbortSignal): Promise<void> {
  const adapter = sourceAdapter(config.source);
  const read = await adapter.readPosition(config.source);
  if (!read.position) {
    throw new TidemarkError(`cannot read the old primary's binlog position: ${read.error}`, {
      code: 'CONNECT',
      retriable: true,
    });
  }
  let end: SourcePosition = read.position;
  if ((config.source as { kind?: string }).kind === 'postgres') {
    const text = `tidemark failback catch-up at ${new Date().toISOString()}`;
    end = sequencePosition(
      'postgres',
      await emitPgCatchUpMarker(config.source as unknown as Parameters<typeof emitPgCatchUpMarker>[0], text),
    );
  }
  const j = config.journal;
  let writer: JournalWriter;
  try {
    writer = await openJournalWriter(j, log);
  } catch (err) {
    if (!(err instanceof JournalLockedError)) throw err;
    throw new TidemarkError(`${j.dir} is in use (${err.message}): stop tidemark run at this site before failback`, {
      code: 'FAILBACK_BUSY',
      cause: err,
    });
  }
  const ac = new AbortController();
  const stop = () => ac.abort();
  signal.addEventListener('abort', stop, { once: true });
  let running: Promise<void> = Promise.resolve();
  try {
    const sink = new JournalSink(writer);
    const capture = await adapter.capture({
      source: config.source,
      sink,
      resume: sink.lastCommit(),
      log,
      forceBaseline: false,
    });
    let failed: unknown;
    running = capture.run(ac.signal).catch((err: unknown) => {
      failed = err;
    });
    const deadline = Date.now() + CATCH_UP_MS;
    let said = 0;
    for (;;) {
      if (failed !== undefined) throw failed;
      const at = capture.status().readPosition;
      if (at && comparePositions(at, end) >= 0) break;
      if (Date.now() > deadline) {
        throw new TidemarkError(
          `capture did not reach the old primary's binlog end ${formatPosition(end)} within ${CATCH_UP_MS / 1000} s ` +
            `(at ${at ? formatPosition(at) : 'nothing yet'})`,
          { code: 'FAILBACK_BEHIND', retriable: true },
        );
      }
      if (Date.now() - said > 5000) {
        said = Date.now();
        log.info(
          { at: at ? formatPosition(at) : null, end: formatPosition(end) },
          'failback: capturing up to the binlog end',
        );
      }
      await sleep(POLL_MS, signal);
    }
  } finally {
    // Capture stops before its writer closes, also when the catch-up failed.
    ac.abort();
    await running;
    signal.removeEventListener('abort', stop);
    await writer.close();
  }
}
