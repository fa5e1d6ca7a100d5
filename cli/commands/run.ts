/**
 * `tidemark run`: capture from the source into the journal and apply the journal to the targets until stopped.
 * Capture and apply can also run as separate processes sharing the journal directory (`--only`).
 *
 * Before the loops start, a preflight connects once to every server this process needs, so a wrong host or
 * password fails at once with one clear line instead of retrying in the background. After that, retriable
 * failures are retried for as long as the process runs (and logged); non-retriable ones stop the process.
 */
import { openSession } from '../../apply/mysql/session.ts';
import { TidemarkError } from '../../record/errors.ts';
import type { Config } from '../config.ts';
import { applyLoop } from '../run/apply-loop.ts';
import { captureLoop } from '../run/capture-loop.ts';
import { indexEnabled, indexLoop } from '../run/index-loop.ts';
import { startMetrics } from '../run/metrics.ts';
import type { CommandContext } from './context.ts';

export type RunPart = 'capture' | 'apply';

export interface RunOptions extends CommandContext {
  /** Run only one half of the pipeline; undefined runs both. */
  readonly only?: RunPart | undefined;
  /**
   * Apply only to these targets (names from config.targets, already checked to exist by cli/main.ts);
   * undefined means every target. Never set together with only === 'capture'.
   */
  readonly targets?: readonly string[] | undefined;
  /** Take a new baseline before streaming (after the source purged binlogs the journal still needed). */
  readonly rebaseline?: boolean | undefined;
}

async function preflight(what: string, ep: Config['source'] | Config['targets'][number]): Promise<void> {
  try {
    const c = await openSession(ep, { apply: false });
    await c.end();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // Name the server and account once: most connection errors already carry "host:port".
    const where = msg.includes(`${ep.host}:${ep.port}`) ? what : `${what} ${ep.host}:${ep.port} (user ${ep.user})`;
    throw new TidemarkError(`${where}: ${msg}`, {
      code: err instanceof TidemarkError ? err.code : 'CONNECT',
      retriable: false,
      cause: err instanceof TidemarkError ? err.cause : err,
    });
  }
}

/** Runs until `signal` aborts (returns 0 after a clean stop) or a non-retriable error is thrown. */
export async function runCommand(o: RunOptions): Promise<number> {
  const { config, log } = o;
  const targets = o.only === 'capture' ? [] : config.targets.filter((t) => !o.targets || o.targets.includes(t.name));
  if (o.only !== 'apply') await preflight('source', config.source);
  for (const t of targets) await preflight(`target ${t.name}`, t);

  // One failing part stops the others: `inner` aborts on the stop signal or on the first fatal error.
  const inner = new AbortController();
  const stop = () => inner.abort();
  o.signal.addEventListener('abort', stop, { once: true });
  const metrics = config.metrics ? await startMetrics(config.metrics, log) : undefined;
  const parts: Promise<void>[] = [];
  if (o.only !== 'apply') parts.push(captureLoop(config, log, inner.signal, { rebaseline: o.rebaseline === true }));
  for (const t of targets) parts.push(applyLoop(config, t, log, inner.signal, metrics?.registry));
  // The rollback index follows the journal whatever part this process runs (one loop per process).
  if (indexEnabled(config)) parts.push(indexLoop(config, log, inner.signal));
  log.info(
    { source: config.source.name, targets: targets.map((t) => t.name), only: o.only ?? 'capture+apply' },
    'tidemark running',
  );
  let firstError: unknown;
  await Promise.all(
    parts.map((p) =>
      p.catch((err) => {
        firstError ??= err;
        inner.abort();
      }),
    ),
  );
  o.signal.removeEventListener('abort', stop);
  await metrics?.close();
  if (firstError !== undefined) throw firstError;
  log.info('tidemark stopped');
  return 0;
}
