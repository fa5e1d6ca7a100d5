/**
 * Alerts for the failover (issue #5): every monitor transition, fence and takeover is sent to the configured
 * webhook (an HTTP POST of the event as JSON) and to the configured command (the same JSON on its stdin), both
 * at once. Sending never throws and never delays a takeover beyond its bounds: each channel has its own
 * timeout, and a failure is logged with its reason and returned in the report.
 *
 * The webhook URL often carries a token (Slack, PagerDuty, Opsgenie): only its origin (scheme, host, port) is
 * ever logged or reported, and any message that quotes the URL is scrubbed.
 *
 * Bigints in events (binlog offsets) are sent as decimal strings.
 */
import type { Logger } from 'pino';
import { describeChain } from '../core/errors.ts';
import { describeResult, runCommand } from './command.ts';
import type { Health } from './monitor.ts';
import type { TakeoverResult } from './plan.ts';

/**
 * What every alert carries. Any other field is sent along as is; the kinds below have fixed shapes. `at` may be
 * epoch milliseconds (a monitor Transition spread in): it is sent as ISO 8601 UTC.
 */
export type AlertEvent = {
  readonly kind: FailoverEventKind | (string & {});
  /** The site sending the event (the one whose monitor, guard or takeover it is). */
  readonly site: string;
  /** When it happened: ISO 8601 UTC, or epoch milliseconds. */
  readonly at: string | number;
  /** One line for a human (a pager's text); built from the kind and site when absent. */
  readonly summary?: string;
  readonly [key: string]: unknown;
};

/** A monitor probe (or "overall") changed state. */
export type TransitionEvent = AlertEvent & {
  readonly kind: 'transition';
  readonly probe: string;
  readonly from: Health;
  readonly to: Health;
  readonly reason: string;
};

/** A takeover ended (completed, completed with errors, or stopped): the whole timeline. */
export type TakeoverEvent = AlertEvent & {
  readonly kind: 'takeover';
  readonly mode: 'automatic' | 'manual';
  readonly result: TakeoverResult<unknown>;
};

/** A fence ran (takeover, standby guard, or a primary fencing itself when isolated: `self-fence`). */
export type FenceEvent = AlertEvent & {
  readonly kind: 'fence' | 'self-fence';
  readonly confirmed: boolean;
  readonly detail: string;
};

export type FailoverEventKind = 'transition' | 'takeover' | 'fence' | 'self-fence' | 'notice' | 'test';
export type FailoverEvent = TransitionEvent | TakeoverEvent | FenceEvent | AlertEvent;

export interface AlertHooks {
  readonly webhook?: { readonly url: string; readonly timeout_ms: number } | undefined;
  /** argv, run without a shell, the event JSON on stdin. */
  readonly command?: readonly string[] | undefined;
}

export interface AlertOptions {
  /** Bound of the alert command. Default 30 s. */
  readonly commandTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface AlertReport {
  /** Every configured channel delivered (true when none is configured). */
  readonly ok: boolean;
  /** "webhook https://hooks.example: ok; command /usr/local/bin/page: exited with 1: …" */
  readonly detail: string;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

/** JSON of an event: bigints as decimal strings. */
export function eventJson(event: object): string {
  return JSON.stringify(event, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** The event as sent: `at` as ISO 8601, a summary line. */
export function normalizeEvent(event: AlertEvent): AlertEvent {
  const at = typeof event.at === 'number' ? new Date(event.at).toISOString() : event.at;
  const summary = event.summary ?? `tidemark ${event.kind} at site ${event.site}`;
  return { ...event, at, summary };
}

/** What of a webhook URL may be shown: its origin (no user info, path, query or fragment). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.origin === 'null' ? '<url>' : u.origin;
  } catch {
    return '<invalid url>';
  }
}

/** `text` with every occurrence of `url` (and of its path and query) replaced by the redacted form. */
export function scrubUrl(text: string, url: string): string {
  let out = text.replaceAll(url, `${redactUrl(url)}/…`);
  try {
    const u = new URL(url);
    for (const secret of [u.pathname + u.search, u.search, u.password, u.username]) {
      if (secret.length > 1) out = out.replaceAll(secret, '…');
    }
  } catch {
    // Not a URL: nothing more to find.
  }
  return out;
}

/** fetch refuses URLs with credentials: `https://user:pw@host/…` becomes a Basic authorization header. */
export function withBasicAuth(raw: string): { url: string; headers: Record<string, string> } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { url: raw, headers: {} };
  }
  if (u.username === '' && u.password === '') return { url: raw, headers: {} };
  const cred = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  u.username = '';
  u.password = '';
  return { url: u.href, headers: { authorization: `Basic ${Buffer.from(cred).toString('base64')}` } };
}

async function postWebhook(
  hook: NonNullable<AlertHooks['webhook']>,
  body: string,
  signal: AbortSignal | undefined,
): Promise<string | null> {
  const timeout = AbortSignal.timeout(hook.timeout_ms);
  const t0 = performance.now();
  try {
    const { url, headers } = withBasicAuth(hook.url);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'tidemark-failover', ...headers },
      body,
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
    // Free the connection; the body is not needed (and may echo the token back).
    await res.body?.cancel().catch(() => {});
    return res.ok ? null : `HTTP ${res.status}`;
  } catch (err) {
    if (timeout.aborted) return `no answer within ${hook.timeout_ms} ms`;
    if (signal?.aborted) return `aborted after ${Math.round(performance.now() - t0)} ms`;
    return scrubUrl(describeChain(err), hook.url);
  }
}

async function runAlertCommand(
  argv: readonly string[],
  event: AlertEvent,
  body: string,
  opts: AlertOptions,
): Promise<string | null> {
  try {
    const r = await runCommand(argv, {
      stdin: `${body}\n`,
      timeoutMs: opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      env: { ...process.env, TIDEMARK_EVENT_KIND: event.kind },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return r.code === 0 ? null : describeResult(argv, r);
  } catch (err) {
    return describeChain(err);
  }
}

/**
 * Sends `event` to the webhook and the command (whichever are configured), concurrently. Never throws; each
 * failure is logged at warn with its reason.
 */
export async function sendAlert(
  hooks: AlertHooks,
  event: AlertEvent,
  log: Logger,
  opts: AlertOptions = {},
): Promise<AlertReport> {
  let body: string;
  try {
    body = eventJson(normalizeEvent(event));
  } catch (err) {
    const detail = `event not serialisable: ${describeChain(err)}`;
    log.warn({ kind: event.kind }, `alert not sent: ${detail}`);
    return { ok: false, detail };
  }
  const webhook = hooks.webhook;
  const argv = hooks.command && hooks.command.length > 0 ? hooks.command : undefined;
  const [hookFailure, commandFailure] = await Promise.all([
    webhook ? postWebhook(webhook, body, opts.signal) : undefined,
    argv ? runAlertCommand(argv, event, body, opts) : undefined,
  ]);
  const parts: string[] = [];
  let ok = true;
  if (webhook) {
    const origin = redactUrl(webhook.url);
    parts.push(`webhook ${origin}: ${hookFailure ?? 'ok'}`);
    if (hookFailure) log.warn({ kind: event.kind, webhook: origin }, `alert webhook failed: ${hookFailure}`);
    else log.debug({ kind: event.kind, webhook: origin }, 'alert delivered to the webhook');
    ok &&= !hookFailure;
  }
  if (argv) {
    parts.push(`command ${argv[0]}: ${commandFailure ?? 'ok'}`);
    if (commandFailure) log.warn({ kind: event.kind, command: argv[0] }, `alert command failed: ${commandFailure}`);
    else log.debug({ kind: event.kind, command: argv[0] }, 'alert command succeeded');
    ok &&= !commandFailure;
  }
  return { ok, detail: parts.length === 0 ? 'no alert hook configured' : parts.join('; ') };
}
