/**
 * The apply half of `tidemark run`, one loop per target: reads the replica's stored position, follows the
 * journal from the LSN after it, applies, and acknowledges to the journal cursor `apply:<target>` (what
 * retention may delete). The replica's position table is the source of truth; the cursor only trails it, so it
 * is written at most once a second. Retriable failures (lost connection, deadlock, journal truncated by a
 * capture restart) restart the loop from the replica's stored position.
 *
 * A held target (rewind/forward/undo set `hold` in its position table) is not applied to: the loop logs why once
 * and checks again every HOLD_POLL_MS until the hold is released, then continues from the stored position.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { MysqlApplier } from '../../apply/mysql/applier.ts';
import { PROMOTED_HOLD } from '../../apply/mysql/position-table.ts';
import { describeChain, isRetriable, sleep, TidemarkError } from '../../record/errors.ts';
import { CursorStore, JournalReader, readEntries } from '../../ship/journal/index.ts';
import type { Config } from '../config.ts';
import { backoff } from './backoff.ts';

const CURSOR_EVERY_MS = 1000;
const HOLD_POLL_MS = 2000;

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
  let lastCursorWrite = 0;
  let heldFor: string | null = null;
  for (let attempt = 1; !signal.aborted; attempt++) {
    const applier = new MysqlApplier({
      target,
      source: config.source.name,
      log,
      ...(metrics && attempt === 1 ? { metrics } : {}),
    });
    try {
      const state = await applier.open();
      if (applier.hold?.startsWith(PROMOTED_HOLD) === true) {
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
      const fromLsn = state ? state.lsn + 1n : 1n;
      alog.info({ fromLsn: fromLsn.toString(), seq: state?.seq.toString() ?? null }, 'applying from the journal');
      const reader = new JournalReader({ dir, fromLsn, follow: true, signal, log: alog });
      await applier.run(readEntries(reader), {
        signal,
        onApplied: async (s) => {
          delay.reset();
          const now = Date.now();
          if (now - lastCursorWrite >= CURSOR_EVERY_MS) {
            lastCursorWrite = now;
            await cursors.set(cursorName, s.lsn);
          }
        },
      });
      if (signal.aborted) {
        const s = applier.state;
        if (s) await cursors.set(cursorName, s.lsn);
        return;
      }
    } catch (err) {
      if (signal.aborted) return;
      if (!isRetriable(err)) throw err;
      if (err instanceof TidemarkError && err.code === 'TARGET_HELD') continue;
      const ms = delay.next();
      alog.warn({ err: describeChain(err), attempt, delayMs: ms }, 'apply failed: restarting from the stored position');
      await sleep(ms, signal);
    } finally {
      await applier.close().catch(() => {});
    }
  }
}
