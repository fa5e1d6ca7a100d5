/**
 * A standby site's receiving end (`tidemark run --site <standby>`): the standby's transport writes the mirror
 * journal `<journal_dir>/<source>` (fsynced before anything is acknowledged), and retention runs on it with the
 * cursors of the targets applied from it. A receiver that cannot start because of its settings (a port in use,
 * missing certificates) stops the process with a message that says what to fix; a receiver that fails later is
 * restarted after a pause, like any other part.
 */
import type { Logger } from 'pino';
import { describeChain, isRetriable, sleep, TidemarkError } from '../core/errors.ts';
import { applyRetention } from '../journal/index.ts';
import type { StandbyConfig } from '../config/config-sites.ts';
import { mirrorDir } from '../journal/index.ts';
import type { Config } from '../config/config.ts';
import { linkUp } from '../ship/link-status.ts';
import { type Running, startTransportReceiver } from './ship-transports.ts';

const RETENTION_EVERY_MS = 60_000;
const RESTART_MS = 10_000;

/** What the takeover monitor sees of a standby's receiver. */
export class ReceiverWatch {
  current: Running | null = null;

  /** Whether the link from the primary is up now (null: no receiver running). */
  linkUp(): boolean | null {
    return this.current ? linkUp(this.current.status()) : null;
  }
}

export async function receiveLoop(
  config: Config,
  s: StandbyConfig,
  log: Logger,
  signal: AbortSignal,
  watch: ReceiverWatch = new ReceiverWatch(),
): Promise<void> {
  const tlog = log.child({ standby: s.name, transport: s.transport });
  const rlog = tlog.child({ component: 'receive-loop' });
  const dir = mirrorDir(config.source.name, s);
  const retention = setInterval(() => {
    applyRetention({ dir, keepHours: config.journal.retention.keep_hours, log: rlog }).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        rlog.warn({ err: describeChain(err) }, 'mirror journal retention failed');
      }
    });
  }, RETENTION_EVERY_MS);
  try {
    for (let attempt = 1; !signal.aborted; attempt++) {
      let started = false;
      try {
        const r = await startTransportReceiver({ config, standby: s, log: tlog, signal });
        started = true;
        watch.current = r;
        try {
          await r.finished;
        } finally {
          watch.current = null;
        }
      } catch (err) {
        if (signal.aborted) return;
        const msg = describeChain(err);
        const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
        if (!started && (code === 'EADDRINUSE' || code === 'EACCES' || code === 'CONFIG' || code === 'EADDRNOTAVAIL')) {
          throw new TidemarkError(`standby ${s.name}: the receiver cannot start: ${msg}`, {
            code: 'CONFIG',
            retriable: false,
            cause: err,
          });
        }
        const level = isRetriable(err) ? 'warn' : 'error';
        rlog[level]({ err: msg, attempt, retryInMs: RESTART_MS }, `standby ${s.name}: receiver stopped: ${msg}`);
        await sleep(RESTART_MS, signal);
      }
    }
  } finally {
    clearInterval(retention);
  }
}

/**
 * A receive loop that a takeover can stop and, when the takeover did not promote, start again. `done` settles
 * when the outer signal ended it (or rejects with the loop's fatal error).
 */
export function controlledReceiveLoop(
  config: Config,
  s: StandbyConfig,
  log: Logger,
  outer: AbortSignal,
  watch: ReceiverWatch,
): { done: Promise<void>; stop(): Promise<void>; resume(): void } {
  let ac = new AbortController();
  const start = () => receiveLoop(config, s, log, AbortSignal.any([outer, ac.signal]), watch);
  let current = start();
  let wake: (() => void) | null = null;
  const done = (async () => {
    for (;;) {
      await current;
      if (outer.aborted) return;
      // Stopped by a takeover: wait until it is resumed, or the process stops.
      await new Promise<void>((r) => {
        wake = r;
        outer.addEventListener('abort', () => r(), { once: true });
      });
      if (outer.aborted) return;
    }
  })();
  return {
    done,
    stop: async () => {
      ac.abort();
      await current.catch(() => undefined);
    },
    resume: () => {
      if (outer.aborted || !ac.signal.aborted) return;
      log.warn({ standby: s.name }, `standby ${s.name}: the takeover did not promote; receiving again`);
      ac = new AbortController();
      current = start();
      wake?.();
    },
  };
}
