/**
 * A takeover by one standby (automatic, from its monitor, or `tidemark failover`): the plan's steps
 * (failover/plan.ts) bound to this config's servers.
 *
 *   fence-db    the old primary, through the failover account: read_only=ON and its sessions killed (PostgreSQL:
 *               default_transaction_read_only, client backends terminated; the engine's steps: failover/db-steps.ts)
 *   fence-hook  failover.fence.command, when configured
 *   drain       the receiver is stopped; wait until the target applied everything the mirror holds
 *   promote     hold the target (its applier stops for good: hold "promoted …"), then make it writable and
 *               read its binlog position
 *   move-vip    add the VIP here and announce it (gratuitous ARP); the old primary's site drops it itself
 *               (the primary guard, failover-primary.ts) when it is isolated or its database is down
 *   repoint     other standbys: they follow this site once its `tidemark run` made the mirror the primary journal
 *               (node/promoted.ts); tcp only (a broker standby needs a rebaseline: reported as failed)
 *   alert       the hooks, with the timeline
 */
import type { Logger } from 'pino';
import { fenceHook } from '../failover/fence.ts';
import { type AnyPromotionPosition, failoverDbSteps, storePromotionPosition } from '../failover/db-steps.ts';
import { type AlertHooks, sendAlert } from '../failover/hooks.ts';
import { type FenceReport, type StepExecutors, runTakeover, type TakeoverResult } from '../failover/plan.ts';
import { PROMOTED_HOLD } from '../failover/promote-hold.ts';
import { type FenceDeadline, nextConfirmAt } from '../failover/timeline.ts';
import { capturedHeartbeat, waitMarker, writeMarker } from '../failover/switchover-marker.ts';
import { vipAdd, vipDel } from '../failover/vip.ts';
import { drainPgSwitchover } from '../failover/pg-switchover.ts';
import { describeChain, sleep, TidemarkError } from '../core/errors.ts';
import { readDurableLsn } from '../journal/index.ts';
import type { StandbyConfig } from '../config/config-sites.ts';
import { mirrorDir } from '../journal/index.ts';
import type { Config, ResolvedFailover } from '../config/config.ts';
import { targetAdapter } from '../config/engines.ts';
import { asFailoverAccount, promotableTarget } from './failover-spec.ts';
import { type PromotionRecord, readPromotion, writePromotion } from './failover-state.ts';

/** The alert hooks of the config, the webhook URL resolved from its environment variable. */
export function alertHooks(f: ResolvedFailover): AlertHooks {
  const w = f.hooks.webhook;
  const url = w ? (w.url ?? process.env[w.url_env ?? '']) : undefined;
  return {
    ...(w && url ? { webhook: { url, timeout_ms: w.timeout_ms } } : {}),
    ...(f.hooks.command ? { command: f.hooks.command } : {}),
  };
}

/** The target's applied LSN in the source journal (0n when nothing). */
async function appliedLsn(config: Config, target: Config['targets'][number]): Promise<bigint> {
  const r = await targetAdapter(target).readStored(target, config.source.name);
  if (r.error) throw new TidemarkError(`target ${target.name}: ${r.error}`, { code: 'CONNECT', retriable: true });
  return r.stored?.state?.lsn ?? 0n;
}

/** The source position (PostgreSQL: the commit end LSN) of the target's last applied commit (0n when nothing). */
async function appliedSourceLsn(config: Config, target: Config['targets'][number]): Promise<bigint> {
  const r = await targetAdapter(target).readStored(target, config.source.name);
  if (r.error) throw new TidemarkError(`target ${target.name}: ${r.error}`, { code: 'CONNECT', retriable: true });
  const p = r.stored?.state?.position;
  return p?.kind === 'sequence' ? p.value : 0n;
}

/** Waits until the target applied the last complete unit of its mirror journal; returns that LSN. */
async function drainTarget(
  config: Config,
  s: StandbyConfig,
  signal: AbortSignal,
): Promise<{ detail: string; lsn: bigint }> {
  const target = promotableTarget(config, s.name);
  if (!target) throw new TidemarkError(`standby ${s.name} has no target to promote`, { code: 'CONFIG' });
  const want = await readDurableLsn(mirrorDir(config.source.name, s));
  for (;;) {
    const at = await appliedLsn(config, target);
    if (at >= want) return { detail: `applied up to LSN ${at} (the mirror's last complete unit: ${want})`, lsn: at };
    await sleep(200, signal);
  }
}

/**
 * The standby `--to` names for `tidemark failover` / `switchover`: configured with a target to promote, and not
 * promoted already.
 */
export async function standbyToPromote(config: Config, to: string): Promise<StandbyConfig> {
  const s = config.standbys.find((x) => x.name === to);
  if (!s || !promotableTarget(config, s.name)) {
    throw new TidemarkError(`--to ${to}: not a standby with a target to promote (targets[].site: ${to})`, {
      code: 'USAGE',
    });
  }
  const done = await readPromotion(s.journal_dir);
  if (done) {
    throw new TidemarkError(`${s.name} was already promoted at ${done.at} (${s.journal_dir}/failover/promotion.json)`, {
      code: 'USAGE',
    });
  }
  return s;
}

export interface TakeoverRun {
  config: Config;
  standby: StandbyConfig;
  /** switchover: planned; the drain waits for a marker written after the fence (failover-switchover.ts). */
  mode: 'automatic' | 'manual' | 'switchover';
  reason: string;
  force: boolean;
  log: Logger;
  /** Stops this standby's receiver (nothing more is taken from the old primary). */
  stopReceiver(): Promise<void>;
  /** Starts it again after a takeover that did not promote. */
  resumeReceiver?(): void;
  /**
   * Automatic takeovers: from when the old primary's guard has fenced it (failover/timeline.ts). The fence hook
   * is asked at once and, until it confirms, again from then on (every 250 ms doubling to 2 s, for
   * fence.confirm_for_ms). Absent (tidemark failover, switchover): asked once.
   */
  fenceDeadline?: FenceDeadline;
  /** Each fence hook try that did not confirm (the monitor shows it in status). */
  onFenceTry?(tries: number, detail: string): void;
}

/** The fence hook, retried up to the fence timeline's bound (see TakeoverRun.fenceDeadline). */
async function fenceHookRetrying(
  o: TakeoverRun,
  f: ResolvedFailover,
  run: () => Promise<FenceReport>,
  signal: AbortSignal,
  /** The database fence confirmed meanwhile: no point in asking again. */
  enough: () => boolean,
): Promise<FenceReport> {
  const startedAt = Date.now();
  let r = await run();
  let tries = 1;
  let afterDeadline = 0;
  const dl = o.fenceDeadline;
  while (!r.confirmed && dl && !signal.aborted && !enough()) {
    o.onFenceTry?.(tries, r.detail);
    const next = nextConfirmAt({
      now: Date.now(),
      startedAt,
      deadlineAt: dl.at,
      triesAfterDeadline: afterDeadline,
      confirmForMs: f.fence.confirm_for_ms,
    });
    if (next === null) break;
    await sleep(Math.max(0, next - Date.now()), signal);
    if (enough()) break;
    if (Date.now() >= dl.at) afterDeadline++;
    r = await run();
    tries++;
  }
  if (tries === 1) return r;
  const when = dl
    ? `; the old primary's guard fences itself by ${new Date(dl.lastContactAt + f.monitor.fail_after_ms).toISOString()}, confirmation expected from ${new Date(dl.at).toISOString()}`
    : '';
  return { ...r, detail: `${r.detail} (try ${tries}${when})` };
}

export async function takeOver(o: TakeoverRun): Promise<TakeoverResult<AnyPromotionPosition>> {
  const { config, standby: s, log } = o;
  const f = config.failover as ResolvedFailover;
  const target = promotableTarget(config, s.name);
  if (!target) throw new TidemarkError(`standby ${s.name} has no target to promote`, { code: 'CONFIG' });
  const src = config.source as { kind?: string; slot?: string; publication?: string };
  const db = failoverDbSteps(src.kind, (target as { kind?: string }).kind);
  // Fencing must not wait for the source's full connect timeout on a primary that is gone.
  const primary = asFailoverAccount(f, {
    ...config.source,
    connect_timeout_ms: Math.min(config.source.connect_timeout_ms, f.monitor.probe_timeout_ms),
  });
  const hooks = alertHooks(f);
  const event = (kind: string, extra: object = {}) => ({
    kind,
    site: s.name,
    oldPrimary: config.site,
    at: new Date().toISOString(),
    ...extra,
  });
  /** The source-journal LSN the new primary holds (what failback compares the old primary's journal with). */
  const drained: { lsn: bigint | null } = { lsn: null };
  let dbFenced = false;
  const exec: StepExecutors<AnyPromotionPosition> = {
    fenceDb: async () => {
      const r = f.fence.read_only
        ? await db.fence(primary, { killSessions: f.fence.kill_sessions, timeoutMs: f.fence.timeout_ms, log })
        : { confirmed: false, detail: 'failover.fence.read_only is off' };
      dbFenced = r.confirmed;
      return r;
    },
    fenceHook: f.fence.command
      ? (ctx) =>
          fenceHookRetrying(
            o,
            f,
            () =>
              fenceHook(f.fence.command as string[], {
                timeoutMs: f.fence.timeout_ms,
                event: event('fence'),
                signal: ctx.signal,
              }),
            ctx.signal,
            () => dbFenced,
          )
      : undefined,
    drain: async (ctx) => {
      if (o.mode === 'switchover' && db.engine === 'postgres') {
        const d = await drainPgSwitchover(primary as unknown as Parameters<typeof drainPgSwitchover>[0], {
          text: `switchover to ${s.name}`,
          target: target.name,
          applied: () => appliedSourceLsn(config, target),
          signal: ctx.signal,
        });
        drained.lsn = await appliedLsn(config, target);
        return { detail: d.detail };
      }
      if (o.mode === 'switchover') {
        const writer = `switchover:${s.name}`;
        const marker = capturedHeartbeat(config.source, f.monitor.heartbeat.table);
        const seq = await writeMarker(asFailoverAccount(f, config.source), marker, writer);
        const detail = await waitMarker(target, marker, writer, seq, ctx.signal);
        drained.lsn = await appliedLsn(config, target);
        return { detail };
      }
      await o.stopReceiver();
      const d = await drainTarget(config, s, ctx.signal);
      drained.lsn = d.lsn;
      return { detail: d.detail };
    },
    promote: async () => {
      const why = `${PROMOTED_HOLD}${s.name} is the primary since ${new Date().toISOString()}`;
      await db.hold(target, asFailoverAccount(f, target), config.source.name, why, log);
      const capture = {
        ...(src.slot ? { slot: src.slot } : {}),
        ...(src.publication ? { publication: src.publication } : {}),
      };
      const r = await db.promote(asFailoverAccount(f, target), { timeoutMs: f.timeouts.promote_ms, log, capture });
      return { detail: r.detail, position: r.position };
    },
    moveVip: f.vip
      ? async () => {
          const vip = f.vip as NonNullable<ResolvedFailover['vip']>;
          const spec = { address: vip.address, interface: vip.interface, garpCount: vip.garp_count };
          let old = 'the old site drops it itself (its guard)';
          if (vip.old_primary_via) {
            // Best effort: the old host may be down or cut off; the fence already stopped its database.
            old = await vipDel(spec, { timeoutMs: Math.min(5000, f.timeouts.vip_ms), via: vip.old_primary_via }).then(
              (r) => `old host: ${r.detail}`,
              (err: unknown) => `old host not reached: ${describeChain(err)}`,
            );
          }
          const r = await vipAdd(spec, { timeoutMs: f.timeouts.vip_ms });
          return { detail: `${r.detail}; ${old}` };
        }
      : undefined,
    repoint: async () => {
      const others = config.standbys.filter((x) => x.name !== s.name);
      if (others.length === 0) return { detail: 'no other standbys' };
      const brokers = others.filter((x) => x.transport !== 'tcp').map((x) => `${x.name} (${x.transport})`);
      if (brokers.length > 0) {
        throw new TidemarkError(
          `${brokers.join(', ')}: a broker standby cannot follow the promoted journal; rebaseline it from ${s.name}`,
          { code: 'NOT_SUPPORTED' },
        );
      }
      return {
        detail:
          `${others.map((x) => x.name).join(', ')} follow ${s.name} from their acknowledged LSN once its tidemark ` +
          'run promoted the journal (capture from the promotion position, node/promoted.ts)',
      };
    },
    alert: async (result) => {
      await sendAlert(hooks, event('takeover', { mode: o.mode, result: summary(result) }), log);
      return { detail: 'alert hooks run' };
    },
  };
  const result = await runTakeover(exec, {
    oldPrimary: config.site,
    winner: s.name,
    force: o.force,
    timeoutsMs: { drain: f.timeouts.drain_ms, promote: f.timeouts.promote_ms, 'move-vip': f.timeouts.vip_ms },
  });
  if (!result.position) o.resumeReceiver?.();
  if (o.mode === 'switchover' && !result.position) {
    // Not promoted: the primary stays the primary, writable again (the pause ends here).
    await db.unfence(primary, f.account.user, log);
  }
  if (result.position) {
    const record: PromotionRecord = {
      at: new Date(result.endedAt).toISOString(),
      standby: s.name,
      target: target.name,
      oldPrimary: config.site,
      mode: o.mode,
      reason: o.reason,
      position: storePromotionPosition(result.position),
      appliedLsn: drained.lsn === null ? null : drained.lsn.toString(),
      status: result.status,
      timeline: result.timeline,
    };
    await writePromotion(s.journal_dir, record);
  }
  return result;
}

function summary(r: TakeoverResult<AnyPromotionPosition>) {
  return {
    status: r.status,
    reason: r.reason,
    winner: r.winner,
    position: r.position ? storePromotionPosition(r.position) : null,
    timeline: r.timeline,
  };
}
