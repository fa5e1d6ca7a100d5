/**
 * The witness (issue #5): a process, ideally on a third host, that watches the primary with the same probes and
 * thresholds as the standbys' monitors and tells them what it sees. A standby takes over automatically only
 * when it AND the witness have lost the primary (decide.ts): a standby cut off from the primary but not from
 * the rest of the world hears a witness that still sees the primary, and stays put.
 *
 *   probes   heartbeat (a write on the primary, as writer "witness") and the configured TCP checks, all in
 *            parallel, each bounded by probe_timeout_ms; no link probe (the witness has no tidemark link)
 *   schedule the monitor's interval (monitor.ts nextIntervalMs: the calendar while healthy, suspect_interval_ms
 *            otherwise), start to start
 *   serves   GET /v1/view  the report (witness-client.ts: overall state, since, per-probe states, and the
 *                          standbys' reports with their age)
 *            PUT /v1/candidates/<name>  a standby reports its position (witness-candidates.ts): with TLS only
 *                          as itself (<name> = its certificate's CN, else 403); a bad body is a 400 naming
 *                          the field; a second standby claiming a promotion is a 409
 *            GET /healthz  {"status":"ok"}
 *            over HTTPS with mutual TLS: the witness's certificate is site "witness", a client must present a
 *            certificate from the same CA (the handshake fails otherwise); plain HTTP only when configured.
 *
 * Every transition is logged (formatTransition): to failed at error level, to suspect at warn, back to
 * healthy at info.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import type { MysqlEndpoint } from '../mysql/session.ts';
import { sleep, TidemarkError } from '../core/errors.ts';
import type { TlsMaterial } from '../ship/tcp/index.ts';
import type { CalendarConfig } from './calendar.ts';
import type { WitnessView } from './decide.ts';
import {
  collapseOverall,
  formatTransition,
  Monitor,
  type MonitorEvent,
  type ProbeSpec,
  type Transition,
} from './monitor.ts';
import { type HeartbeatOptions, HeartbeatProbe, type ProbeResult, splitAddress, tcpProbe } from './probes.ts';
import { type MonitorSettings, monitorSpecOf, tcpProbeName } from './spec.ts';
import {
  CANDIDATES_PATH,
  CandidateBoard,
  type CandidateReport,
  isSiteName,
  MAX_REPORT_BYTES,
  parseCandidateReport,
} from './witness-candidates.ts';
import { VIEW_PATH, WITNESS_SITE, type WitnessReport } from './witness-client.ts';

/** The monitor settings the witness uses: failover.monitor (FailoverConfig) fits, its `link` part is ignored. */
export type WitnessMonitorSettings = MonitorSettings;

export interface WitnessOptions {
  /** The primary, with the account the heartbeat writes as. */
  readonly primary: MysqlEndpoint;
  /** The heartbeat probe for the primary's engine (failover/db-steps.ts); default MySQL's. */
  readonly heartbeat?: (
    ep: MysqlEndpoint,
    o: HeartbeatOptions,
  ) => { probe(signal?: AbortSignal): Promise<ProbeResult>; close(): void };
  readonly monitor: WitnessMonitorSettings;
  readonly calendar: CalendarConfig;
  /** "host:port" to listen on (port 0: any free port, see address()). */
  readonly listen: string;
  /** The witness's site material (certificate of site "witness"), or 'plaintext'. */
  readonly tls: TlsMaterial | 'plaintext';
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly now?: () => number;
  /** The heartbeat row's writer. Default "witness". */
  readonly writer?: string;
  /** Replaces the real probes (tests): called for each probe of each round. */
  readonly runProbe?: (probe: ProbeSpec, signal: AbortSignal) => Promise<ProbeResult>;
}

export interface Witness {
  /** Settles once the witness stopped (the signal aborted): server closed, probes ended. */
  readonly finished: Promise<void>;
  /** decide.ts's view of the witness's own monitor, received "now". */
  view(): WitnessView;
  /** What GET /v1/view answers. */
  report(): WitnessReport;
  address(): { host: string; port: number };
}

function reportOf(m: Monitor, board: CandidateBoard, now: number): WitnessReport {
  const s = m.state;
  return {
    version: 1,
    state: s.overall,
    since: s.since,
    now,
    probes: s.probes.map((p) => ({
      name: p.name,
      kind: p.kind,
      critical: p.critical,
      state: p.state,
      since: p.since,
      failures: p.failures,
      successes: p.successes,
      failingSince: p.failingSince,
      lastResultAt: p.lastResultAt,
      lastSuccessAt: p.lastSuccessAt,
      lastError: p.lastError,
      lastLatencyMs: p.lastLatencyMs,
    })),
    candidates: board.list(now),
  };
}

/** The CN of the client certificate of a mutual-TLS request (the site name), or null. */
function clientSite(req: IncomingMessage): string | null {
  const sock = req.socket as Partial<TLSSocket>;
  const cn = sock.getPeerCertificate?.()?.subject?.CN;
  return (Array.isArray(cn) ? cn[0] : cn) ?? null;
}

function logTransition(log: Logger, t: Transition): void {
  const line = `witness: ${formatTransition(t)}`;
  const fields = { probe: t.probe, from: t.from, to: t.to };
  if (t.to === 'failed') log.error(fields, line);
  else if (t.to === 'suspect') log.warn(fields, line);
  else log.info(fields, line);
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Starts probing and serving; rejects when the address cannot be listened on. */
export async function startWitness(o: WitnessOptions): Promise<Witness> {
  const now = o.now ?? Date.now;
  const log = o.log.child({ component: 'witness' });
  const spec = monitorSpecOf(o.monitor, o.calendar, { link: false });
  const monitor = new Monitor(spec, now());
  const { host, port } = splitAddress(o.listen, 0);
  const timeoutMs = o.monitor.probe_timeout_ms;
  if (!spec.probes.some((p) => p.critical)) {
    log.warn('witness: no critical probe: this witness can never report the primary failed');
  }

  const tls = o.tls;
  const app = Fastify({
    logger: false,
    serverFactory: (handler: Handler) => {
      if (tls === 'plaintext') return createHttpServer(handler);
      const server = createHttpsServer(
        {
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.3',
        },
        handler,
      );
      server.on('tlsClientError', (err: NodeJS.ErrnoException, s: TLSSocket) => {
        log.warn(
          { peer: `${s.remoteAddress}:${s.remotePort}`, code: err.code },
          `witness: client refused: ${err.message}`,
        );
      });
      return server as unknown as ReturnType<typeof createHttpServer>;
    },
  });
  const board = new CandidateBoard();
  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
    reply.code(status).send({ error: err.message });
  });
  app.get(VIEW_PATH, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return reportOf(monitor, board, now());
  });
  app.put<{ Params: { name: string } }>(
    `${CANDIDATES_PATH}/:name`,
    { bodyLimit: MAX_REPORT_BYTES },
    async (req, reply) => {
      const name = req.params.name;
      const refuse = (status: number, error: string) => {
        log.warn({ standby: name, status }, `witness: report refused: ${error}`);
        return reply.code(status).send({ error });
      };
      if (!isSiteName(name)) return refuse(400, `${JSON.stringify(name.slice(0, 80))} is not a site name`);
      if (tls !== 'plaintext') {
        const cn = clientSite(req.raw);
        if (cn !== name) {
          return refuse(
            403,
            `the client certificate is site "${cn ?? '?'}", not "${name}": a standby reports only its own position`,
          );
        }
      }
      let r: CandidateReport;
      try {
        r = parseCandidateReport(req.body);
      } catch (err) {
        return refuse(400, (err as Error).message);
      }
      const put = board.put(name, r, now());
      if (!put.ok) return refuse(409, `${name} cannot claim the promotion: ${put.conflict}`);
      if (put.evicted) log.warn(`witness: more than the standbys it keeps: forgot ${put.evicted} for ${name}`);
      if (put.added) log.info({ standby: name }, `witness: ${name} reports its position`);
      if (put.promotedChanged) {
        const line = r.promoted ? `${name} promoted (or taking over) at ${r.promoted}` : `${name} is a standby`;
        log.warn({ standby: name, promoted: r.promoted }, `witness: ${line}`);
      }
      return reply.code(204).send();
    },
  );
  app.get('/healthz', async () => ({ status: 'ok' }));
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => {});
    throw new TidemarkError(`witness: cannot listen on ${o.listen} (${(err as Error).message})`, {
      code: 'CONFIG',
      cause: err,
    });
  }
  const bound = app.server.address() as AddressInfo;
  if (tls === 'plaintext') log.warn('witness: TLS is off (plaintext): clients are not authenticated');
  log.info(
    {
      listen: `${bound.address}:${bound.port}`,
      primary: `${o.primary.host}:${o.primary.port}`,
      probes: spec.probes.map((p) => p.name),
      site: WITNESS_SITE,
    },
    'witness: watching the primary',
  );

  const heartbeat = (o.heartbeat ?? ((ep, opts) => new HeartbeatProbe(ep, opts)))(o.primary, {
    table: o.monitor.heartbeat.table,
    writer: o.writer ?? WITNESS_SITE,
    timeoutMs,
  });
  const tcpAddress = new Map(o.monitor.tcp.map((t) => [tcpProbeName(t.name), t.address]));
  const realProbe = (p: ProbeSpec, signal: AbortSignal): Promise<ProbeResult> =>
    p.kind === 'heartbeat' ? heartbeat.probe(signal) : tcpProbe(tcpAddress.get(p.name) ?? '', timeoutMs, signal);
  const runProbe = o.runProbe ?? realProbe;

  /** One round: every probe in parallel, then all results at once (a reader never sees half a round). */
  const round = async (): Promise<void> => {
    const events = await Promise.all(
      spec.probes.map(async (p): Promise<MonitorEvent> => {
        let r: ProbeResult;
        try {
          r = await runProbe(p, o.signal);
        } catch (err) {
          r = { ok: false, error: err instanceof Error ? err.message : String(err) };
        }
        const at = now();
        return r.ok
          ? { type: 'success', probe: p.name, at, latencyMs: r.latencyMs }
          : { type: 'failure', probe: p.name, at, error: r.error };
      }),
    );
    if (o.signal.aborted) return;
    const transitions: Transition[] = [];
    for (const ev of [...events, { type: 'tick', at: now() } as const]) transitions.push(...monitor.apply(ev));
    for (const t of collapseOverall(transitions)) logTransition(log, t);
  };
  const loop = async (): Promise<void> => {
    try {
      while (!o.signal.aborted) {
        const started = now();
        await round();
        const wait = monitor.nextIntervalMs(now()) - (now() - started);
        await sleep(Math.max(0, wait), o.signal);
      }
    } finally {
      heartbeat.close();
      await app.close();
      log.info('witness: stopped');
    }
  };

  return {
    finished: loop(),
    view: () => ({ state: monitor.state.overall, since: monitor.state.since, receivedAt: now() }),
    report: () => reportOf(monitor, board, now()),
    address: () => ({ host: bound.address, port: bound.port }),
  };
}
