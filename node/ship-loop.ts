/**
 * The primary site's end of one standby (`tidemark run`, primary role): one loop per configured standby.
 *
 *   - ships the journal over the standby's transport (ship-transports.ts), starting from what the standby's
 *     cursor `ship:<standby>` says it acknowledged; every acknowledgement (durable at the standby, or in the
 *     broker) moves the cursor, at most once a second, so retention keeps what the standby still needs;
 *   - pause/resume: while `<journal>/ship/<standby>.paused` exists the shipper is stopped and the cursor stays;
 *   - the cap (ship-cap.ts): an alarm at alarm_at × cap_bytes, and at the cap either the standby's cursor is
 *     dropped (it no longer holds the journal; status says so; once the journal it needs is gone the shipper
 *     fails with "needs a rebaseline") or capture pauses until the standby is back under the alarm level;
 *   - publishes the link's state for `tidemark status` (ship-state.ts) and the metrics.
 * A standby's failure never stops the others or the process: a fatal error (refused, certificate, journal gone)
 * is logged and retried every FATAL_RETRY_MS, so that a fixed standby resumes without a restart.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { describeChain, isRetriable, sleep } from '../core/errors.ts';
import { CursorStore } from '../journal/index.ts';
import { listSegments } from '../journal/index.ts';
import type { StandbyConfig } from '../config/config-sites.ts';
import type { Config } from '../config/config.ts';
import { type CapGate, type CapLevel, capLevel, retainedBytes } from './ship-cap.ts';
import { isPaused, readDropped, ShipCursor, setDropped, shipCursor, writeLinkState } from './ship-state.ts';
import { type LinkStatus, type Running, startTransportShipper } from './ship-transports.ts';
import { redisTrimmer } from './ship-trim.ts';
import { noteHeard } from './link-contact.ts';

const PUBLISH_MS = 1000;
const FATAL_RETRY_MS = 30_000;

interface Gauges {
  retained: Gauge;
  acked: Gauge;
  up: Gauge;
}
const gaugesOf = new WeakMap<Registry, Gauges>();

function gauges(registry: Registry): Gauges {
  let g = gaugesOf.get(registry);
  if (!g) {
    const mk = (name: string, help: string) =>
      new Gauge({ name, help, labelNames: ['standby', 'transport'], registers: [registry] });
    g = {
      retained: mk('tidemark_ship_retained_bytes', 'journal bytes kept for a standby (not yet acknowledged by it)'),
      acked: mk('tidemark_ship_acked_lsn', 'highest journal LSN the standby acknowledged'),
      up: mk('tidemark_ship_link_up', '1 while the link to the standby is streaming'),
    };
    gaugesOf.set(registry, g);
  }
  return g;
}

const fmtMb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

export async function shipLoop(
  config: Config,
  s: StandbyConfig,
  log: Logger,
  signal: AbortSignal,
  gate: CapGate,
  metrics?: Registry,
): Promise<void> {
  // The transport's own lines carry their component (shipper, kafka-shipper…); this loop's say ship-loop.
  const tlog = log.child({ standby: s.name, transport: s.transport });
  const slog = tlog.child({ component: 'ship-loop' });
  const dir = config.journal.dir;
  while (!existsSync(dir) && !signal.aborted) {
    slog.info({ dir }, 'waiting for the journal directory (is capture running?)');
    await sleep(1000, signal);
  }
  if (signal.aborted) return;
  const cursors = new CursorStore(dir);
  const cname = shipCursor(s.name);
  let dropped = await readDropped(dir, s.name);
  // Registered before anything is shipped: from now on retention keeps what this standby has not acknowledged.
  if (!dropped && (await cursors.get(cname)) === null) await cursors.set(cname, 0n);

  let running: Running | null = null;
  let state = 'connecting';
  let lastError: string | null = null;
  let acked = { lsn: 0n, unitLsn: (await cursors.get(cname)) ?? (dropped ? BigInt(dropped.ackedLsn) : 0n) };
  let lastAckAt: Date | null = null;
  let ackedCommitTimeUs: bigint | null = null;
  const cursor = new ShipCursor(cursors, cname, acked.unitLsn);
  let level: CapLevel = 'ok';
  let retained = 0;
  const labels = { standby: s.name, transport: s.transport };
  const g = metrics ? gauges(metrics) : undefined;
  const trim = s.transport === 'redis' ? redisTrimmer(config, s, slog) : null;

  const capCheck = async (): Promise<void> => {
    retained = await retainedBytes(dir, acked.unitLsn);
    const next = capLevel(retained, config.ship.cap_bytes, config.ship.alarm_at);
    const pct = Math.round((100 * retained) / config.ship.cap_bytes);
    if (next !== 'ok' && level === 'ok') {
      slog.warn(
        { retainedBytes: retained, capBytes: config.ship.cap_bytes },
        `standby ${s.name} holds ${fmtMb(retained)} of journal, ${pct} % of ship.cap_bytes ` +
          `(${fmtMb(config.ship.cap_bytes)}); at the cap: ${config.ship.at_cap}`,
      );
    }
    if (next === 'cap' && config.ship.at_cap === 'drop-standby' && !dropped) {
      dropped = {
        at: new Date().toISOString(),
        reason: `held ${retained} bytes of journal, over ship.cap_bytes ${config.ship.cap_bytes}`,
        ackedLsn: acked.unitLsn.toString(),
        retainedBytes: retained,
      };
      await setDropped(dir, s.name, dropped);
      await cursors.remove(cname);
      slog.error(
        { ackedLsn: String(acked.unitLsn) },
        `standby ${s.name} reached ship.cap_bytes: it no longer holds the journal (at_cap drop-standby). It still ` +
          'catches up while the journal has what it needs; once retention removed that, it needs a rebaseline',
      );
    }
    if (next === 'cap' && config.ship.at_cap === 'stop-capture' && level !== 'cap') {
      gate.hold(s.name, `holds ${fmtMb(retained)} of journal, at ship.cap_bytes (at_cap stop-capture)`);
      slog.error(`standby ${s.name} reached ship.cap_bytes: capture pauses until it is below the alarm level`);
    }
    if (next === 'ok') {
      gate.release(s.name);
      const oldest = (await listSegments(dir))[0];
      if (dropped && oldest !== undefined && acked.unitLsn + 1n >= oldest) {
        await cursor.sync(acked.unitLsn, true);
        await setDropped(dir, s.name, null);
        dropped = null;
        slog.info(`standby ${s.name} is below the alarm level again: it holds the journal again`);
      }
    }
    level = next;
  };

  const publish = async (): Promise<void> => {
    const st: LinkStatus | null = running?.status() ?? null;
    if (!dropped) await cursor.sync(acked.unitLsn);
    await capCheck();
    // Not awaited: a Redis that stops answering must not hold up the cursor and the link state.
    void trim?.maybe();
    g?.retained.set(labels, retained);
    g?.acked.set(labels, Number(acked.lsn));
    g?.up.set(labels, state === 'streaming' ? 1 : 0);
    await writeLinkState(dir, {
      standby: s.name,
      transport: s.transport,
      state,
      ackedLsn: String(acked.lsn > acked.unitLsn ? acked.lsn : acked.unitLsn),
      ackedUnitLsn: String(acked.unitLsn),
      lastAckAt: lastAckAt?.toISOString() ?? null,
      ackedCommitTimeUs: ackedCommitTimeUs === null ? null : String(ackedCommitTimeUs),
      connects: st?.connects ?? 0,
      lastError: st?.lastError ?? lastError,
      retainedBytes: retained,
      cap: dropped ? 'dropped' : level === 'ok' ? 'ok' : 'alarm',
      pid: process.pid,
      updatedAt: new Date().toISOString(),
    });
  };
  // One publish at a time: on a slow disk a round (cursor and state fsyncs) can take longer than PUBLISH_MS.
  let publishing: Promise<void> | null = null;
  const publisher = setInterval(() => {
    if (running) state = running.status().state;
    if (publishing) return;
    publishing = publish()
      .catch((err) => slog.warn({ err: describeChain(err) }, 'ship: publishing the link state failed'))
      .finally(() => {
        publishing = null;
      });
  }, PUBLISH_MS);

  try {
    let pausedLogged = false;
    while (!signal.aborted) {
      if (await isPaused(dir, s.name)) {
        if (!pausedLogged) slog.info(`standby ${s.name} is paused (tidemark ship resume ${s.name} ends it)`);
        pausedLogged = true;
        state = 'paused';
        await sleep(PUBLISH_MS, signal);
        continue;
      }
      if (pausedLogged) slog.info(`standby ${s.name} resumed`);
      pausedLogged = false;
      const inner = new AbortController();
      const stop = () => inner.abort();
      signal.addEventListener('abort', stop, { once: true });
      const watch = setInterval(() => {
        isPaused(dir, s.name).then(
          (p) => p && inner.abort(),
          () => undefined,
        );
      }, PUBLISH_MS);
      try {
        running = await startTransportShipper({
          config,
          standby: s,
          ackedUnitLsn: acked.unitLsn,
          onAck: (a) => {
            if (a.unitLsn >= acked.unitLsn && a.commitTimeUs !== null) ackedCommitTimeUs = a.commitTimeUs;
            acked = { lsn: a.lsn, unitLsn: a.unitLsn > acked.unitLsn ? a.unitLsn : acked.unitLsn };
            lastAckAt = new Date();
          },
          onHeard: () => noteHeard(s.name),
          log: tlog,
          signal: inner.signal,
        });
        await running.finished;
        lastError = null;
      } catch (err) {
        if (signal.aborted) break;
        lastError = describeChain(err);
        if ((err as { code?: string }).code === 'JOURNAL_GONE' && !lastError.includes('rebaseline')) {
          lastError += `: the journal no longer has what standby ${s.name} needs; it needs a rebaseline`;
        }
        state = 'failed';
        if (isRetriable(err)) {
          slog.warn({ err: lastError }, `standby ${s.name}: shipping not ready; retrying`);
          await sleep(2000, signal);
        } else {
          slog.error(
            { err: lastError, retryInMs: FATAL_RETRY_MS },
            `standby ${s.name}: shipping stopped: ${lastError}; trying again in ${FATAL_RETRY_MS / 1000} s`,
          );
          await sleep(FATAL_RETRY_MS, signal);
        }
      } finally {
        clearInterval(watch);
        signal.removeEventListener('abort', stop);
        inner.abort();
        running = null;
      }
    }
  } finally {
    clearInterval(publisher);
    await publishing;
    state = 'stopped';
    gate.release(s.name);
    await publish().catch(() => undefined);
    await trim?.close();
  }
}
