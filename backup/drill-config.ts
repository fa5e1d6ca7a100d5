/**
 * `backup.drills`: scheduled restore drills (issue #13, scope 10), composed into backup/config.ts (its own module:
 * a schema inside backup/drill/ would make backup/ and backup/drill/ import each other). Each drill names a backup
 * job, a schedule (croner, run by `tidemark run`'s backup scheduler, node/backup-loop.ts), the port of its scratch
 * server, the log job whose archive it replays (default: the job's `logs:`) and how long it waits for the archive to
 * reach the source's snapshot. Pure: no I/O.
 *
 * The names are checked against `backup.jobs` by checkDrills (called where the section is used: the scheduler), so
 * that composing this schema takes one line of backup/config.ts.
 */
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { nameSchema, scheduleSchema } from './schedule-config.ts';

export const drillSchema = z
  .object({
    /** The backup job whose newest chain is restored. */
    job: nameSchema,
    schedule: scheduleSchema,
    /** The scratch server's port (compose/local/mariadb.sh `start pitr-PORT PORT`); one per drill. */
    scratch_port: z.number().int().min(1).max(65535),
    /** The log job replayed; default the job's `logs:`. */
    log_job: nameSchema.optional(),
    /** How long to wait for the archive to reach the source's snapshot position. */
    wait_seconds: z.number().positive().max(3600).default(60),
  })
  .strict();

export const drillsSchema = z.array(drillSchema).default([]);

export type DrillConfig = z.infer<typeof drillSchema>;

/**
 * Checks the drills against the rest of the section and returns each drill's log job: a ConfigError naming the key
 * path when a job is unknown, has no log job, or a job or scratch port is used twice.
 */
export function checkDrills(b: {
  readonly jobs: readonly { readonly name: string; readonly logs?: string | undefined }[];
  readonly logs: readonly { readonly name: string }[];
  readonly drills: readonly DrillConfig[];
}): Map<DrillConfig, string> {
  const out = new Map<DrillConfig, string>();
  const jobs = new Set<string>();
  const ports = new Set<number>();
  for (const [i, d] of b.drills.entries()) {
    const at = `backup.drills.${i}`;
    const job = b.jobs.find((j) => j.name === d.job);
    if (job === undefined) {
      const known = b.jobs.map((j) => j.name).join(', ') || 'none';
      throw new ConfigError(`${at}.job: no job "${d.job}" in backup.jobs (it has: ${known})`, { drill: d.job });
    }
    if (jobs.has(d.job)) throw new ConfigError(`${at}.job: "${d.job}" has two drills`, { drill: d.job });
    jobs.add(d.job);
    if (ports.has(d.scratch_port)) {
      throw new ConfigError(`${at}.scratch_port: ${d.scratch_port} is used by another drill`, { drill: d.job });
    }
    ports.add(d.scratch_port);
    const logJob = d.log_job ?? job.logs;
    if (logJob === undefined) {
      throw new ConfigError(`${at}: job "${d.job}" has no 'logs:'; give the drill a log_job`, { drill: d.job });
    }
    if (!b.logs.some((l) => l.name === logJob)) {
      throw new ConfigError(`${at}: no log job "${logJob}" in backup.logs`, { drill: d.job });
    }
    out.set(d, logJob);
  }
  return out;
}
