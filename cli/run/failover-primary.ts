/**
 * The primary site's guard (`tidemark run --site <primary>` with a `failover` section): the primary's own half
 * of "never two writable primaries". Each round it looks at what the primary site can still reach:
 *
 *   isolated   neither the witness answers nor any standby's ship link is streaming, for fail_after_ms:
 *              the standbys may be taking over right now, so this site fences itself — its database
 *              read_only=ON with the client sessions killed, the VIP dropped — before they finish (their
 *              takeover needs the same fail_after_ms and then fencing, draining and promotion). Clients
 *              writing through the VIP can then not write here any more, also after the network heals.
 *   db down    the local database has not been writable for fail_after_ms: the VIP is dropped (it serves
 *              nothing here; the standby that takes over announces it).
 *
 * The guard never adds the VIP and never makes the database writable again: an operator (or a planned
 * switchover) does that, once it is clear which site is the primary.
 */
import type { Logger } from 'pino';
import { fenceServer, isWritable } from '../../failover/fence.ts';
import { sendAlert } from '../../failover/hooks.ts';
import { vipDel, vipHeld } from '../../failover/vip.ts';
import { fetchWitnessView } from '../../failover/witness-client.ts';
import { describeChain, sleep } from '../../record/errors.ts';
import type { Config, ResolvedFailover } from '../config.ts';
import { asFailoverAccount, failoverOf } from './failover-spec.ts';
import { writeMonitorFile } from './failover-state.ts';
import { alertHooks } from './failover-takeover.ts';
import { readLinkState } from './ship-state.ts';
import type { LinkSecurity } from '../../ship/tcp/identity.ts';
import { linkSecurity } from './ship-transports.ts';

const FRESH_MS = 5000;

async function anyStandbyStreaming(config: Config): Promise<boolean> {
  for (const s of config.standbys) {
    const st = await readLinkState(config.journal.dir, s.name).catch(() => null);
    if (st && st.state === 'streaming' && Date.now() - Date.parse(st.updatedAt) < FRESH_MS) return true;
  }
  return false;
}

async function witnessAnswers(f: ResolvedFailover, tls: LinkSecurity): Promise<boolean> {
  if (!f.witness) return false;
  try {
    await fetchWitnessView(f.witness.address, { tls, timeoutMs: f.monitor.probe_timeout_ms });
    return true;
  } catch {
    return false;
  }
}

async function dropVip(f: ResolvedFailover, log: Logger, why: string): Promise<void> {
  const vip = f.vip;
  if (!vip) return;
  const spec = { address: vip.address, interface: vip.interface, garpCount: vip.garp_count };
  try {
    if (await vipHeld(spec, { timeoutMs: f.timeouts.vip_ms })) {
      await vipDel(spec, { timeoutMs: f.timeouts.vip_ms });
      log.error(`primary guard: VIP ${vip.address} dropped: ${why}`);
    }
  } catch (err) {
    log.error({ err: describeChain(err) }, `primary guard: could not drop VIP ${vip.address}`);
  }
}

export async function primaryGuardLoop(config: Config, log: Logger, signal: AbortSignal): Promise<void> {
  const f = failoverOf(config);
  const glog = log.child({ component: 'primary-guard' });
  const local = asFailoverAccount(f, config.source);
  // Read once: the site's certificate and key do not change while this runs.
  const tls = f.witness ? await linkSecurity(config, config.site, glog) : 'plaintext';
  const limit = f.monitor.fail_after_ms;
  let reachableAt = Date.now();
  let writableAt = Date.now();
  let fenced = false;
  glog.info(`primary guard of ${config.site} started: self-fences after ${limit} ms without witness and standbys`);
  while (!signal.aborted) {
    const now = Date.now();
    const [witness, standby, writable] = await Promise.all([
      witnessAnswers(f, tls),
      anyStandbyStreaming(config),
      // Login or privilege errors are not "down": they are logged, and the VIP is left alone.
      isWritable(local, f.monitor.probe_timeout_ms).catch((err: unknown) => {
        glog.error({ err: describeChain(err) }, 'primary guard: cannot read read_only of the local database');
        return 'error' as const;
      }),
    ]);
    if (witness || standby) {
      reachableAt = now;
      fenced = false;
    }
    if (writable === true || writable === 'error') writableAt = now;
    const isolatedMs = now - reachableAt;
    if (isolatedMs >= limit && !fenced) {
      fenced = true;
      const why = `isolated for ${isolatedMs} ms (no witness, no standby link)`;
      glog.error(`primary guard: ${why}: fencing this site`);
      const r = await fenceServer(local, { killSessions: true, timeoutMs: f.fence.timeout_ms, log: glog });
      (r.confirmed ? glog.warn : glog.error).call(glog, `primary guard: self-fence: ${r.detail}`);
      await dropVip(f, glog, why);
      await sendAlert(
        alertHooks(f),
        { kind: 'self-fence', site: config.site, at: new Date().toISOString(), why, ...r },
        glog,
      );
    }
    if (now - writableAt >= limit)
      await dropVip(f, glog, `the database has not been writable for ${now - writableAt} ms`);
    await writeMonitorFile(config.journal.dir, 'guard.json', {
      site: config.site,
      role: 'primary',
      updatedAt: new Date().toISOString(),
      monitor: null,
      decision: `witness ${witness ? 'answers' : 'silent'}, standby link ${standby ? 'up' : 'down'}, database ${
        writable === 'error'
          ? 'unknown (error)'
          : writable === null
            ? 'unreachable'
            : writable
              ? 'writable'
              : 'read-only'
      }${fenced ? ', self-fenced' : ''}`,
      pid: process.pid,
    }).catch(() => undefined);
    await sleep(f.monitor.suspect_interval_ms, signal);
  }
}
