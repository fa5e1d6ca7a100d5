/**
 * The primary site's guard (`tidemark run --site <primary>` with a `failover` section): the primary's own half
 * of "never two writable primaries".
 *
 *   isolated   no contact with the witness (an answered request) nor with any standby (bytes on its ship link:
 *              ACKs or heartbeats; a broker standby: its link streaming) since `last contact`: at
 *              `last contact + fail_after_ms` this site fences itself — its database read_only=ON with the
 *              client sessions killed, the VIP dropped. A watchdog checks that deadline every 100 ms on the
 *              monotonic clock, apart from the probes (a witness request that hangs does not delay it). The
 *              standbys know the same rule and ask their fence command for confirmation only from their own
 *              last contact + fail_after_ms + a margin (failover/timeline.ts, failover/README.md): one timeline,
 *              known to both sides, without comparing clocks. The write window of an isolated primary is at
 *              most fail_after_ms plus GUARD_ALLOWANCE_MS (its tick, its event loop, its SET GLOBAL read_only).
 *   db down    the local database has not been writable for fail_after_ms: the VIP is dropped (it serves
 *              nothing here; the standby that takes over announces it).
 *
 * The guard never adds the VIP and never makes the database writable again: an operator (or a planned
 * switchover) does that, once it is clear which site is the primary.
 */
import type { Logger } from 'pino';
import { sendAlert } from '../failover/hooks.ts';
import { vipDel, vipHeld } from '../failover/vip.ts';
import { fetchWitnessView } from '../failover/witness-client.ts';
import { describeChain, sleep } from '../core/errors.ts';
import type { Config, ResolvedFailover } from '../config/config.ts';
import { asFailoverAccount, failoverOf, primaryDbSteps } from './failover-spec.ts';
import { writeMonitorFile } from './failover-state.ts';
import { alertHooks } from './failover-takeover.ts';
import { readLinkFile } from './ship-state.ts';
import { linkUp } from '../ship/link-status.ts';
import type { LinkSecurity } from '../ship/tcp/index.ts';
import { linkSecurity } from './ship-transports.ts';
import { lastHeard } from './link-contact.ts';
import { GUARD_STARTUP_GRACE_MS, GUARD_TICK_MS } from '../failover/timeline.ts';

const FRESH_MS = 5000;

/** A broker (Kafka/Redis) standby's link streaming, from its state file: its own contact is the broker's. */
async function anyBrokerStandbyStreaming(config: Config): Promise<boolean> {
  for (const s of config.standbys.filter((x) => x.transport !== 'tcp')) {
    const st = await readLinkFile(config.journal.dir, s.name).catch(() => null);
    if (st && linkUp(st) && Date.now() - Date.parse(st.updatedAt) < FRESH_MS) return true;
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
  const mono = () => performance.now();
  const started = mono();
  const tcp = config.standbys.filter((s) => s.transport === 'tcp').map((s) => s.name);
  /** Monotonic times of the last contacts: an answered witness request (its start), a streaming broker link. */
  let witnessAt: number | null = null;
  let brokerAt: number | null = null;
  // Before its first contact since start, the deadline counts from start + GUARD_STARTUP_GRACE_MS: a process
  // (re)started on a loaded host needs a moment for the witness's first answer and the standbys' first link
  // bytes, and must not fence its primary for that (with fail_after_ms at 1.5 s it did, issue #15).
  const origin = () =>
    witnessAt === null && brokerAt === null && lastHeard(tcp) === null ? started + GUARD_STARTUP_GRACE_MS : started;
  const lastContact = () => {
    const o = origin();
    return Math.max(o, witnessAt ?? o, brokerAt ?? o, lastHeard(tcp) ?? o);
  };
  let writableAt = Date.now();
  let fenced = false;
  let selfFenced: string | null = null;
  glog.info(
    `primary guard of ${config.site} started: self-fences ${limit} ms after its last contact with the witness and the standbys`,
  );

  const fence = async (isolatedMs: number): Promise<void> => {
    const why = `isolated for ${Math.round(isolatedMs)} ms (no witness, no standby link since the last contact)`;
    glog.error(`primary guard: ${why}: fencing this site`);
    const r = await primaryDbSteps(config).fence(local, {
      killSessions: true,
      timeoutMs: f.fence.timeout_ms,
      log: glog,
    });
    (r.confirmed ? glog.warn : glog.error).call(glog, `primary guard: self-fence: ${r.detail}`);
    selfFenced = new Date().toISOString();
    await dropVip(f, glog, why);
    await sendAlert(alertHooks(f), { kind: 'self-fence', site: config.site, at: selfFenced, why, ...r }, glog);
  };
  // The deadline, apart from the probes: fences at last contact + fail_after_ms (GUARD_TICK_MS late at most).
  const watchdog = (async () => {
    while (!signal.aborted) {
      let idle = mono() - lastContact();
      if (idle >= limit && !fenced) {
        // A stalled event loop (GC, a long synchronous step) is not isolation: the bytes that arrived meanwhile are
        // read first (setImmediate runs after the I/O poll), then the deadline is checked again. Matters more
        // since fail_after_ms is 1.5 s by default (issue #15).
        await new Promise<void>((r) => setImmediate(r));
        idle = mono() - lastContact();
      }
      if (idle >= limit && !fenced) {
        fenced = true;
        await fence(idle).catch((err: unknown) =>
          glog.error({ err: describeChain(err) }, 'primary guard: self-fence failed'),
        );
      } else if (idle < limit && fenced) {
        fenced = false; // contact again: armed for the next isolation (the fence itself stays)
      }
      await sleep(GUARD_TICK_MS, signal);
    }
  })();

  while (!signal.aborted) {
    const t = mono();
    const [witness, broker, writable] = await Promise.all([
      witnessAnswers(f, tls),
      anyBrokerStandbyStreaming(config),
      // Login or privilege errors are not "down": they are logged, and the VIP is left alone.
      primaryDbSteps(config)
        .isWritable(local, f.monitor.probe_timeout_ms)
        .catch((err: unknown) => {
          glog.error({ err: describeChain(err) }, 'primary guard: cannot read read_only of the local database');
          return 'error' as const;
        }),
    ]);
    if (witness) witnessAt = Math.max(witnessAt ?? t, t);
    if (broker) brokerAt = mono();
    const heard = lastHeard(tcp);
    const standby = broker || (heard !== null && mono() - heard < 3 * config.ship.heartbeat_ms);
    const now = Date.now();
    if (writable === true || writable === 'error') writableAt = now;
    if (now - writableAt >= limit)
      await dropVip(f, glog, `the database has not been writable for ${now - writableAt} ms`);
    const db =
      writable === 'error'
        ? 'unknown (error)'
        : writable === null
          ? 'unreachable'
          : writable
            ? 'writable'
            : 'read-only';
    await writeMonitorFile(config.journal.dir, 'guard.json', {
      site: config.site,
      role: 'primary',
      updatedAt: new Date().toISOString(),
      monitor: null,
      decision: `witness ${witness ? 'answers' : 'silent'}, standby link ${standby ? 'up' : 'down'}, database ${db}${
        fenced ? ', self-fenced' : ''
      }; last contact ${Math.max(0, Math.round(mono() - lastContact()))} ms ago (self-fences at ${limit} ms)`,
      service:
        writable === true || writable === 'error'
          ? null
          : selfFenced
            ? `no writable primary at this site: it fenced itself at ${selfFenced} (no contact with the witness or any standby for ${limit} ms); its database is ${db}; a standby takes over once the witness agrees, or an operator decides`
            : `no writable primary at this site: its database is ${db}`,
      pid: process.pid,
    }).catch(() => undefined);
    await sleep(f.monitor.suspect_interval_ms, signal);
  }
  await watchdog;
}
