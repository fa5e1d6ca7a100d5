/**
 * The backup scheduler inside `tidemark run` (issue #13, scope 8): fires the scheduled backup jobs and copies of
 * the config's `backup:` section with croner, in each schedule's time zone — recurring (`cron:`, a seconds field
 * allowed) or one-off (`at:`). Each trigger goes through the pure decisions of backup-schedule.ts: an item whose
 * previous run is still going skips the trigger and says so (a warn log line and
 * `tidemark_backup_skipped_total{kind,name,reason}`); a job's successful run is followed, under the same job
 * lock, by `expire` with the job's retention; a copy applies its own retention to its destination.
 *
 * Ownership: a job backs up `source:`, which lives at the primary's site (config `site`), so the loop runs in the
 * process that runs that site's capture role (node/supervisor.ts: no `--site`, or `--site <site>`, and not
 * `--only apply`). Copies run in the same process.
 *
 * A failed run is logged (and counted) and does not stop `tidemark run`: the next trigger runs again. On stop,
 * the triggers end and a run in progress is aborted (its pieces become orphans; no manifest is written). The
 * state of every item is in `<catalog_dir>/schedule.json` (advisory, rewritten at each change) for `tidemark
 * status`.
 *
 * Drills (`backup.drills`, backup/drill-config.ts) are items too: a scheduled `tidemark drill JOB`
 * (backup/drill/job-drill.ts, recorded in the drill history). A failed drill is an alarm: an error-level line with
 * `alarm: drill-failed`, the job and the failure, and `tidemark_backup_drill_last_ok{job}` at 0 (1 after a pass).
 */
import { Cron } from 'croner';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { checkCopies } from '../backup/copy-config.ts';
import { checkDrills } from '../backup/drill-config.ts';
import { drillJob } from '../backup/drill/job-drill.ts';
import { runCopy, runJob } from '../backup/run/job.ts';
import type { ScheduleConfig } from '../backup/schedule-config.ts';
import { backupAccount, type Config, type ResolvedBackup } from '../config/config.ts';
import { TidemarkError } from '../core/errors.ts';
import { IDLE, onFinish, onTrigger, type Outcome, type SlotState } from './backup-schedule.ts';
import { writeJsonFile } from './state-files.ts';

export const SCHEDULE_FILE = 'schedule.json';

interface Item {
  readonly kind: 'job' | 'copy' | 'drill';
  readonly name: string;
  readonly schedule: ScheduleConfig;
  /** Runs once; resolves to the detail of a successful run. */
  run(signal: AbortSignal, log: Logger): Promise<string>;
}

/** The items with a schedule: jobs, then copies, then drills (named by their job). */
export function scheduledItems(config: Config): Item[] {
  const b = config.backup;
  if (b === undefined) return [];
  const account = backupAccount(config);
  const items: Item[] = [];
  for (const job of b.jobs) {
    if (job.schedule === undefined) continue;
    items.push({
      kind: 'job',
      name: job.name,
      schedule: job.schedule,
      run: async (signal, log) => {
        const r = await runJob(b, job, { account, expire: true, signal, log });
        const gone = r.expired === null ? 0 : r.expired.expired.length;
        return `${r.run.manifest.id}${gone > 0 ? `; expired ${gone}` : ''}`;
      },
    });
  }
  for (const copy of b.copies) {
    if (copy.schedule === undefined) continue;
    items.push({
      kind: 'copy',
      name: copy.name,
      schedule: copy.schedule,
      run: async (signal, log) => {
        const r = await runCopy(b, copy, { dryRun: false, signal, log });
        return `${r.report.copied.length} copied, ${r.report.present.length} already there`;
      },
    });
  }
  for (const [drill, logJob] of checkDrills(b)) {
    const job = b.jobs.find((j) => j.name === drill.job) as (typeof b.jobs)[number];
    items.push({
      kind: 'drill',
      name: drill.job,
      schedule: drill.schedule,
      run: async (signal, log) => {
        const r = await drillJob(b, {
          job,
          logJob,
          source: config.source,
          scratchPort: drill.scratch_port,
          scratchPassword: process.env['TIDEMARK_SCRATCH_PASSWORD'] ?? config.source.password ?? '',
          waitSeconds: drill.wait_seconds,
          log,
          signal,
        });
        if (!r.ok) {
          throw new TidemarkError(`drill of job '${job.name}' FAILED (${r.code ?? 'unknown'}): ${r.error ?? ''}`, {
            code: 'BACKUP_DRILL_FAILED',
            context: { job: job.name, backup: r.backup },
          });
        }
        return `passed: ${r.tables} tables identical at GTID ${r.gtid ?? '-'} (backup ${r.backup ?? '-'})`;
      },
    });
  }
  return items;
}

interface Metrics {
  readonly skipped: Counter;
  readonly runs: Counter;
  readonly drillOk: Gauge;
}
const countersOf = new WeakMap<Registry, Metrics>();
function counters(registry: Registry | undefined): Metrics | undefined {
  if (registry === undefined) return undefined;
  let c = countersOf.get(registry);
  if (c === undefined) {
    c = {
      skipped: new Counter({
        name: 'tidemark_backup_skipped_total',
        help: 'scheduled backup/copy triggers skipped (overrun: the previous run still going; busy: locked elsewhere)',
        labelNames: ['kind', 'name', 'reason'],
        registers: [registry],
      }),
      runs: new Counter({
        name: 'tidemark_backup_runs_total',
        help: 'scheduled backup/copy runs by result (ok, failed)',
        labelNames: ['kind', 'name', 'result'],
        registers: [registry],
      }),
      drillOk: new Gauge({
        name: 'tidemark_backup_drill_last_ok',
        help: 'the last scheduled restore drill of the job: 1 passed, 0 failed (the alarm)',
        labelNames: ['job'],
        registers: [registry],
      }),
    };
    countersOf.set(registry, c);
  }
  return c;
}

const scheduleText = (s: ScheduleConfig) =>
  (s.cron !== undefined ? `cron '${s.cron}'` : `at ${s.at}`) + ` ${s.time_zone}`;

/** Runs the scheduled items until `signal` aborts. Returns at once when nothing is scheduled. */
export async function backupLoop(
  config: Config,
  log: Logger,
  signal: AbortSignal,
  registry?: Registry,
  items: readonly Item[] = scheduledItems(config),
): Promise<void> {
  const b = config.backup as ResolvedBackup | undefined;
  if (b === undefined || items.length === 0) return;
  checkCopies(b);
  const blog = log.child({ component: 'backup-schedule' });
  const metric = counters(registry);
  const inner = new AbortController();
  const states = new Map<Item, SlotState>(items.map((i) => [i, IDLE]));
  const crons = new Map<Item, Cron>();
  const running = new Set<Promise<void>>();
  let writing = Promise.resolve();
  const persist = () => {
    const doc = {
      updatedAt: new Date().toISOString(),
      pid: process.pid,
      items: items.map((i) => {
        const s = states.get(i) as SlotState;
        return {
          kind: i.kind,
          name: i.name,
          schedule: scheduleText(i.schedule),
          next: crons.get(i)?.nextRun()?.toISOString() ?? null,
          running: s.running?.toISOString() ?? null,
          runs: s.runs,
          failures: s.failures,
          skipped: s.skipped,
          last:
            s.last === null
              ? null
              : { ...s.last, trigger: s.last.trigger.toISOString(), ended: s.last.ended.toISOString() },
        };
      }),
    };
    writing = writing
      .then(() => writeJsonFile(b.catalog_dir, SCHEDULE_FILE, doc, { durable: false, pretty: true }))
      .catch((err: unknown) => blog.warn({ err }, `cannot write ${SCHEDULE_FILE}`));
  };

  const fire = (item: Item) => {
    if (inner.signal.aborted) return;
    const what = `${item.kind} '${item.name}'`;
    const ilog = blog.child({ kind: item.kind, name: item.name });
    const t = onTrigger(states.get(item) as SlotState, new Date(), what);
    states.set(item, t.state);
    if (!t.decision.start) {
      ilog.warn({ reason: t.decision.reason, runningSince: t.decision.runningSince.toISOString() }, t.decision.message);
      metric?.skipped.inc({ kind: item.kind, name: item.name, reason: 'overrun' });
      persist();
      return;
    }
    persist();
    ilog.info(`${what}: scheduled run starting`);
    const p = item.run(inner.signal, ilog).then(
      (detail): Outcome => ({ ok: true, detail }),
      (err: unknown): Outcome => ({
        ok: false,
        busy: err instanceof TidemarkError && err.code === 'BACKUP_BUSY',
        detail: err instanceof Error ? err.message : String(err),
      }),
    );
    const done = p.then((outcome) => {
      states.set(item, onFinish(states.get(item) as SlotState, new Date(), outcome));
      if (outcome.ok) {
        ilog.info({ detail: outcome.detail }, `${what}: scheduled run done`);
        metric?.runs.inc({ kind: item.kind, name: item.name, result: 'ok' });
        if (item.kind === 'drill') metric?.drillOk.set({ job: item.name }, 1);
      } else if (outcome.busy) {
        ilog.warn(`${what}: skipping this trigger, ${outcome.detail}`);
        metric?.skipped.inc({ kind: item.kind, name: item.name, reason: 'busy' });
      } else if (!inner.signal.aborted) {
        // a failed drill is the alarm: its own line naming the job and the failure, and the gauge at 0
        const alarm = item.kind === 'drill' ? { alarm: 'drill-failed', job: item.name } : {};
        ilog.error({ error: outcome.detail, ...alarm }, `${what}: scheduled run failed; the next trigger runs again`);
        metric?.runs.inc({ kind: item.kind, name: item.name, result: 'failed' });
        if (item.kind === 'drill') metric?.drillOk.set({ job: item.name }, 0);
      }
      persist();
    });
    running.add(done);
    void done.finally(() => running.delete(done));
  };

  for (const item of items) {
    const s = item.schedule;
    const cron = new Cron(
      (s.cron ?? s.at) as string,
      // unnamed: croner refuses a second job of one name in a process (two loops in one test process)
      { timezone: s.time_zone },
      () => fire(item),
    );
    if (cron.nextRun() === null) {
      cron.stop();
      blog.warn(
        { kind: item.kind, name: item.name },
        `${item.kind} '${item.name}': one-off at ${s.at} is past: not run`,
      );
      continue;
    }
    crons.set(item, cron);
    blog.info(
      { kind: item.kind, name: item.name, next: cron.nextRun()?.toISOString() },
      `scheduled (${scheduleText(s)})`,
    );
  }
  persist();
  if (!signal.aborted) await new Promise<void>((res) => signal.addEventListener('abort', () => res(), { once: true }));
  for (const c of crons.values()) c.stop();
  inner.abort();
  await Promise.all(running);
  persist();
  await writing;
}
