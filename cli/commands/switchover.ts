/**
 * `tidemark switchover -c FILE --to STANDBY`: a planned move of the primary role to a standby, with zero loss.
 * Run at the standby's site while `tidemark run` runs at both sites. The primary is fenced (read_only, client
 * sessions killed: writes pause), a marker written after the fence is awaited at the standby's target (so it
 * has every transaction the primary committed; MySQL: a row of the captured heartbeat table, PostgreSQL: a
 * transactional logical message capture journals), the target is promoted and the VIP moved; the write pause (fence
 * to promotion) is printed. If the standby does not catch up within failover.timeouts.drain_ms, nothing is
 * promoted and the primary is made writable again.
 *
 * The old primary stays fenced: `tidemark failback` makes it a standby of the new one (it finds nothing errant).
 */
import { formatStoredPosition, storePromotionPosition } from '../../failover/db-steps.ts';
import { formatTimeline } from '../../failover/plan.ts';
import { TidemarkError } from '../../core/errors.ts';
import { asFailoverAccount, failoverOf, primaryDbSteps } from '../../node/failover-spec.ts';
import { setSwitchover } from '../../node/failover-state.ts';
import { capturedHeartbeat } from '../../failover/switchover-marker.ts';
import { standbyToPromote, takeOver } from '../../node/failover-takeover.ts';
import type { CommandContext } from './context.ts';

export interface SwitchoverOptions extends CommandContext {
  readonly to: string;
}

export async function switchoverCommand(o: SwitchoverOptions): Promise<number> {
  const { config, log } = o;
  const f = failoverOf(config);
  const s = await standbyToPromote(config, o.to);
  const db = primaryDbSteps(config);
  // MySQL's marker is a row of the captured heartbeat table; PostgreSQL's a logical message (no table needed).
  if (db.engine === 'mysql') capturedHeartbeat(config.source, f.monitor.heartbeat.table);
  const writable = await db.isWritable(asFailoverAccount(f, config.source), f.monitor.probe_timeout_ms);
  if (writable !== true) {
    throw new TidemarkError(
      `the primary ${config.source.host}:${config.source.port} is ${writable === null ? 'unreachable' : 'read-only'}: ` +
        'a switchover needs a live primary (use tidemark failover for a dead one)',
      { code: 'FAILOVER_REFUSED' },
    );
  }
  await setSwitchover(s.journal_dir, true);
  try {
    const r = await takeOver({
      config,
      standby: s,
      mode: 'switchover',
      reason: `switchover to ${s.name}`,
      force: false,
      log,
      stopReceiver: async () => undefined,
    });
    o.stdout.write(`switchover ${r.status}: ${r.reason}\n${formatTimeline(r.timeline, r.startedAt).join('\n')}\n`);
    const fenced = r.timeline.find((e) => e.step === 'fence-db')?.startedAt;
    const promoted = r.timeline.find((e) => e.step === 'promote')?.endedAt;
    if (r.position && fenced != null && promoted != null) {
      o.stdout.write(
        `${s.name} is the primary now, at ${formatStoredPosition(storePromotionPosition(r.position))}; writes paused ` +
          `${((promoted - fenced) / 1000).toFixed(3)} s\n`,
      );
    }
    return r.position ? 0 : 1;
  } finally {
    await setSwitchover(s.journal_dir, false);
  }
}
