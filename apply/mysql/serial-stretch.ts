/**
 * The parts of a parallel-apply run that go through the serial applier (parallel-run.ts): DDL, a transaction too
 * big to hold, the transactions up to `isolateThroughLsn`. Once every unit in flight has committed, the serial
 * MysqlApplier re-reads the stored position and applies `head`, then what `next()` reads, up to and including the
 * first item `stop` accepts — its DDL protocol, streaming and grouping exactly as when it runs alone.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { ApplyRunOptions, JournalItem } from '../../engine/target.ts';
import type { MysqlApplier } from './applier.ts';

/** Returns `ended`: the journal ended (or the run was aborted) before `stop` accepted an item. */
export async function serialStretch(
  serial: MysqlApplier,
  head: readonly JournalItem[],
  next: () => Promise<JournalItem | null>,
  stop: (it: JournalItem) => boolean,
  opts: ApplyRunOptions,
): Promise<{ ended: boolean }> {
  await serial.open();
  if (serial.hold !== null) {
    throw new TidemarkError(`the target is held (${serial.hold}): apply pauses`, {
      code: 'TARGET_HELD',
      retriable: true,
    });
  }
  let ended = false;
  async function* feed(): AsyncGenerator<JournalItem> {
    for (const it of head) {
      yield it;
      if (stop(it)) return;
    }
    for (;;) {
      const it = await next();
      if (!it) {
        ended = true;
        return;
      }
      yield it;
      if (stop(it)) return;
    }
  }
  await serial.run(feed(), {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onApplied ? { onApplied: opts.onApplied } : {}),
    ...(opts.isolateThroughLsn !== undefined ? { isolateThroughLsn: opts.isolateThroughLsn } : {}),
  });
  return { ended: ended || opts.signal?.aborted === true };
}
