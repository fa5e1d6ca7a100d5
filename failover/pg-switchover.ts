/**
 * The drain of `tidemark switchover` on a PostgreSQL site (MySQL's: switchover-marker.ts). Once the primary is
 * fenced, a transactional logical message 'tidemark.switchover' is written through the failover account (WAL
 * only: no table, allowed on the fenced server). Capture journals its transaction as a commit with 0 rows
 * (capture/postgres/tx-streamer.ts), in commit order behind every transaction committed before the fence; the
 * standby's applier stores that commit's end in tidemark.applied (its `position`). So a target whose applied LSN reached the
 * message's LSN has applied everything the primary committed (zero loss).
 *
 * Why not the primary's WAL end: capture journals only commits of captured tables, so the target's applied
 * position never reaches pg_current_wal_lsn() on its own; the marker gives it a commit to reach.
 */
import { SWITCHOVER_MESSAGE_PREFIX } from '../capture/postgres/tx-streamer.ts';
import { sleep, TidemarkError } from '../core/errors.ts';
import { formatLsn } from '../postgres/lsn.ts';
import type { PgEndpoint } from '../postgres/session.ts';
import { emitPgMarker } from './pg-failback.ts';

/**
 * Writes the marker on the fenced primary, then waits until `applied()` (the source LSN of the target's last
 * applied commit, from its tidemark.applied position) reaches it;
 * `applied` throwing (the target unreachable) ends the drain: the switchover gives up before promoting.
 */
export async function drainPgSwitchover(
  primary: PgEndpoint,
  o: { text: string; target: string; applied: () => Promise<bigint>; signal: AbortSignal },
): Promise<{ detail: string; marker: bigint }> {
  const marker = await emitPgMarker(primary, SWITCHOVER_MESSAGE_PREFIX, o.text);
  const started = Date.now();
  for (;;) {
    const at = await o.applied();
    if (at >= marker) {
      return {
        detail:
          `${o.target} applied the switchover marker ${formatLsn(marker)} after ${Date.now() - started} ms ` +
          `(applied up to ${formatLsn(at)})`,
        marker,
      };
    }
    if (o.signal.aborted) throw new TidemarkError('switchover drain stopped', { code: 'ABORTED' });
    await sleep(20, o.signal);
  }
}
