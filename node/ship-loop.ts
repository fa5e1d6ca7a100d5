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
 *   - keeps the link as a state machine (ship-link.ts: one state object, one transition function, each
 *     transition logged) and publishes it for `tidemark status` (ship-state.ts) and the metrics.
 * A standby's failure never stops the others or the process: a fatal error (refused, certificate, journal gone)
 * is logged and retried every FATAL_RETRY_MS, so that a fixed standby resumes without a restart.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Gauge, Registry } from 'prom-client';
import { promClient } from '../core/prom.ts';
import { describeChain, isRetriable, sleep } from '../core/errors.ts';
import { CursorStore } from '../journal/index.ts';
import type { StandbyConfig } from '../config/config-sites.ts';
import type { Config } from '../config/config.ts';
import { type CapContext, type CapGate, capCheck } from './ship-cap.ts';
import { linkUp } from '../ship/link-status.ts';
import { type LinkEvent, linkFile, newLink, noteAck, type StandbyLink, step } from './ship-link.ts';
import { isPaused, readDropped, ShipCursor, shipCursor, writeLinkFile } from './ship-state.ts';
import { startTransportShipper } from './ship-transports.ts';
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
    const { Gauge } = promClient();
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
  const dropped = await readDropped(dir, s.name);
  // Registered before anything is shipped: from now on retention keeps what this standby has not acknowledged.
  if (!dropped && (await cursors.get(cname)) === null) await cursors.set(cname, 0n);
  const from = (await cursors.get(cname)) ?? (dropped ? BigInt(dropped.ackedLsn) : 0n);
  const link = newLink(s.name, s.transport, from, dropped);
  const on = (e: LinkEvent) => step(link, e, slog);
  const cap: CapContext = {
    config,
    dir,
    gate,
    log: slog,
    cursor: new ShipCursor(cursors, cname, from),
    cursors,
    cname,
  };
  const labels = { standby: s.name, transport: s.transport };
  const g = metrics ? gauges(metrics) : undefined;
  const trim = s.transport === 'redis' ? redisTrimmer(config, s, slog) : null;

  const publish = async (): Promise<void> => {
    if (!link.dropped) await cap.cursor.sync(link.acked.unitLsn);
    await capCheck(cap, link);
    // Not awaited: a Redis that stops answering must not hold up the cursor and the link state.
    void trim?.maybe();
    const file = linkFile(link);
    g?.retained.set(labels, link.retainedBytes);
    g?.acked.set(labels, Number(link.acked.lsn));
    g?.up.set(labels, linkUp(file) ? 1 : 0);
    await writeLinkFile(dir, file);
  };
  // One publish at a time: on a slow disk a round (cursor and state fsyncs) can take longer than PUBLISH_MS.
  let publishing: Promise<void> | null = null;
  const publisher = setInterval(() => {
    if (link.running) on({ kind: 'transport', state: link.running.status().state });
    if (publishing) return;
    publishing = publish()
      .catch((err) => slog.warn({ err: describeChain(err) }, 'ship: publishing the link state failed'))
      .finally(() => {
        publishing = null;
      });
  }, PUBLISH_MS);

  try {
    while (!signal.aborted) {
      if (await isPaused(dir, s.name)) {
        on({ kind: 'pause' });
        await sleep(PUBLISH_MS, signal);
        continue;
      }
      on({ kind: 'resume' });
      await shipOnce(config, s, link, on, tlog, signal);
    }
  } finally {
    clearInterval(publisher);
    await publishing;
    on({ kind: 'stop' });
    gate.release(s.name);
    await publish().catch(() => undefined);
    await trim?.close();
  }
}

/**
 * One shipper's life: started, run until it stops or the standby is paused (checked every PUBLISH_MS), and on a
 * failure the pause before the next (2 s, FATAL_RETRY_MS when the error is fatal).
 */
async function shipOnce(
  config: Config,
  s: StandbyConfig,
  link: StandbyLink,
  on: (e: LinkEvent) => unknown,
  tlog: Logger,
  signal: AbortSignal,
): Promise<void> {
  const dir = config.journal.dir;
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
    on({ kind: 'start' });
    link.running = await startTransportShipper({
      config,
      standby: s,
      ackedUnitLsn: link.acked.unitLsn,
      onAck: (a) => noteAck(link, a),
      onHeard: () => noteHeard(s.name),
      log: tlog,
      signal: inner.signal,
    });
    await link.running.finished;
    link.lastError = null;
  } catch (err) {
    if (signal.aborted) return;
    let error = describeChain(err);
    if ((err as { code?: string }).code === 'JOURNAL_GONE' && !error.includes('rebaseline')) {
      error += `: the journal no longer has what standby ${s.name} needs; it needs a rebaseline`;
    }
    link.lastError = error;
    const fatal = !isRetriable(err);
    const retryInMs = fatal ? FATAL_RETRY_MS : 2000;
    on({ kind: 'fail', error, fatal, retryInMs });
    await sleep(retryInMs, signal);
  } finally {
    clearInterval(watch);
    signal.removeEventListener('abort', stop);
    inner.abort();
    link.running = null;
  }
}
