/**
 * The parts of a parallel-apply run that go through the serial applier (parallel-run.ts): DDL, a transaction too
 * big to hold, the transactions up to `isolateThroughLsn`. Once every unit in flight has committed, the serial
 * MysqlApplier re-reads the stored position and applies `head`, then what `next()` reads, up to and including the
 * first item `stop` accepts — its DDL protocol, streaming and grouping exactly as when it runs alone.
 */
import type { ApplyRunOptions, JournalItem } from '../../engine/target.ts';
import { heldError, type MysqlApplier } from './applier.ts';

/**
 * Returns `ended`: the journal ended (or the run was aborted) before `stop` accepted an item; `ddl`: a DDL entry went
 * through (the replica's keys and columns may have changed).
 */
export async function serialStretch(
  serial: MysqlApplier,
  target: string,
  head: readonly JournalItem[],
  next: () => Promise<JournalItem | null>,
  stop: (it: JournalItem) => boolean,
  opts: ApplyRunOptions,
): Promise<{ ended: boolean; ddl: boolean }> {
  await serial.open();
  if (serial.hold !== null) throw heldError(target, serial.hold);
  let ended = false;
  let ddl = false;
  async function* items(): AsyncGenerator<JournalItem> {
    yield* head;
    for (let it = await next(); it; it = await next()) yield it;
    ended = true;
  }
  async function* feed(): AsyncGenerator<JournalItem> {
    for await (const it of items()) {
      if (it.entry.kind === 'ddl') ddl = true;
      yield it;
      if (stop(it)) return;
    }
  }
  await serial.run(feed(), {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onApplied ? { onApplied: opts.onApplied } : {}),
    ...(opts.isolateThroughLsn !== undefined ? { isolateThroughLsn: opts.isolateThroughLsn } : {}),
  });
  return { ended: ended || opts.signal?.aborted === true, ddl };
}
