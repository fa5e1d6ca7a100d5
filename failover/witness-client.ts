/**
 * The witness's view as it travels (`GET /v1/view`, JSON), its strict reader, and the client a standby polls it
 * with. A view that does not have exactly the expected shape is refused, never read as "the witness sees the
 * primary failed" (or healthy): the caller then has no witness view, which never allows an automatic takeover.
 *
 *   { "version": 1, "state": "healthy"|"suspect"|"failed", "since": <ms>, "now": <ms>,
 *     "probes": [{ "name", "kind", "critical", "state", "since", "failures", "successes", "failingSince",
 *                  "lastResultAt", "lastSuccessAt", "lastError", "lastLatencyMs" }, …],
 *     "candidates": [{ "name", "priority", "position", "eligible", "promoted", "age_ms" }, …] }
 *
 * Times are ms since the epoch on the witness's clock; `now` is when it answered. `candidates` are the standbys'
 * own reports (witness-candidates.ts; `reportCandidate` sends one); a witness older than them omits the key,
 * read as no entries.
 *
 * Mutual TLS: the client presents its site certificate, and accepts only a server certificate from the same CA
 * naming the site "witness" (whatever host name or address was dialled).
 */
import type { IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { type ErrorCode, TidemarkError } from '../core/errors.ts';
import { certificateNames, type TlsMaterial } from '../ship/tcp/index.ts';
import type { Candidate, WitnessView } from './decide.ts';
import type { Health, ProbeKind, ProbeState } from './monitor.ts';
import { splitAddress } from './probes.ts';
import {
  CANDIDATES_PATH,
  type CandidateEntryJson,
  candidateOfEntry,
  candidateReportJson,
  parseCandidateEntries,
  type WitnessCandidate,
} from './witness-candidates.ts';

/** The site name in the witness's certificate. */
export const WITNESS_SITE = 'witness';
export const VIEW_PATH = '/v1/view';
const MAX_BODY = 256 * 1024;

/** A probe as the witness reports it: its monitor state, without the replication lag (a witness has none). */
export type WitnessProbeReport = Omit<ProbeState, 'lastLagMs'>;

export interface WitnessReport {
  readonly version: 1;
  readonly state: Health;
  readonly since: number;
  /** The witness's clock when it answered. */
  readonly now: number;
  readonly probes: readonly WitnessProbeReport[];
  /** The standbys' reports (empty from a witness that does not collect them). */
  readonly candidates: readonly CandidateEntryJson[];
}

/** What a standby gets: decide.ts's view, plus the report it came from and the standbys it lists. */
export interface FetchedWitnessView extends WitnessView {
  readonly report: WitnessReport;
  readonly candidates: readonly WitnessCandidate[];
}

const HEALTH: readonly string[] = ['healthy', 'suspect', 'failed'];
const KINDS: readonly string[] = ['heartbeat', 'link', 'tcp'];

/** Reads a report strictly; throws an Error naming the first field that does not fit. */
export function parseWitnessReport(j: unknown): WitnessReport {
  const bad = (what: string): never => {
    throw new Error(`malformed view: ${what}`);
  };
  const obj = (v: unknown, what: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : bad(`${what} is not an object`);
  const time = (v: unknown, what: string): number =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : bad(`${what} is not a time in ms`);
  const timeOrNull = (v: unknown, what: string): number | null => (v === null ? null : time(v, what));
  const count = (v: unknown, what: string): number =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : bad(`${what} is not a count`);
  const health = (v: unknown, what: string): Health =>
    typeof v === 'string' && HEALTH.includes(v) ? (v as Health) : bad(`${what} is not healthy, suspect or failed`);
  const exact = (o: Record<string, unknown>, keys: readonly string[], what: string, optional: string[] = []): void => {
    const extra = Object.keys(o).filter((k) => !keys.includes(k) && !optional.includes(k));
    const missing = keys.filter((k) => !(k in o));
    if (missing.length > 0) bad(`${what} lacks ${missing.join(', ')}`);
    if (extra.length > 0) bad(`${what} has unknown keys ${extra.join(', ')}`);
  };

  const o = obj(j, 'the view');
  exact(o, ['version', 'state', 'since', 'now', 'probes'], 'the view', ['candidates']);
  if (o['version'] !== 1) bad(`version ${JSON.stringify(o['version'])} is not 1`);
  const state = health(o['state'], 'state');
  const since = time(o['since'], 'since');
  const now = time(o['now'], 'now');
  if (since > now) bad('since is later than now');
  const list = o['probes'];
  if (!Array.isArray(list) || list.length > 64) bad('probes is not a list (of at most 64)');
  const names = new Set<string>();
  const probes = (list as unknown[]).map((raw, i): WitnessProbeReport => {
    const at = `probes[${i}]`;
    const p = obj(raw, at);
    exact(p, PROBE_KEYS, at);
    const name = p['name'];
    if (typeof name !== 'string' || name === '' || name.length > 64) return bad(`${at}.name is not a name`);
    if (names.has(name)) bad(`${at}.name "${name}" repeats`);
    names.add(name);
    const kind = p['kind'];
    if (typeof kind !== 'string' || !KINDS.includes(kind)) return bad(`${at}.kind is not heartbeat, link or tcp`);
    if (typeof p['critical'] !== 'boolean') bad(`${at}.critical is not a boolean`);
    const err = p['lastError'];
    if (err !== null && typeof err !== 'string') bad(`${at}.lastError is not a string or null`);
    const lat = p['lastLatencyMs'];
    if (lat !== null && !(typeof lat === 'number' && Number.isFinite(lat) && lat >= 0)) {
      bad(`${at}.lastLatencyMs is not a duration or null`);
    }
    return {
      name,
      kind: kind as ProbeKind,
      critical: p['critical'] as boolean,
      state: health(p['state'], `${at}.state`),
      since: time(p['since'], `${at}.since`),
      failures: count(p['failures'], `${at}.failures`),
      successes: count(p['successes'], `${at}.successes`),
      failingSince: timeOrNull(p['failingSince'], `${at}.failingSince`),
      lastResultAt: timeOrNull(p['lastResultAt'], `${at}.lastResultAt`),
      lastSuccessAt: timeOrNull(p['lastSuccessAt'], `${at}.lastSuccessAt`),
      lastError: err as string | null,
      lastLatencyMs: lat as number | null,
    };
  });
  const candidates = parseCandidateEntries(o['candidates'], bad);
  return { version: 1, state, since, now, probes, candidates };
}

const PROBE_KEYS = [
  'name',
  'kind',
  'critical',
  'state',
  'since',
  'failures',
  'successes',
  'failingSince',
  'lastResultAt',
  'lastSuccessAt',
  'lastError',
  'lastLatencyMs',
];

/**
 * decide.ts's view of a report received at `receivedAt` (this standby's clock). `since` is moved onto this
 * standby's clock (receivedAt − how long the witness has been in its state), so that decide's
 * `now − witness.since` does not depend on the two clocks agreeing.
 */
export function viewOf(report: WitnessReport, receivedAt: number): FetchedWitnessView {
  const since = receivedAt - (report.now - report.since);
  return { state: report.state, since, receivedAt, report, candidates: report.candidates.map(candidateOfEntry) };
}

export interface FetchOptions {
  /** The client's site certificate (same CA as the witness), or 'plaintext'. */
  readonly tls: TlsMaterial | 'plaintext';
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  readonly now?: () => number;
}

const TLS_CODE = /CERT|SSL|TLS|UNABLE_TO|SELF_SIGNED|ALERT|ERR_WITNESS_WRONG_SITE|EPROTO/;

/** Why a request failed, in words. */
function reasonOf(err: NodeJS.ErrnoException, tls: boolean): string {
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return 'connection refused (is tidemark witness running there?)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `host name not resolved (${code})`;
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `unreachable (${code})`;
  if (tls && TLS_CODE.test(code)) return `TLS handshake failed: ${err.message} (${code})`;
  if (tls && code === 'ECONNRESET') return `connection reset (a TLS refusal, or a plaintext witness?): ${err.message}`;
  return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}

interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

/**
 * One request to the witness at "host:port": resolves with any HTTP answer; rejects with a retriable
 * TidemarkError WITNESS_UNREACHABLE (refused, TLS, timeout, stopped) or `tooLarge` (an answer over MAX_BODY).
 */
function witnessRequest(
  address: string,
  req0: { readonly method: 'GET' | 'PUT'; readonly path: string; readonly body?: string; readonly tooLarge: ErrorCode },
  o: FetchOptions,
): Promise<Answer> {
  const { host, port } = splitAddress(address);
  const secure = o.tls !== 'plaintext';
  return new Promise<Answer>((resolve, reject) => {
    let settled = false;
    const settle = (err: TidemarkError | null, v?: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(v as Answer);
    };
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (req0.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(req0.body);
    }
    const common = { host, port, path: req0.path, method: req0.method, headers };
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (b: Buffer) => {
        size += b.length;
        if (size > MAX_BODY) settle(witnessError(address, req0.tooLarge, `answer larger than ${MAX_BODY} bytes`));
        else chunks.push(b);
      });
      res.on('error', (err) => settle(witnessError(address, 'WITNESS_UNREACHABLE', reasonOf(err, secure), err)));
      res.on('end', () => settle(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    };
    const req =
      o.tls === 'plaintext'
        ? httpRequest({ ...common, agent: false }, onResponse)
        : httpsRequest(
            {
              ...common,
              agent: false,
              ca: o.tls.ca,
              cert: o.tls.cert,
              key: o.tls.key,
              servername: WITNESS_SITE,
              minVersion: 'TLSv1.3',
              checkServerIdentity: (_host: string, cert: PeerCertificate) => {
                const names = certificateNames(cert);
                if (names.includes(WITNESS_SITE)) return undefined;
                const err: NodeJS.ErrnoException = new Error(
                  `the server's certificate names ${names.map((n) => `"${n}"`).join(', ') || 'nothing'}, not "${WITNESS_SITE}"`,
                );
                err.code = 'ERR_WITNESS_WRONG_SITE';
                return err;
              },
            },
            onResponse,
          );
    req.on('error', (err: NodeJS.ErrnoException) =>
      settle(witnessError(address, 'WITNESS_UNREACHABLE', reasonOf(err, secure), err)),
    );
    const timer = setTimeout(
      () => settle(witnessError(address, 'WITNESS_UNREACHABLE', `no answer within ${o.timeoutMs} ms`)),
      o.timeoutMs,
    );
    const onAbort = () => settle(witnessError(address, 'WITNESS_UNREACHABLE', 'request stopped'));
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
    req.end(req0.body);
  });
}

function witnessError(
  address: string,
  code: ErrorCode,
  why: string,
  cause?: unknown,
  extra: { retriable?: boolean; status?: number } = {},
): TidemarkError {
  const context = { witness: address, ...(extra.status === undefined ? {} : { status: extra.status }) };
  return new TidemarkError(`witness ${address}: ${why}`, { code, retriable: extra.retriable ?? true, cause, context });
}

/**
 * GET /v1/view from the witness at "host:port". Every failure is a retriable TidemarkError naming the address
 * and why (WITNESS_UNREACHABLE: refused, TLS, timeout; WITNESS_BAD_VIEW: bad status, not JSON, wrong shape).
 */
export async function fetchWitnessView(address: string, o: FetchOptions): Promise<FetchedWitnessView> {
  const now = o.now ?? Date.now;
  const res = await witnessRequest(address, { method: 'GET', path: VIEW_PATH, tooLarge: 'WITNESS_BAD_VIEW' }, o);
  if (res.status !== 200) throw witnessError(address, 'WITNESS_BAD_VIEW', `HTTP ${res.status} on ${VIEW_PATH}`);
  let report: WitnessReport;
  try {
    report = parseWitnessReport(JSON.parse(res.body.toString('utf8')));
  } catch (err) {
    const why = err instanceof SyntaxError ? `answer is not JSON (${err.message})` : (err as Error).message;
    throw witnessError(address, 'WITNESS_BAD_VIEW', why, err);
  }
  return viewOf(report, now());
}

/** What a standby reports: itself as a candidate, and when it was promoted (null while it is a standby). */
export interface CandidateToReport extends Candidate {
  readonly promoted: string | null;
}

/**
 * PUT /v1/candidates/<name>: this standby's position to the witness. Resolves once the witness stored it.
 * Failures are TidemarkErrors naming the address: WITNESS_UNREACHABLE (retriable), WITNESS_REFUSED (the
 * witness answered 4xx/5xx: its message and `context.status`; 409 when another standby claims the promotion,
 * retriable only for 5xx).
 */
export async function reportCandidate(address: string, c: CandidateToReport, o: FetchOptions): Promise<void> {
  const path = `${CANDIDATES_PATH}/${encodeURIComponent(c.name)}`;
  const body = JSON.stringify(candidateReportJson(c));
  const res = await witnessRequest(address, { method: 'PUT', path, body, tooLarge: 'WITNESS_REFUSED' }, o);
  if (res.status === 200 || res.status === 204) return;
  const text = res.body.toString('utf8');
  let message = text.slice(0, 500);
  try {
    const j = JSON.parse(text) as { error?: unknown };
    if (typeof j.error === 'string') message = j.error.slice(0, 500);
  } catch {
    // not JSON: the raw text
  }
  throw witnessError(
    address,
    'WITNESS_REFUSED',
    `refused the report of ${c.name} (HTTP ${res.status}): ${message}`,
    undefined,
    {
      retriable: res.status >= 500,
      status: res.status,
    },
  );
}
